"""The controlled scheduler: one thread per operation, exactly one running at a time.

An operation parks before each call on ``env.db`` / ``env.cache`` and before it blocks on a kit
primitive; the scheduler then picks which parked operation takes its next step. The choices are
data (a list of operation indices), so the same choices replay the same run.

Blocking the kit cannot see (a lock created before the run, I/O, a sleep) is the last resort:
an operation that neither parks nor returns within ``step_timeout`` is left running uncontrolled
and another is scheduled; if nothing can make progress for ``stall_timeout`` the run ends with
the finding ``timeout``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from . import _primitives as primitives
from ._primitives import RealLock
from ._signals import Pruned, Stalled

ABORT = -3  # a chooser's answer: this run is redundant, unwind every operation now


class _Worker:
    """Operations run on long-lived workers created outside any patched window: the kit itself never
    constructs a ``threading.Thread`` while ``threading``'s primitives are the kit's."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="cachepact-op", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                job()
            except Pruned:
                continue  # an aborted run's operation unwound; the worker takes the next job


_pool: list[_Worker] = []
_pool_lock = RealLock()


def _workers(n: int) -> list[_Worker]:
    with _pool_lock:
        while len(_pool) < n:
            _pool.append(_Worker())
        return _pool[:n]


def _retire(worker: _Worker) -> None:
    """A worker stuck in blocking the kit cannot see is abandoned; ``prepare`` makes a fresh one
    before the next run (never here: this runs while ``threading`` is patched)."""
    with _pool_lock:
        if worker in _pool:
            _pool.remove(worker)


def prepare(n: int) -> None:
    """Make sure ``n`` workers exist; call before patching ``threading``."""
    _workers(n)


class Scheduler:
    def __init__(
        self,
        bodies: list[Callable[[], None]],
        choose: Callable[[int, tuple[int, ...], dict[int, tuple], int | None], int],
        *,
        on_finish: Callable[[int], None] | None = None,
        step_timeout: float = 0.5,
        stall_timeout: float = 5.0,
    ) -> None:
        self.bodies = bodies
        self.choose = choose
        self.on_finish = on_finish
        self.step_timeout = step_timeout
        self.stall_timeout = stall_timeout
        n = len(bodies)
        self.state = ["new"] * n  # new | parked | blocked | running | uncontrolled | done
        self.pending: dict[int, tuple] = dict.fromkeys(range(n), ("start",))
        self.first = [True] * n
        self.parks = [0] * n  # scheduling points passed: where an op is, between env calls too
        self.predicate: list[Callable[[], bool] | None] = [None] * n
        self.has_timeout = [False] * n
        self.timed_out = [False] * n
        # Handoffs are queues, one per operation plus one back to the scheduler: waking exactly
        # the party whose turn it is (a shared Condition would wake every thread at every step).
        self.go: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(n)]
        self.back: queue.SimpleQueue = queue.SimpleQueue()
        self.choices: list[int] = []
        self.threads: dict[int, int] = {}  # thread ident -> op index
        self.aborting = False
        self.uncontrolled = 0  # how often an operation neither parked nor returned in time
        self._waited_for_foreign = False

    # -- called on operation threads ------------------------------------------------------------

    def park(self, call: tuple) -> None:
        """Before an env call: hand control back and wait to be scheduled."""
        i = self.threads.get(threading.get_ident())
        if i is None:
            return
        self.pending[i] = (*call, self.first[i])
        self.parks[i] += 1
        self.state[i] = "parked"
        self._yield(i)
        self.first[i] = False

    def block(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """A kit primitive would block: wait until the scheduler resumes this op with it satisfied."""
        i = self.threads[threading.get_ident()]
        self.predicate[i] = predicate
        self.has_timeout[i] = timeout is not None and timeout >= 0
        self.timed_out[i] = False
        self.state[i] = "blocked"
        self._yield(i)
        self.predicate[i] = None
        return not self.timed_out[i]

    def _yield(self, i: int) -> None:
        self.back.put(i)
        self.go[i].get()
        self.state[i] = "running"
        if self.aborting:
            raise Pruned()

    # -- the scheduler's side -------------------------------------------------------------------

    def _resume(self, i: int) -> bool:
        """Let ``i`` run until it parks, blocks or finishes; False if it did none within the step timeout."""
        self.state[i] = "running"
        self.go[i].put(None)
        while True:
            try:
                who = self.back.get(timeout=self.step_timeout)
            except queue.Empty:
                self.state[i] = "uncontrolled"  # blocked where the kit cannot see
                self.uncontrolled += 1
                return False
            # A report counts only if the op really stopped; one queued earlier by an op that had been
            # left uncontrolled (it parked on its own while another ran) is stale.
            if who == i and self.state[i] != "running":
                self._waited_for_foreign = False
                return True

    def run(self) -> None:
        workers = _workers(len(self.bodies))
        for i, (worker, body) in enumerate(zip(workers, self.bodies)):
            worker.jobs.put(self._wrap(i, body))
        for _ in self.bodies:  # every operation parks at its start
            self.back.get()
        current: int | None = None
        while True:
            runnable = self._runnable()
            if not runnable:
                if all(s == "done" for s in self.state):
                    return
                self._unstick(workers)
                continue
            pending = {i: self.pending[i] for i in runnable}
            chosen = ABORT if self.aborting else self.choose(len(self.choices), runnable, pending, current)
            if chosen == ABORT:
                self.aborting = True
                self._resume(runnable[0])
                continue
            if chosen not in runnable:
                chosen = runnable[0]
            self.choices.append(chosen)
            current = chosen
            # An operation's start and its first call are one step: the code before its first
            # call touches nothing shared, so a decision there would only double the schedules.
            starting = self.pending[chosen] == ("start",)
            if self._resume(chosen) and starting and self.state[chosen] == "parked":
                self._resume(chosen)

    def _runnable(self) -> tuple[int, ...]:
        return tuple(i for i, s in enumerate(self.state) if s == "parked" or (s == "blocked" and self._may_wake(i)))

    def _may_wake(self, i: int) -> bool:
        predicate = self.predicate[i]
        return self.aborting or (predicate is not None and predicate())

    def _unstick(self, workers: list[_Worker]) -> None:
        """Nothing can step: wake a timed waiter, wait for an uncontrolled op, or give up."""
        for i, s in enumerate(self.state):
            if s == "blocked" and self.has_timeout[i]:
                self.timed_out[i] = True
                self._resume(i)
                return
        if "uncontrolled" in self.state:
            try:
                self.back.get(timeout=self.stall_timeout)  # it parked, blocked or finished: its state says which
            except queue.Empty:
                stuck = [i for i, s in enumerate(self.state) if s == "uncontrolled"]
                for i in stuck:
                    _retire(workers[i])
                raise Stalled(
                    "timeout", f"operation(s) {stuck} blocked outside the kit's control for {self.stall_timeout:g} s"
                ) from None
            return
        if primitives.foreign[0] and not self._waited_for_foreign:
            # A thread of the adapter's own may still set what an operation waits for.
            self._waited_for_foreign = True
            with primitives._state:
                primitives._changed.wait(self.step_timeout)
            return
        blocked = [i for i, s in enumerate(self.state) if s == "blocked"]
        raise Stalled("deadlock", f"every unfinished operation waits on another: {blocked}")

    def _wrap(self, i: int, body: Callable[[], None]) -> Callable[[], None]:
        def job() -> None:
            me = threading.get_ident()
            primitives.blockers[me] = self.block
            primitives.parks[me] = self.park
            self.threads[me] = i
            self.state[i] = "parked"
            try:
                self._yield(i)
                body()
            finally:
                primitives.blockers.pop(me, None)
                primitives.parks.pop(me, None)
                self.threads.pop(me, None)
                self.state[i] = "done"
                if self.on_finish and not self.aborting:
                    self.on_finish(i)
                self.back.put(i)

        return job

    def retire_unfinished(self) -> None:
        """After a stall the unfinished operations stay parked forever; their workers are replaced."""
        workers = _workers(len(self.bodies))
        for i, st in enumerate(self.state):
            if st != "done":
                _retire(workers[i])
