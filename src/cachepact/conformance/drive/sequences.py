"""The sequential driver: a Hypothesis ``RuleBasedStateMachine`` of reads and writes around a World.

Shrinking gives the minimal failing sequence; the World of Hypothesis' final (minimal) run is kept
for the report.
"""

from __future__ import annotations

import itertools

import hypothesis.strategies as st
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, rule

from ...model._participants import READ, WRITE
from ..report.progress import Progress
from ..runtime.signals import Abandoned, Violation
from .hypothesis import kit_settings, run_seeded
from .replay import KEYS, TICK, TICKS, Op, parse_sequence, replay_of_sequence
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

        @rule(op=st.sampled_from(step_choices(setup.instances)))
        def step(self, op: tuple[str, str, int, int]) -> None:
            kind, key, seconds, instance = op
            if seconds:
                self.ops.append(Op(TICK, seconds))
            self.ops.append((kind, key, instance))

        def teardown(self) -> None:
            if abandoned:  # Hypothesis reruns a failure to confirm it: a timeout is not waited out twice
                raise Abandoned(abandoned[0])
            world = World(setup)
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
                    ]
                )
            )
    invariant = run.finding.invariant if run.finding else None
    for replay in sorted(r for r in renamings if r < run.replay):
        candidate = rerun_sequence(setup, parse_sequence(replay))
        if candidate.finding and candidate.finding.invariant == invariant and candidate.operations == run.operations:
            return candidate
    return run
