"""The concurrent Hypothesis driver: it draws a prefix, the operations in flight and a schedule.

A failure shrinks toward fewer operations and fewer context switches (see ``switching``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
from hypothesis import given

from ...model._participants import READ, WRITE
from ..report.progress import Progress
from ..runtime.signals import Abandoned, Violation
from . import replay
from .hypothesis import keyed, kit_settings, run_batches
from .interleaved import run_interleaved, switching
from .replay import KEYS, TICK, TICKS, ConcurrentScenario, Op
from .run import Run
from .sequences import FAULT_CHOICES
from .world import Setup


def search_schedules(
    setup: Setup,
    *,
    max_examples: int,
    max_ops: int,
    seed: int | None,
    progress: Progress,
    database: Any = None,
) -> Run | None:
    """Draw scenarios and schedules until one fails or the budget is spent; the shrunk failure, or
    None. ``database``: Hypothesis' example database (``check(example_db=...)``), tried first."""
    failing: list[Run] = []
    abandoned: list[Run] = []
    instance = st.integers(0, setup.instances - 1)
    # With --faults, an operation may carry a fault (``sequences.FAULT_CHOICES``): a run keeps the first
    # ``setup.faults`` of them, in operation order.
    fault = st.sampled_from(FAULT_CHOICES) if setup.faults else st.none()
    op = st.tuples(st.sampled_from((READ, WRITE)), st.sampled_from(KEYS[:2]), instance, fault)
    prefix_op = st.one_of(
        st.tuples(st.sampled_from((READ, WRITE)), st.sampled_from(KEYS[:2]), instance, fault),
        st.tuples(st.just("t"), st.sampled_from(TICKS), st.just(0), st.none()),
    )

    # Time inside races: where the clock jumps (choice numbers; see ``switching``), drawn when the
    # check has seen something set to expire (the earlier phases ran races), else never: a check of
    # code that sets no TTL and takes no lock with a timeout draws exactly what it drew before.
    budget = replay.RACE_JUMPS
    jumps = st.lists(st.integers(0, 6 * max_ops), max_size=budget) if budget and setup.session.expiring else st.just(())

    def test(prefix: list, ops: list, schedule: list, jumps: list) -> None:
        if abandoned:  # Hypothesis reruns a failure to confirm it: a timeout is not waited out twice
            raise Abandoned(abandoned[0])
        marked = [fault for kind, _, _, fault in (*prefix, *ops) if kind != TICK]
        plan = tuple((n, f) for n, f in enumerate(marked) if f is not None)[: setup.faults]
        scenario = ConcurrentScenario(
            prefix=tuple(Op(kind, arg, i) for kind, arg, i, _ in prefix),
            ops=tuple(Op(kind, arg, i) for kind, arg, i, _ in ops),
            faults=plan,
        )
        run = run_interleaved(setup, scenario, switching(schedule, jumps))
        progress.add_run(run)
        if run.finding is None:
            return
        if run.finding.invariant == "timeout":
            abandoned.append(run.as_run())
            raise Abandoned(abandoned[0])  # no shrinking: every try would wait out a timeout
        failing.append(run.as_run())  # now: the stores (a shared Redis) hold this run's final state
        raise Violation(run.finding)

    keyed(test, f"schedules {setup.label} {setup.pattern.name} {setup.instances} {max_ops} {setup.faults}")

    def build(examples: int) -> Callable[[], None]:
        drawn = given(
            prefix=st.lists(prefix_op, max_size=2),
            ops=st.lists(op, min_size=2, max_size=max_ops),
            schedule=st.lists(st.integers(0, max_ops), max_size=6 * max_ops),
            jumps=jumps,
        )(test)
        return kit_settings(examples, seed, database)(drawn)

    try:
        run_batches(build, max_examples, seed, done=lambda: bool(failing))
    except Abandoned as e:
        return e.run
    return failing[-1] if failing else None
