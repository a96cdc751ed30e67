"""The sequential driver: Hypothesis draws whole sequences of reads and writes, a World runs each.

Shrinking gives the minimal failing sequence; the World of Hypothesis' final (minimal) run is kept
for the report.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import attrs
import hypothesis.strategies as st
from hypothesis import given

from ...model._participants import READ, WRITE
from ..report.progress import Progress
from ..runtime.signals import Abandoned, Violation
from .hypothesis import keyed, kit_settings, run_batches
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
# first in about one step in fourteen (every step is an operation; a clock move alone would cost a
# step and run nothing).
#
# A whole sequence is one draw: ``steps`` bytes, one a step (with --faults, as many more, a fault
# each), read through a table. Hypothesis' per-rule machinery (a rule chosen, its arguments drawn, a
# span each) cost more than running the operation did; one draw an example costs about what one step
# did. Byte 0 is no step, so the shrinker deletes a step by lowering its byte (the length is fixed: a
# step cut out would shift every later step's fault), and lowers the rest toward the front of the
# table: reads of k1 on the first instance with no clock move. It cannot lower a key or an instance
# everywhere at once (r:k3 and w:k3 are different bytes), so the kit renames them after shrinking
# (first_names).
Step = tuple[str, str, int, int]  # (kind, key, seconds the clock moves first, app instance)
TICKED = 18  # table entries (of 255) that move the clock first: each tick with each kind and key


def step_table(instances: int) -> tuple[Step | None, ...]:
    """What each byte of a drawn sequence is: no step for 0, then the plain steps over and over, then
    the ones that move the clock first."""
    plain = [(kind, key, 0, i) for i in range(instances) for kind in (READ, WRITE) for key in KEYS]
    ticked = [(kind, key, seconds, 0) for seconds in TICKS for kind in (READ, WRITE) for key in KEYS]
    assert len(ticked) == TICKED
    return (None, *(plain[n % len(plain)] for n in range(255 - TICKED)), *ticked)


# With --faults, each operation may carry a fault: one of its first eight calls fails (a write in a
# transaction commits at its third call or later, and invalidates after that), before taking effect
# or with its reply lost, in about one operation in four (a run keeps the first ``faults`` of them).
# The shrinker lowers a fault's byte toward none, and toward earlier calls.
FAULTS_DRAWN: tuple[Fault, ...] = tuple(
    Fault(call, took_effect) for call in range(1, 9) for took_effect in (False, True)
) + tuple(Fault(call, False, outage=True) for call in (1, 2, 3, 4))
FAULT_TABLE: tuple[Fault | None, ...] = (None,) * 192 + tuple(FAULTS_DRAWN[n % len(FAULTS_DRAWN)] for n in range(64))
# What the concurrent driver draws an operation's fault from: mostly none, as here.
FAULT_CHOICES: tuple[Fault | None, ...] = (None,) * 60 + FAULTS_DRAWN
# The single faults the fault phase tries on each call: both ways, and an outage from there on.
FAULT_KINDS = (Fault(1, False), Fault(1, True), Fault(1, False, outage=True))


def decode(
    drawn: bytes, fault_bytes: bytes, table: tuple[Step | None, ...], budget: int
) -> tuple[list[Op | tuple[str, str, int]], Faults]:
    """The operations (clock moves included) ``drawn`` names, and its fault plan: the first
    ``budget`` faults ``fault_bytes`` names, by operation number."""
    ops: list[Op | tuple[str, str, int]] = []
    faults: Faults = {}
    count = 0
    for n, byte in enumerate(drawn):
        step = table[byte]
        if step is None:
            continue
        kind, key, seconds, instance = step
        if seconds:
            ops.append(Op(TICK, seconds))
        ops.append((kind, key, instance))
        if fault_bytes and len(faults) < budget and (fault := FAULT_TABLE[fault_bytes[n]]) is not None:
            faults[count] = fault
        count += 1
    return ops, faults


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
    setup: Setup,
    *,
    max_examples: int,
    steps: int,
    seed: int | None,
    progress: Progress,
    database: Any = None,
) -> Run | None:
    """Draw sequences until one fails or the budget is spent; the failing run, minimal, or None.
    ``database``: Hypothesis' example database (``check(example_db=...)``), its failures tried first."""
    failing: list[Run] = []
    abandoned: list[Run] = []
    table = step_table(setup.instances)
    sequence = st.binary(min_size=steps, max_size=steps)

    def test(drawn: bytes, fault_bytes: bytes) -> None:
        if abandoned:  # Hypothesis reruns a failure to confirm it: a timeout is not waited out twice
            raise Abandoned(abandoned[0])
        ops, faults = decode(drawn, fault_bytes, table, setup.faults)
        # Hypothesis starts each run from all zeros: no step at all is the simplest sequence there
        # is, and the simplest one worth running is a read of k1.
        ops = ops or [(READ, KEYS[0], 0)]
        world = World(setup)
        world.fault_plan = faults
        try:
            finding = world.run_sequence(ops)
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

    keyed(test, f"sequences {setup.label} {setup.pattern.name} {setup.instances} {steps} {setup.faults}")

    def build(examples: int) -> Callable[[], None]:
        drawn = given(drawn=sequence, fault_bytes=sequence if setup.faults else st.just(b""))(test)
        return kit_settings(examples, seed, database)(drawn)

    try:
        run_batches(build, max_examples, seed, done=lambda: bool(failing))
    except Abandoned as e:
        return e.run
    if not failing:
        return None
    # Hypothesis runs the minimal example last, so the last failing World is the shrunk one.
    return first_names(without_idle_ticks(failing[-1], setup), setup)


def without_idle_ticks(run: Run, setup: Setup) -> Run:
    """The same failure without each clock move it does not need, last first.

    A step that moves the clock first is a byte of its own, far from the byte of the same step
    without the move: lowering it one way or the other changes the step, so the shrinker can leave
    a move nothing needs. Faults are numbered by operation, so leaving out a move keeps each one
    on its call."""
    ops = parse_sequence(run.replay)
    faults = faults_of_sequence(run.replay)
    invariant = run.finding.invariant if run.finding else None
    for at in reversed(range(len(ops))):
        if ops[at].kind != TICK:
            continue
        fewer = ops[:at] + ops[at + 1 :]
        candidate = rerun_sequence(setup, fewer, faults)
        if candidate.finding and candidate.finding.invariant == invariant and candidate.operations <= run.operations:
            run, ops = candidate, fewer
    return run


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
