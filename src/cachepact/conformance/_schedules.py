"""The concurrent Hypothesis driver: it draws a prefix, the operations in flight and a schedule.

A failure shrinks toward fewer operations and fewer context switches (see ``switching``).
"""

from __future__ import annotations

from collections.abc import Callable

import hypothesis.strategies as st
from hypothesis import given

from ..model import Pattern
from ._clock import VirtualClock
from ._hypothesis import kit_settings, run_seeded
from ._interleaved import InterleavedRun, run_interleaved, switching
from ._progress import Progress
from ._replay import KEYS, TICKS, ConcurrentScenario
from ._run import Run
from ._signals import Violation


def search_schedules(
    make: Callable,
    pattern: Pattern,
    *,
    max_examples: int,
    max_ops: int,
    seed: int | None,
    progress: Progress,
    label: str,
    clock: VirtualClock,
) -> Run | None:
    """Draw scenarios and schedules until one fails or the budget is spent; the shrunk failure, or None."""
    failing: list[InterleavedRun] = []
    op = st.tuples(st.sampled_from(("r", "w")), st.sampled_from(KEYS[:2]))
    prefix_op = st.sampled_from([(kind, key) for kind in ("r", "w") for key in KEYS[:2]] + [("t", s) for s in TICKS])

    @kit_settings(max_examples, seed)
    @given(
        prefix=st.lists(prefix_op, max_size=2),
        ops=st.lists(op, min_size=2, max_size=max_ops),
        schedule=st.lists(st.integers(0, max_ops), max_size=6 * max_ops),
    )
    def test(prefix: list, ops: list, schedule: list) -> None:
        scenario = ConcurrentScenario(prefix=tuple(prefix), ops=tuple(ops))
        run = run_interleaved(make, pattern, scenario, switching(schedule), label=label, clock=clock)
        progress.add_run(run)
        if run.finding is not None:
            failing.append(run)
            raise Violation(run.finding)

    run_seeded(test, seed)
    return failing[-1].as_run() if failing else None
