"""The sequential driver: a Hypothesis ``RuleBasedStateMachine`` of reads and writes around a World.

Shrinking gives the minimal failing sequence; the World of Hypothesis' final (minimal) run is kept
for the report.
"""

from __future__ import annotations

from collections.abc import Callable

import hypothesis.strategies as st
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, rule

from ..model import Pattern
from ._clock import VirtualClock
from ._hypothesis import kit_settings, run_seeded
from ._progress import Progress
from ._replay import KEYS, TICKS
from ._run import Run
from ._signals import Violation
from ._world import World

# What a step of a sequence is: a read or a write of a key, the clock moved on first in about one step
# in eleven (every step is an operation; a clock move alone would cost a step and run nothing).
# Kind, key and clock move are drawn apart so the shrinker can lower one key everywhere it appears
# at once (it lowers equal choices together): a failure on k3 alone shrinks to the same one on k1.
# Hypothesis shrinks each toward the front of its list: reads of k1 with no clock move.
STEP_KINDS = ("r", "w")
CLOCK_MOVES: tuple[int, ...] = (0,) * 30 + TICKS


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

        @rule(kind=st.sampled_from(STEP_KINDS), key=st.sampled_from(KEYS), seconds=st.sampled_from(CLOCK_MOVES))
        def step(self, kind: str, key: str, seconds: int) -> None:
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
    # Hypothesis runs the minimal example last, so the last failing World is the shrunk one.
    return failing[-1].as_run() if failing else None
