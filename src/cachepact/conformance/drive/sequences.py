"""The sequential driver: a Hypothesis ``RuleBasedStateMachine`` of reads and writes around a World.

Shrinking gives the minimal failing sequence; the World of Hypothesis' final (minimal) run is kept
for the report.
"""

from __future__ import annotations

import itertools

import attrs
import hypothesis.strategies as st
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, rule

from ...model._participants import READ, WRITE
from ..report.progress import Progress
from ..runtime.signals import Abandoned, Violation
from .hypothesis import kit_settings, run_seeded
from .replay import (
    KEYS,
    MAX_FAULT_CALL,
    TICK,
    TICKS,
    Fault,
    Faults,
    Op,
    faults_of_sequence,
    parse_sequence,
    replay_of_sequence,
)
from .run import Run
from .world import Setup, World, rerun_sequence


# What a step of a sequence is: a read or a write of a key on an app instance, the clock moved on
# first in about one step in eleven (every step is an operation; a clock move alone would cost a step
# and run nothing). One draw a step, from one list, keeps the driver as cheap as a hand-written
# machine (a draw costs more than a cached read). Hypothesis shrinks toward the front of the list:
# reads of k1 on the first instance with no clock move. It cannot lower a key or an instance
# everywhere at once (r:k3 and w:k3 are different choices), so the kit renames them after shrinking
# (first_names).
def step_choices(instances: int) -> list[tuple[str, str, int, int]]:
    """(kind, key, seconds the clock moves first, app instance), as often as Hypothesis should draw them."""
    plain = [(kind, key, 0, i) for i in range(instances) for kind in (READ, WRITE) for key in KEYS]
    return plain * 25 + [(kind, key, seconds, 0) for seconds in TICKS for kind in (READ, WRITE) for key in KEYS]


# With --faults, each operation may carry a fault: one of its first eight calls fails (a write in a
# transaction commits at its third call or later, and invalidates after that), before taking effect
# or with its reply lost, in about one operation in three (a run keeps the first ``faults`` of them).
# Hypothesis shrinks toward none, and toward earlier calls.
FAULT_CHOICES: tuple[Fault | None, ...] = (
    (None,) * 60
    + tuple(Fault(call, took_effect) for call in range(1, 9) for took_effect in (False, True))
    + tuple(Fault(call, False, outage=True) for call in (1, 2, 3, 4))
)
# The single faults the fault phase tries on each call: both ways, and an outage from there on.
FAULT_KINDS = (Fault(1, False), Fault(1, True), Fault(1, False, outage=True))

# The fault phase: each of an operation's first calls failing, both ways, in the few sequences where
# what a fault leaves behind shows at once (a failed invalidation before a read; a failed lookup,
# load or fill before another read; on a key the DB holds and on one it lacks). A run a millisecond:
# every fault catalogue entry is caught here, before any draw.
R, W = READ, WRITE
FAULT_SEQUENCES: tuple[tuple[tuple[str, str], ...], int] = (
    (((R, "k1"), (W, "k1"), (R, "k1")), 1),  # the write's calls fail
    (((W, "k1"), (R, "k1")), 0),
    (((R, "k1"), (R, "k1")), 0),  # the first read's calls fail
    (((R, "k3"), (R, "k3")), 0),
)


def search_fault_sequences(setup: Setup, *, progress: Progress) -> Run | None:
    """Every single fault of ``FAULT_SEQUENCES``: the first failing run (minimal as it is), or None."""
    for ops, faulted in FAULT_SEQUENCES:
        sequence = [Op(kind, key) for kind, key in ops]
        # Every call the operation makes, until a fault on the next one no longer fires.
        for fault in (attrs.evolve(kind, call=call) for call in range(1, MAX_FAULT_CALL) for kind in FAULT_KINDS):
            world = World(setup)
            world.fault_plan = {faulted: fault}
            try:
                finding = world.run_sequence(sequence)
                if not world.faulted:
                    break  # the operation makes fewer calls: no later one to fail
                progress.add_run(world)
                if finding is not None:
                    return world.as_run()
            finally:
                world.close()
    return None


def search_sequences(
    setup: Setup, *, max_examples: int, steps: int, seed: int | None, progress: Progress
) -> Run | None:
    """Draw sequences until one fails or the budget is spent; the failing run, minimal, or None."""
    failing: list[Run] = []
    abandoned: list[Run] = []

    class CachepactMachine(RuleBasedStateMachine):
        # Rules only draw; teardown runs the whole sequence in one go, so the app instances' threads
        # hand the baton to each other only where the instance changes, not twice an operation.
        # Hypothesis shrinks a failure raised in teardown like any other.
        def __init__(self) -> None:
            super().__init__()
            self.ops: list[tuple[str, object, int]] = []
            self.faults: Faults = {}
            self.count = 0

        @rule(
            op=st.sampled_from(step_choices(setup.instances)),
            fault=st.sampled_from(FAULT_CHOICES) if setup.faults else st.none(),
        )
        def step(self, op: tuple[str, str, int, int], fault: Fault | None) -> None:
            kind, key, seconds, instance = op
            if seconds:
                self.ops.append(Op(TICK, seconds))
            self.ops.append((kind, key, instance))
            if fault is not None and len(self.faults) < setup.faults:
                self.faults[self.count] = fault
            self.count += 1

        def teardown(self) -> None:
            if abandoned:  # Hypothesis reruns a failure to confirm it: a timeout is not waited out twice
                raise Abandoned(abandoned[0])
            world = World(setup)
            world.fault_plan = self.faults
            try:
                finding = world.run_sequence(self.ops)
            finally:
                try:
                    progress.add_run(world)  # may raise a noted Ctrl-C: the world closes all the same
                finally:
                    world.close()
            if finding is None:
                return
            if finding.invariant == "timeout":
                abandoned.append(world.as_run())
                raise Abandoned(abandoned[0])  # no shrinking: every try would wait out a timeout
            failing.append(world.as_run())  # now: the stores (a shared Redis) hold this world's final state
            raise Violation(finding)

    test = get_state_machine_test(
        CachepactMachine, settings=kit_settings(max_examples, seed, stateful_step_count=steps)
    )
    try:
        run_seeded(test, seed)
    except Abandoned as e:
        return e.run
    if not failing:
        return None
    # Hypothesis runs the minimal example last, so the last failing World is the shrunk one.
    return first_names(failing[-1], setup)


def first_names(run: Run, setup: Setup) -> Run:
    """The same failure on the first keys and the fewest, first app instances, when it holds there:
    the shrinker's last pass.

    Tries each renaming of the keys (with the instances all made the first, or numbered in order of
    use) whose sequence reads earlier than the run's, in order, and keeps the first that fails the
    same invariant in as many operations. So which key or instance a report shows does not hang on
    the draw, and a bug on k3 (the key the DB lacks) stays on k3 unless k1 shows it too.
    """
    ops = parse_sequence(run.replay)
    faults = faults_of_sequence(run.replay)
    used = list(dict.fromkeys(instance for kind, _, instance in ops if kind != "t"))
    placings = [dict.fromkeys(used, 0), {i: n for n, i in enumerate(used)}, {i: i for i in used}]
    renamings = set()
    for order in itertools.permutations(KEYS):
        rename = dict(zip(KEYS, order, strict=True))
        for place in placings:
            renamings.add(
                replay_of_sequence(
                    [
                        (kind, arg, 0) if kind == TICK else (kind, rename[arg], place[instance])
                        for kind, arg, instance in ops
                    ],
                    faults,
                )
            )
    invariant = run.finding.invariant if run.finding else None
    for replay in sorted(r for r in renamings if r < run.replay):
        candidate = rerun_sequence(setup, parse_sequence(replay), faults)
        if candidate.finding and candidate.finding.invariant == invariant and candidate.operations == run.operations:
            return candidate
    return run
