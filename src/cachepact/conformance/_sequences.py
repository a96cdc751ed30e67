"""The sequential driver: a Hypothesis ``RuleBasedStateMachine`` of reads and writes around a World.

Shrinking gives the minimal failing sequence; the World of Hypothesis' final (minimal) run is kept
for the report.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import hypothesis.strategies as st
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, rule

from ..model import Pattern
from ._clock import VirtualClock
from ._hypothesis import kit_settings, run_seeded
from ._progress import Progress
from ._replay import KEYS, TICKS, parse_sequence, replay_of_sequence
from ._run import Run
from ._signals import Violation
from ._world import World, rerun_sequence

# What a step of a sequence is: a read or a write of a key, the clock moved on first in about one step
# in eleven (every step is an operation; a clock move alone would cost a step and run nothing). One
# draw a step, from one list, keeps the driver as cheap as a hand-written machine (a draw costs more
# than a cached read). Hypothesis shrinks toward the front of the list, reads of k1 with no clock
# move; it cannot lower a key everywhere at once (r:k3 and w:k3 are different choices), so the kit
# renames keys after shrinking (first_keys).
SEQUENCE_OPS: list[tuple[str, str, int]] = [(kind, key, 0) for kind in ("r", "w") for key in KEYS] * 25 + [
    (kind, key, seconds) for seconds in TICKS for kind in ("r", "w") for key in KEYS
]


def search_sequences(
    make: Callable,
    pattern: Pattern,
    *,
    max_examples: int,
    steps: int,
    seed: int | None,
    progress: Progress,
    label: str,
    clock: VirtualClock,
) -> Run | None:
    """Draw sequences until one fails or the budget is spent; the failing run, minimal, or None."""
    failing: list[World] = []

    class CachepactMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.world = World(make, pattern, label=label, clock=clock)

        @rule(op=st.sampled_from(SEQUENCE_OPS))
        def step(self, op: tuple[str, str, int]) -> None:
            kind, key, seconds = op
            if seconds:
                self.world.run("t", seconds)
            finding = self.world.run(kind, key)
            if finding is not None:
                failing.append(self.world)
                raise Violation(finding)

        def teardown(self) -> None:
            progress.add_run(self.world)

    test = get_state_machine_test(
        CachepactMachine, settings=kit_settings(max_examples, seed, stateful_step_count=steps)
    )
    run_seeded(test, seed)
    if not failing:
        return None
    # Hypothesis runs the minimal example last, so the last failing World is the shrunk one.
    return first_keys(failing[-1].as_run(), make, pattern, label=label, clock=clock)


def first_keys(run: Run, make: Callable, pattern: Pattern, *, label: str, clock: VirtualClock) -> Run:
    """The same failure on the first keys, when it holds there: the shrinker's last pass.

    Tries each renaming of the keys whose sequence reads earlier than the run's, in order, and keeps
    the first that fails the same invariant in as many operations. So which key a report shows does
    not hang on the draw, and a bug on k3 (the key the DB lacks) stays on k3 unless k1 shows it too.
    """
    ops = parse_sequence(run.replay)
    renamings = set()
    for order in itertools.permutations(KEYS):
        rename = dict(zip(KEYS, order, strict=True))
        renamings.add(replay_of_sequence([(kind, arg if kind == "t" else rename[arg]) for kind, arg in ops]))
    invariant = run.finding.invariant if run.finding else None
    for replay in sorted(r for r in renamings if r < run.replay):
        candidate = rerun_sequence(make, pattern, parse_sequence(replay), label=label, clock=clock)
        if candidate.finding and candidate.finding.invariant == invariant and candidate.operations == run.operations:
            return candidate
    return run
