"""A proof's schedule tree split into subtrees, explored by several processes (``workers``) or by the
jobs of a CI matrix (``shard``), with the verdict and the counterexample one process would give.

The tree is cut at the first depth with enough subtrees (``split_tree``): the decisions above it are
explored here, and each subtree below is a unit of work; a shard of a CI matrix takes every n-th.
A process explores its subtrees in depth-first order, sharing the states it has seen between them
(and with the other processes once a subtree is done without a failure), and stops at its first
failure. The failure reported is the one in the first subtree, in depth-first order, that has one:
the one a single process finds, since a state cut there has a failure-free future, whichever
process explored it.

Processes are started fresh (``spawn``): a fork would copy the threads and servers of this one.
Each rebuilds its setup from a ``Share`` (the factory must be importable by name), runs the scenario
once (what libraries set up on first use, as in the runs here), then takes subtrees from one queue.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager as ContextManager
from typing import Any

import attrs

from ..report.progress import Progress
from .exhaustive import Exhaustive, explore_schedules
from .interleaved import InterleavedRun, replaying, run_interleaved
from .replay import ConcurrentScenario
from .world import Setup

Schedule = tuple[tuple[str, Any], ...]
SUBTREES_PER_SHARE = 8  # small units: a process tells the others what it explored after each


@attrs.frozen(kw_only=True)
class Share:
    """What every worker process is given: how to build the setup, the scenario, and the subtrees
    (numbered in depth-first order) it takes from one queue of work, in turn."""

    build: Callable[[Any], ContextManager[Setup]]  # module-level: it is sent to a new process by name
    spec: Any
    scenario: ConcurrentScenario
    limit: int
    subtrees: tuple[Schedule, ...]


@attrs.frozen(kw_only=True)
class Explored:
    """What exploring one subtree gave: its counts, and its failing schedule if it has one."""

    index: int
    runs: int
    pruned: int
    complete: bool
    failing: Schedule | None
    examples: int
    operations: int
    reached: frozenset[str]


def split_tree(setup: Setup, scenario: ConcurrentScenario, *, shares: int) -> tuple[Exhaustive, list[InterleavedRun]]:
    """The tree cut at the first depth with at least ``SUBTREES_PER_SHARE`` subtrees a share (or
    where it ends above that depth, or fails): the search above the cut, and the runs it finished."""
    depth = 1
    while True:
        finished: list[InterleavedRun] = []
        above = explore_schedules(setup, scenario, split_at=depth, on_run=finished.append)
        if above.failing is not None or not above.subtrees or len(above.subtrees) >= SUBTREES_PER_SHARE * shares:
            return above, finished
        depth += 1


def explore_split(
    setup: Setup,
    scenario: ConcurrentScenario,
    *,
    limit: int,
    progress: Progress,
    workers: int,
    shard: tuple[int, int],
    build: Callable[[Any], ContextManager[Setup]],
    spec: Any,
) -> Exhaustive:
    """Every schedule of ``scenario`` in shard ``shard`` (index, count) of the tree, over ``workers``
    processes; ``limit`` bounds each subtree's search. The tree above the cut is every shard's."""
    index, count = shard
    above, finished = split_tree(setup, scenario, shares=workers * count)
    for run in finished:
        progress.add_run(run)
    if not above.subtrees:
        return above
    mine = [(n, s) for n, s in enumerate(above.subtrees) if n % count == index]
    numbered = dict(mine)
    if workers == 1:
        explored = explore_subtrees(setup, scenario, mine, limit=limit)
    else:
        share = Share(build=build, spec=spec, scenario=scenario, limit=limit, subtrees=tuple(above.subtrees))
        explored = _in_processes(share, [n for n, _ in mine], workers)
    result = Exhaustive(scenario=scenario, runs=above.runs, pruned=above.pruned, states=above.states)
    for e in sorted(explored, key=lambda e: e.index):
        result.runs += e.runs
        result.pruned += e.pruned
        result.complete = result.complete and e.complete
        progress.examples += e.examples
        progress.operations += e.operations
        progress.reached.update(e.reached)
        if e.failing is not None:
            rerun = explore_schedules(setup, scenario, under=e.failing, limit=1)
            if rerun.failing is None:  # it did not fail again here (a first use, a timing): search it here
                rerun = explore_schedules(setup, scenario, under=numbered[e.index], limit=limit)
            if rerun.failing is not None:
                result.failing, result.failing_schedule = rerun.failing, rerun.failing_schedule
                return result
    # Every subtree listed comes before a failure the search above the cut found: none failed.
    result.failing, result.failing_schedule = above.failing, above.failing_schedule
    return result


class _Seen(set):
    """A process's visited states, keeping the ones added since it last told the others."""

    def __init__(self) -> None:
        super().__init__()
        self.new: list = []

    def add(self, key: Any) -> None:
        super().add(key)
        self.new.append(key)


def explore_subtrees(
    setup: Setup,
    scenario: ConcurrentScenario,
    subtrees: Iterable[tuple[int, Schedule]],
    *,
    limit: int,
    seen: _Seen | None = None,
    finished: Callable[[Explored, list], None] | None = None,
) -> list[Explored]:
    """Explore numbered subtrees in turn, sharing the states seen; stop at the first failure.
    ``finished(explored, states)`` hears of each, with the states that subtree added."""
    seen = _Seen() if seen is None else seen
    out = []
    for n, under in subtrees:
        progress = Progress()
        seen.new = []
        ex = explore_schedules(setup, scenario, limit=limit, under=under, visited=seen, on_run=progress.add_run)
        explored = Explored(
            index=n,
            runs=ex.runs,
            pruned=ex.pruned,
            complete=ex.complete,
            failing=ex.failing_schedule if ex.failing is not None else None,
            examples=progress.examples,
            operations=progress.operations,
            reached=frozenset(progress.reached),
        )
        out.append(explored)
        if finished is not None:
            finished(explored, seen.new)
        if ex.failing is not None:
            break
    return out


def _in_processes(share: Share, numbers: list[int], workers: int) -> list[Explored]:
    """The subtrees ``numbers`` of ``share`` over ``workers`` processes, started fresh, each taking
    the next subtree from one queue. A process that completes a subtree without a failure tells the
    others the states it explored there: their futures hold no failure, so the others cut there
    too, and the first failure in depth-first order stays the one a single process finds. Ctrl-C,
    or a failure of the kit in a process, ends them all."""
    context = multiprocessing.get_context("spawn")
    work, results = context.Queue(), context.Queue()
    for n in numbers:
        work.put(n)
    inboxes = [context.Queue() for _ in range(workers)]
    lowest_failing = context.Value("q", len(share.subtrees))
    processes = [
        context.Process(
            target=_work, args=(share, w, work, inboxes, results, lowest_failing), name=f"cachepact-proof-{w + 1}"
        )
        for w in range(workers)
    ]
    try:
        for p in processes:
            p.start()
        explored: list[Explored] = []
        for _ in processes:
            outcome = _next(results, processes)
            if isinstance(outcome, BaseException):
                raise outcome
            explored.extend(outcome)
        return explored
    finally:
        for p in processes:
            if p.is_alive():
                p.terminate()
            p.join()


def _next(results: Any, processes: list) -> Any:
    """The next process's outcome; a process that died without one is the kit's failure."""
    while True:
        try:
            return results.get(timeout=0.5)
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in processes):
                raise RuntimeError("a proof's worker process died (killed, or out of memory)") from None


def _work(share: Share, me: int, work: Any, inboxes: list, results: Any, lowest_failing: Any) -> None:
    """A worker process: build the setup, then explore subtrees from the queue until it is empty."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent ends us
    try:
        with share.build(share.spec) as setup:
            run_interleaved(setup, share.scenario, replaying([]))  # first uses, as the first process had
            seen = _Seen()

            def taken() -> Iterator[tuple[int, Schedule]]:
                while True:
                    try:
                        n = work.get_nowait()
                    except queue.Empty:
                        return
                    while True:  # what the others explored since: cut there too
                        try:
                            seen.update(inboxes[me].get_nowait())
                        except queue.Empty:
                            break
                    if n < lowest_failing.value:  # past a known failure nothing can come first
                        yield n, share.subtrees[n]

            def finished(explored: Explored, states: list) -> None:
                if explored.failing is not None:
                    with lowest_failing.get_lock():
                        lowest_failing.value = min(lowest_failing.value, explored.index)
                elif explored.complete:
                    for w, inbox in enumerate(inboxes):
                        if w != me:
                            inbox.put(states)

            outcome: Any = explore_subtrees(
                setup, share.scenario, taken(), limit=share.limit, seen=seen, finished=finished
            )
    except BaseException as e:  # the kit's failure (or the adapter's definition): the parent raises it
        outcome = e
    results.put(outcome)
