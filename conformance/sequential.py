"""The sequential driver: a Hypothesis ``RuleBasedStateMachine`` of reads and writes around a World.

Shrinking gives the minimal failing sequence; the World of Hypothesis' final (minimal) run is kept
for the report.
"""

from __future__ import annotations

from typing import Any, Callable

import hypothesis.strategies as st
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, rule

from .judge import Finding
from .world import KEYS, World


class Violation(AssertionError):
    def __init__(self, finding: Finding) -> None:
        super().__init__(f"{finding.invariant}: {finding.message}")
        self.finding = finding


def kit_settings(max_examples: int, seed: int | None, **extra: Any) -> settings:
    """How the kit runs Hypothesis: no example database in the user's folder, no deadline, quiet
    (the kit prints its own report), derandomized unless a seed is given, one bug at a time."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=seed is None,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
        **extra,
    )


def run_seeded(test: Callable[[], None], seed: int | None) -> None:
    """Run a Hypothesis test under ``seed``; a violation ends it (the caller kept the failing run)."""
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    try:
        test()
    except (Violation, Flaky):
        return  # the failing World or run was kept by the test as it raised


class Progress:
    """Counts what the driver did, and lets the CLI show it while a long run goes on."""

    def __init__(self, tick: Callable[["Progress"], None] | None = None) -> None:
        self.examples = 0
        self.operations = 0
        self.reached: set[str] = set()
        self.tick = tick


def run_sequential(
    make: Callable,
    pattern: Any,
    *,
    max_examples: int,
    steps: int,
    seed: int | None,
    progress: Progress,
    backends: Callable[[], tuple] | None = None,
) -> World | None:
    """Draw sequences until one fails or the budget is spent; the failing World, minimal, or None."""
    failing: list[World] = []

    class CachepactMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.world = World(make, pattern, backends=backends)
            progress.examples += 1

        @rule(key=st.sampled_from(KEYS))
        def read(self, key: str) -> None:
            self._judge(self.world.read(key))

        @rule(key=st.sampled_from(KEYS))
        def write(self, key: str) -> None:
            self._judge(self.world.write(key))

        def _judge(self, finding: Finding | None) -> None:
            progress.operations += 1
            if progress.tick:
                progress.tick(progress)
            if finding is not None:
                failing.append(self.world)
                raise Violation(finding)

        def teardown(self) -> None:
            progress.reached |= self.world.judge.reached

    test = get_state_machine_test(CachepactMachine, settings=kit_settings(max_examples, seed, stateful_step_count=steps))
    run_seeded(test, seed)
    # Hypothesis runs the minimal example last, so the last failing World is the shrunk one.
    return failing[-1] if failing else None
