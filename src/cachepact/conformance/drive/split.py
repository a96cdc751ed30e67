"""A proof's schedule tree split into subtrees, explored by several processes (``workers``) or by the
jobs of a CI matrix (``shard``), with the verdict and the counterexample one process would give.

The tree is cut at the first depth with enough subtrees (``split_tree``): the decisions above it are
explored here, and each subtree below is a unit of work; a shard of a CI matrix takes every n-th.
Processes take subtrees from one queue and cut at every state any of them has claimed
(``SharedStates``, in memory they all map), as one process cuts at a state it has seen: each state's
future is explored once, by whichever process reached it first. That gives the verdict. Which
failure is reported is one process's choice (the first in depth-first order), so a failure found
over processes is looked for again here, in the subtrees up to the one it was found in, one after
another: the counterexample and its replay string are the ones a single process gives.

Processes are started fresh (``spawn``): a fork would copy the threads and servers of this one.
Each rebuilds its setup from a ``Share`` (the factory must be importable by name), runs the scenario
once (what libraries set up on first use, as in the runs here), then takes subtrees from the queue.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import queue
import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager as ContextManager
from multiprocessing import shared_memory
from typing import Any

import attrs

from ...errors import InvalidArgument
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


def split_tree(
    setup: Setup, scenario: ConcurrentScenario, *, shares: int, limit: int
) -> tuple[Exhaustive, list[InterleavedRun]]:
    """The tree cut at the first depth with at least ``SUBTREES_PER_SHARE`` subtrees a share (or
    where it ends above that depth, fails, or meets ``limit``): the search above the cut, and the
    runs it finished."""
    depth = 1
    while True:
        finished: list[InterleavedRun] = []
        above = explore_schedules(setup, scenario, split_at=depth, on_run=finished.append, limit=limit)
        enough = len(above.subtrees) >= SUBTREES_PER_SHARE * shares
        if above.failing is not None or not above.subtrees or enough or not above.complete:
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
    processes; ``limit`` bounds the search above the cut and each subtree's. The tree above the cut
    is every shard's, and where it is cut depends on the number of shards alone (with one, on the
    workers): every job of a matrix numbers the same subtrees, whatever its workers."""
    index, count = shard
    above, finished = split_tree(setup, scenario, shares=count if count > 1 else workers, limit=limit)
    for run in finished:
        progress.add_run(run)
    if not above.subtrees or not above.complete:
        return above
    mine = [(n, s) for n, s in enumerate(above.subtrees) if n % count == index]
    numbered = dict(mine)
    if workers == 1:
        seen: set = set()
        explored, states = explore_subtrees(setup, scenario, mine, limit=limit, seen=seen), len(seen)
    else:
        share = Share(build=build, spec=spec, scenario=scenario, limit=limit, subtrees=tuple(above.subtrees))
        explored, states = _in_processes(share, [n for n, _ in mine], workers)
    result = Exhaustive(scenario=scenario, runs=above.runs, pruned=above.pruned, states=above.states + states)
    result.processes = workers if workers > 1 else 1
    # A subtree no process reports on (one stopped at a failure elsewhere) is no part of a proof.
    result.complete = {e.index for e in explored} >= set(numbered) or any(e.failing is not None for e in explored)
    for e in explored:
        result.runs += e.runs
        result.pruned += e.pruned
        result.complete = result.complete and e.complete
        progress.examples += e.examples
        progress.operations += e.operations
        progress.reached.update(e.reached)
    failed = [e.index for e in explored if e.failing is not None]
    if failed:
        # The processes cut at states others had claimed, so the failure one found need not be the
        # first in depth-first order: the subtrees up to the first that failed are searched again,
        # here, one after another, as one process searches them. Its first failure is the answer.
        again = explore_subtrees(setup, scenario, [(n, s) for n, s in mine if n <= min(failed)], limit=limit)
        # (None here: the failure did not come again in this process, a timing or a first use: the
        # schedule that failed over there is the counterexample.)
        first = next((e for e in again if e.failing is not None), None) or next(e for e in explored if e.failing)
        rerun = explore_schedules(setup, scenario, under=first.failing, limit=1)
        if rerun.failing is None:  # it did not fail again: the whole subtree
            rerun = explore_schedules(setup, scenario, under=numbered[first.index], limit=limit)
        if rerun.failing is not None:
            result.failing, result.failing_schedule = rerun.failing, rerun.failing_schedule
            return result
    # Every subtree listed comes before a failure the search above the cut found: none failed.
    result.failing, result.failing_schedule = above.failing, above.failing_schedule
    return result


class SharedStates:
    """States the processes of one proof have claimed, in memory they all map: a table of 16-byte
    digests of state keys, open addressing, insertions under one lock. A state one process claims
    the others cut at, as one process cuts at a state it has seen. Full, it claims nothing more (the
    processes then explore more, never less)."""

    SLOT = 16

    # A million states, 16 MiB (pages the OS maps only once written): the 3-reader, 2-writer lease
    # proof claims about 25,000, and a container's /dev/shm is often only 64 MiB.
    def __init__(self, context: Any, slots: int = 1 << 20) -> None:
        self.slots = slots
        self.memory = shared_memory.SharedMemory(create=True, size=slots * self.SLOT)
        self.lock = context.Lock()
        self.claimed = context.Value("q", 0, lock=False)  # by every process (counted under ``lock``)
        self.added = 0  # claimed by this process

    def __getstate__(self) -> dict:
        return {"name": self.memory.name, "slots": self.slots, "lock": self.lock, "claimed": self.claimed}

    def __setstate__(self, state: dict) -> None:
        self.slots, self.lock, self.claimed, self.added = state["slots"], state["lock"], state["claimed"], 0
        # The creating process unlinks it; the processes it starts share its resource tracker, which
        # knows the memory once, whoever maps it.
        self.memory = shared_memory.SharedMemory(name=state["name"])

    def _digest(self, key: Any) -> bytes:
        digest = hashlib.blake2b(key.encode() if isinstance(key, str) else repr(key).encode(), digest_size=16)
        out = digest.digest()
        return out if any(out) else b"\x01" + out[1:]  # all zero marks an empty slot

    def _find(self, digest: bytes) -> tuple[int, bool]:
        """The slot holding ``digest`` (True), or the empty slot where it would go (False); -1 if full."""
        buf, size = self.memory.buf, self.SLOT
        at = int.from_bytes(digest[:8], "little") & (self.slots - 1)
        for _ in range(self.slots):
            entry = bytes(buf[at * size : (at + 1) * size])
            if entry == digest:
                return at, True
            if not any(entry):
                return at, False
            at = (at + 1) & (self.slots - 1)
        return -1, False

    def __contains__(self, key: Any) -> bool:
        return self._find(self._digest(key))[1]

    def add(self, key: Any) -> None:
        digest = self._digest(key)
        with self.lock:
            at, present = self._find(digest)
            if at >= 0 and not present:
                self.memory.buf[at * self.SLOT : (at + 1) * self.SLOT] = digest
                self.added += 1
                self.claimed.value += 1

    def __len__(self) -> int:
        return self.added

    def close(self, *, unlink: bool = False) -> None:
        self.memory.close()
        if unlink:
            self.memory.unlink()


def explore_subtrees(
    setup: Setup,
    scenario: ConcurrentScenario,
    subtrees: Iterable[tuple[int, Schedule]],
    *,
    limit: int,
    seen: set | SharedStates | None = None,
) -> list[Explored]:
    """Explore numbered subtrees in turn, sharing the states seen; stop at the first failure."""
    seen = set() if seen is None else seen
    out = []
    for n, under in subtrees:
        progress = Progress()
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
        if ex.failing is not None:
            break
    return out


def _in_processes(share: Share, numbers: list[int], workers: int) -> tuple[list[Explored], int]:
    """The subtrees ``numbers`` of ``share`` over ``workers`` processes, started fresh, each taking
    the next subtree from one queue and cutting at every state any of them has claimed
    (``SharedStates``). Once one finds a failure, the others stop. What they explored, and the
    states they claimed in all. Ctrl-C, or a failure of the kit in a process, ends them all."""
    context = multiprocessing.get_context("spawn")
    work, results = context.Queue(), context.Queue()
    for n in numbers:
        work.put(n)
    failed = context.Event()
    try:
        states = SharedStates(context)
    except OSError as e:  # no room in /dev/shm (a container's is often small)
        raise InvalidArgument(
            "workers", workers, f"needs 16 MiB of shared memory, which the system refused ({e}); pass workers=1"
        ) from None
    try:
        with started_processes(context, _work, (share, work, states, results, failed), workers, "proof") as processes:
            explored: list[Explored] = []
            for _ in processes:
                outcome = next_outcome(results, processes)
                if isinstance(outcome, BaseException):
                    raise outcome
                explored.extend(outcome)
            return explored, states.claimed.value
    finally:
        states.close(unlink=True)


@contextlib.contextmanager
def started_processes(context: Any, target: Callable, args: tuple, workers: int, name: str) -> Iterator[list]:
    """``workers`` processes running ``target(*args)``, started fresh, ended (terminated if still at
    work) and joined however the block is left, Ctrl-C included."""
    processes = [context.Process(target=target, args=args, name=f"cachepact-{name}-{w + 1}") for w in range(workers)]
    started: list = []
    try:
        # Started with Ctrl-C blocked, which they keep across exec from their first instruction (a
        # new Python importing the kit would print its own traceback): the parent ends them on
        # Ctrl-C. Here a Ctrl-C meanwhile is held, not lost, until the processes are started.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for p in processes:
                p.start()
                started.append(p)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        yield processes
    finally:
        for p in started:
            if p.is_alive():
                p.terminate()
            p.join()


def next_outcome(results: Any, processes: list) -> Any:
    """The next process's outcome; a process that ended without one is a one-line error."""
    while True:
        try:
            return results.get(timeout=0.5)
        except queue.Empty:
            ended = [p.exitcode for p in processes if p.exitcode is not None]
            if any(code != 0 for code in ended) or (ended and len(ended) == len(processes) and results.empty()):
                raise InvalidArgument(
                    "workers",
                    len(processes),
                    f"started processes, and one ended without an answer (exit code {ended[0]}): killed, out of "
                    "memory, or it could not import the factory (a script must start the check or proof under "
                    "if __name__ == '__main__':); run it with workers=1 to see why",
                ) from None


def _work(share: Share, work: Any, states: SharedStates, results: Any, failed: Any) -> None:
    """A worker process: build the setup, then explore subtrees from the queue until it is empty or
    some process found a failure."""
    try:
        with share.build(share.spec) as setup:
            run_interleaved(setup, share.scenario, replaying([]))  # first uses, as the first process had

            def taken() -> Iterator[tuple[int, Schedule]]:
                while not failed.is_set():
                    try:
                        n = work.get_nowait()
                    except queue.Empty:
                        return
                    yield n, share.subtrees[n]

            outcome: Any = explore_subtrees(setup, share.scenario, taken(), limit=share.limit, seen=states)
            if any(e.failing is not None for e in outcome):
                failed.set()
    except BaseException as e:  # the kit's failure (or the adapter's definition): the parent raises it
        outcome = e
    finally:
        states.close()
    results.put(outcome)
