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
# Hypothesis shrinks toward the front of the list: toward reads of k1 with no clock move.
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
    # Hypothesis runs the minimal example last, so the last failing World is the shrunk one.
    return failing[-1].as_run() if failing else None
