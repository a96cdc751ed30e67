"""The check's exhaustive scenarios spread over processes (``check(workers=N)``), with the verdict,
the counterexample and the counts of one process.

The exhaustive phase explores a handful of small scenarios in turn and stops at the first that
fails. Here each scenario is still explored whole by one process, exactly as one process explores
it (the same limit, the same order, the same states); the processes only explore different
scenarios at once, taking them in order from one queue. The answer is the first failing scenario's
first failure; what the scenarios before it ran is counted, and what the processes learned of the
adapter on the way (it sets a time to live, a wait spun out, a ``cache_code`` entry ran) becomes
the check's, as if it had run here, so the phases after this one draw as they would have.

Processes are started fresh (``spawn``) and rebuild the check's setup from a ``CheckSpec``: the
factory must be importable by name, and the stores are each process's own (in memory, and the
embedded Redis), so ``redis=`` and ``db=`` are refused with workers.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from typing import Any

import attrs

from ..record.env import unseen_cache_code
from ..report.progress import Progress
from ..runtime.session import Session
from .exhaustive import count_race, explore_schedules
from .interleaved import InterleavedRun, replaying, run_interleaved
from .replay import ConcurrentScenario
from .split import Explored, next_outcome, started_processes
from .world import Setup


@attrs.frozen(kw_only=True)
class Learned:
    """What a check's runs teach its session that later phases read (``Session``): whether the
    adapter sets times to live (its races then draw clock jumps), the shortest, schedules cut where a
    wait spun out (the report warns), whether a thread of its own used the kit's primitives, an unused
    ``flush=``, and which ``cache_code`` entries ran."""

    expiring: bool = False
    shortest_ttl: float | None = None
    spun_out: int = 0
    foreign: bool = False
    unused_flush: bool = False
    stale_after_acknowledged: bool = False
    cache_code_ran: frozenset[str] = frozenset()

    @classmethod
    def of(cls, session: Session, *, spun_before: int = 0) -> Learned:
        return cls(
            expiring=session.expiring,
            shortest_ttl=session.shortest_ttl,
            spun_out=session.spun_out - spun_before,
            foreign=session.foreign,
            unused_flush=session.unused_flush,
            stale_after_acknowledged=session.stale_after_acknowledged,
            cache_code_ran=frozenset(_ran(session)),
        )

    def into(self, session: Session) -> None:
        """Teach ``session`` this, as the runs would have had they run in its process."""
        session.expiring |= self.expiring
        if self.shortest_ttl is not None:
            known = session.shortest_ttl
            session.shortest_ttl = self.shortest_ttl if known is None else min(known, self.shortest_ttl)
        session.spun_out += self.spun_out
        session.foreign |= self.foreign
        session.unused_flush |= self.unused_flush
        session.stale_after_acknowledged |= self.stale_after_acknowledged
        session.cache_code_ran |= self.cache_code_ran


def _ran(session: Session) -> set[str]:
    """The ``cache_code`` entries some call of the session's runs had on its stack."""
    named = {name for attribution in session.in_use.values() for name in attribution.labels}
    return named - set(unseen_cache_code(session))


@attrs.frozen(kw_only=True)
class ScenarioExplored(Explored):
    """What exploring one scenario gave, in the process that explored it: a subtree's counts (the
    whole scenario is the subtree), the waits it took over, and what its runs taught the session."""

    uncontrolled: int
    learned: Learned


@attrs.frozen(kw_only=True)
class Spread:
    """What every worker process is given: how to rebuild the check's setup, the scenarios in order,
    and the limit of schedules each is explored to."""

    build: Callable[[Any], ContextManager[Setup]]  # module-level: it is sent to a new process by name
    spec: Any
    scenarios: tuple[ConcurrentScenario, ...]
    limit: int


def explore_spread(
    setup: Setup,
    scenarios: tuple[ConcurrentScenario, ...],
    *,
    limit: int,
    progress: Progress,
    workers: int,
    build: Callable[[Any], ContextManager[Setup]],
    spec: Any,
) -> InterleavedRun | None:
    """Every schedule of each of ``scenarios`` (to ``limit`` each), over ``workers`` processes; the
    first failing scenario's first failure, as one process finds it, or None.

    The first scenario (a read and a write: milliseconds, and where most races show) is explored here
    first: a check that fails there never pays for starting processes."""
    if not scenarios:
        return None
    first = explore_schedules(setup, scenarios[0], limit=limit, on_run=progress.add_run)
    if first.failing is not None:
        return first.failing
    count_race(progress, scenarios[0], first)
    if len(scenarios) == 1:
        return None
    return _over_processes(
        setup, Spread(build=build, spec=spec, scenarios=scenarios[1:], limit=limit), progress, workers
    )


def _over_processes(setup: Setup, spread: Spread, progress: Progress, workers: int) -> InterleavedRun | None:
    """``explore_spread`` of ``spread``'s scenarios, every one of them over the processes."""
    scenarios, limit = spread.scenarios, spread.limit
    outcomes = _in_processes(spread, workers)
    failed = min((n for n, e in outcomes.items() if e.failing is not None), default=None)
    for n in range(len(scenarios) if failed is None else failed):
        _count(outcomes[n], setup.session, progress)
        count_race(progress, scenarios[n], outcomes[n])
    if failed is None:
        return None
    # The failing run, made again here for the report (what that run teaches is the worker's to
    # count: it ran there).
    spun = setup.session.spun_out
    again = explore_schedules(setup, scenarios[failed], under=outcomes[failed].failing or (), limit=1)
    setup.session.spun_out = spun
    if again.failing is not None:
        _count(outcomes[failed], setup.session, progress)
        return again.failing
    # It did not fail again here (a timing, a first use): from that scenario on, one process's search,
    # here, counted as such.
    for scenario in scenarios[failed:]:
        ex = explore_schedules(setup, scenario, limit=limit, on_run=progress.add_run)
        if ex.failing is not None:
            return ex.failing
        count_race(progress, scenario, ex)
    return None


def _count(explored: ScenarioExplored, session: Session, progress: Progress) -> None:
    """A scenario explored in another process, counted and learned from as if explored here."""
    progress.add(
        examples=explored.examples,
        operations=explored.operations,
        reached=explored.reached,
        uncontrolled=explored.uncontrolled,
    )
    explored.learned.into(session)


class _Stop(Exception):
    """A scenario before this one failed: its exploration is of no use."""


def _in_processes(spread: Spread, workers: int) -> dict[int, ScenarioExplored]:
    """The scenarios of ``spread`` over ``workers`` processes (no more than there are scenarios),
    each taking the next scenario in order; once one fails, scenarios after it are left, or cut
    short. What each explored, by scenario: every scenario up to the first failing one, or all."""
    count = len(spread.scenarios)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    # Which scenario is next, and the first that failed (``count``: none): shared counters, so a
    # process never finds the work gone while another holds a queue's lock.
    taken, first_failed = context.Value("q", 0), context.Value("q", count)
    outcomes: dict[int, ScenarioExplored] = {}
    processes_wanted = min(workers, count)
    with started_processes(context, _work, (spread, taken, first_failed, results), processes_wanted, "check") as ps:
        done = 0
        while done < len(ps):
            outcome = next_outcome(results, ps)
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome is None:  # a process out of work
                done += 1
                continue
            outcomes[outcome.index] = outcome
            failed = min((n for n, e in outcomes.items() if e.failing is not None), default=None)
            if failed is not None and all(n in outcomes for n in range(failed + 1)):
                break  # every scenario up to the first failing one has reported: the rest are of no use
    return outcomes


def _work(spread: Spread, taken: Any, first_failed: Any, results: Any) -> None:
    """A worker process: build the setup, then explore the next scenario in order, sending what each
    gave as it ends, until none is left or one before it failed; then None."""
    try:
        with spread.build(spread.spec) as setup:
            warm = False
            while (n := _next_scenario(taken, first_failed)) is not None:
                scenario = spread.scenarios[n]
                if not warm:  # what libraries set up on first use, done before the first counted run
                    run_interleaved(setup, scenario, replaying([]))
                    warm = True
                explored = _explore(setup, spread, n, first_failed)
                if explored is not None:
                    results.put(explored)
        results.put(None)
    except BaseException as e:  # the kit's failure (or the adapter's definition): the parent raises it
        results.put(e)


def _next_scenario(taken: Any, first_failed: Any) -> int | None:
    with taken.get_lock():
        n = taken.value
        if n >= first_failed.value:
            return None
        taken.value = n + 1
        return n


def _explore(setup: Setup, spread: Spread, n: int, first_failed: Any) -> ScenarioExplored | None:
    """Scenario ``n`` explored as one process explores it; None when a scenario before it failed
    meanwhile (cut short: no use to anyone)."""
    progress = Progress()

    def counted(run: InterleavedRun) -> None:
        if first_failed.value < n:
            raise _Stop
        progress.add_run(run)

    spun_before = setup.session.spun_out
    try:
        ex = explore_schedules(setup, spread.scenarios[n], limit=spread.limit, on_run=counted)
    except _Stop:
        return None
    failing = ex.failing_schedule if ex.failing is not None else None
    if failing is not None:
        with first_failed.get_lock():
            first_failed.value = min(first_failed.value, n)
    return ScenarioExplored(
        index=n,
        runs=ex.runs,
        pruned=ex.pruned,
        complete=ex.complete,
        failing=failing,
        examples=progress.examples,
        operations=progress.operations,
        reached=frozenset(progress.reached),
        uncontrolled=progress.uncontrolled,
        learned=Learned.of(setup.session, spun_before=spun_before),
    )
