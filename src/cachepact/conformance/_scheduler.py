"""The controlled scheduler: one thread per operation, exactly one running at a time.

An operation parks before each call on ``env.db`` / ``env.cache`` and before it blocks on a kit
primitive; the scheduler then picks which parked operation takes its next step. The choices are
data (a list of operation indices), so the same choices replay the same run.

The decision is made by the thread that holds control (the baton): the operation that just parked,
blocked or finished, or the main thread at the start and when something is stuck. Going on with
the same operation then costs no thread switch, and switching costs one, where a scheduler thread
of its own would cost two at every call. The main thread watches: for the end, for an operation
that stopped making progress, and for a run where nothing can step.

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
    MAIN = -1  # the baton's holder when no operation holds it

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
        # Handoffs are queues, one per operation plus one to the main thread: waking exactly the
        # party whose turn it is (a shared Condition would wake every thread at every step).
        self.go: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(n)]
        self.back: queue.SimpleQueue = queue.SimpleQueue()
        self.choices: list[int] = []
        self.threads: dict[int, int] = {}  # thread ident -> op index
        self.aborting = False
        self.uncontrolled = 0  # how often an operation neither parked nor returned in time
        self.baton = self.MAIN  # who may decide the next step
        self.current: int | None = None  # the op chosen last
        self.progress = 0  # decisions and scheduling points so far: the main thread's heartbeat
        self._lock = RealLock()  # decisions against an uncontrolled op resurfacing at the same time
        self._waited_for_foreign = False

    # -- called on operation threads ------------------------------------------------------------

    def park(self, call: tuple) -> None:
        """Before an env call: a scheduling point."""
        i = self.threads.get(threading.get_ident())
        if i is None:
            return
        if self.aborting:
            raise Pruned()
        self.pending[i] = (*call, self.first[i])
        self.parks[i] += 1
        self.progress += 1
        if self.first[i]:
            # An operation's start and its first call are one step: the code before its first call
            # touches nothing shared, so a decision there would only double the schedules.
            self.first[i] = False
            return
        self._stop(i, "parked")

    def block(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """A kit primitive would block: wait until the scheduler resumes this op with it satisfied."""
        i = self.threads[threading.get_ident()]
        self.predicate[i] = predicate
        self.has_timeout[i] = timeout is not None and timeout >= 0
        self.timed_out[i] = False
        self.progress += 1
        self._stop(i, "blocked")
        self.predicate[i] = None
        return not self.timed_out[i]

    def _stop(self, i: int, state: str) -> None:
        """Op ``i`` stops at a scheduling point: decide who steps next, and wait unless it is ``i``."""
        with self._lock:
            self.state[i] = state
            holder = self.baton == i
            chosen = self._decide() if holder else None
        if chosen == i:
            self.state[i] = "running"
            return
        if self.aborting:
            raise Pruned()  # it decided the run is redundant: it unwinds too
        if not holder:
            self.back.put(("resurfaced", i))  # it had been left uncontrolled: the main thread may act
        self._wait(i)

    def _wait(self, i: int) -> None:
        self.go[i].get()
        self.state[i] = "running"
        if self.aborting:
            raise Pruned()

    # -- deciding (whoever holds the baton) -------------------------------------------------------

    def _decide(self) -> int | None:
        """Choose and wake the next op, passing it the baton; None when nothing can step (the main
        thread takes the baton to sort it out)."""
        runnable = self._runnable()
        if not runnable:
            self.baton = self.MAIN
            self.back.put(("done",) if all(s == "done" for s in self.state) else ("stuck",))
            return None
        pending = {i: self.pending[i] for i in runnable}
        chosen = ABORT if self.aborting else self.choose(len(self.choices), runnable, pending, self.current)
        if chosen == ABORT:
            self._abort()
            return None
        if chosen not in runnable:
            chosen = runnable[0]
        self.choices.append(chosen)
        self.current = chosen
        self.baton = chosen
        self.progress += 1
        if self.state[chosen] != "running":
            self.state[chosen] = "running"
            if chosen != self.threads.get(threading.get_ident()):
                self.go[chosen].put(None)
        return chosen

    def _abort(self) -> None:
        """The run is redundant: every op unwinds (each raises ``Pruned`` where it waits)."""
        self.aborting = True
        self.baton = self.MAIN
        me = self.threads.get(threading.get_ident())
        for i, s in enumerate(self.state):
            if s in ("parked", "blocked", "new") and i != me:
                self.go[i].put(None)
        if all(s == "done" for s in self.state):
            self.back.put(("done",))

    def _runnable(self) -> tuple[int, ...]:
        return tuple(i for i, s in enumerate(self.state) if s == "parked" or (s == "blocked" and self._may_wake(i)))

    def _may_wake(self, i: int) -> bool:
        predicate = self.predicate[i]
        return self.aborting or (predicate is not None and predicate())

    # -- the main thread ---------------------------------------------------------------------------

    def run(self) -> None:
        workers = _workers(len(self.bodies))
        for i, (worker, body) in enumerate(zip(workers, self.bodies)):
            worker.jobs.put(self._wrap(i, body))
        for _ in self.bodies:  # every operation parks at its start
            self.back.get()
        with self._lock:
            self._decide()
        seen = self.progress
        while True:
            try:
                message = self.back.get(timeout=self.step_timeout)
            except queue.Empty:
                if self.progress != seen:
                    seen = self.progress  # still stepping: keep watching
                    continue
                self._take_over(workers)
                seen = self.progress
                continue
            if message[0] == "done" and all(s == "done" for s in self.state):
                return
            if message[0] in ("stuck", "resurfaced") and self.baton == self.MAIN:
                self._unstick(workers)
                seen = self.progress

    def _take_over(self, workers: list[_Worker]) -> None:
        """Nothing happened for a step timeout: the running op blocked where the kit cannot see.
        It is left to run uncontrolled, and another op is scheduled."""
        with self._lock:
            running = [i for i, s in enumerate(self.state) if s == "running"]
            if not running and self.baton != self.MAIN:
                return
            for i in running:
                self.state[i] = "uncontrolled"
                self.uncontrolled += 1
            self.baton = self.MAIN
        self._unstick(workers)

    def _unstick(self, workers: list[_Worker]) -> None:
        """The main thread holds the baton: step on if anything can, else wake a timed waiter, wait for
        an uncontrolled op, or give up."""
        with self._lock:
            if self.aborting:
                return
            if self._runnable():
                self._decide()
                return
            if all(s == "done" for s in self.state):
                self.back.put(("done",))
                return
            for i, s in enumerate(self.state):
                if s == "blocked" and self.has_timeout[i]:
                    self.timed_out[i] = True
                    self.baton = i
                    self.state[i] = "running"
                    self.go[i].put(None)
                    return
        if "uncontrolled" in self.state:
            try:
                message = self.back.get(timeout=self.stall_timeout)  # it parked, blocked or finished
            except queue.Empty:
                stuck = [i for i, s in enumerate(self.state) if s == "uncontrolled"]
                for i in stuck:
                    _retire(workers[i])
                raise Stalled(
                    "timeout", f"operation(s) {stuck} blocked outside the kit's control for {self.stall_timeout:g} s"
                ) from None
            self.back.put(message)  # let the main loop see it, then decide
            return
        if primitives.foreign[0] and not self._waited_for_foreign:
            # A thread of the adapter's own may still set what an operation waits for.
            self._waited_for_foreign = True
            with primitives._state:
                primitives._changed.wait(self.step_timeout)
            self.back.put(("stuck",))
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
                self.back.put(("ready", i))
                self._wait(i)
                body()
            finally:
                primitives.blockers.pop(me, None)
                primitives.parks.pop(me, None)
                self.threads.pop(me, None)
                self._finish(i)

        return job

    def _finish(self, i: int) -> None:
        with self._lock:
            self.state[i] = "done"
            self.progress += 1
            if self.aborting:
                if all(s == "done" for s in self.state):
                    self.back.put(("done",))
                return
            if self.on_finish:
                self.on_finish(i)
            if self.baton == i:
                self._decide()
            else:
                self.back.put(("resurfaced", i))

    def retire_unfinished(self) -> None:
        """After a stall the unfinished operations stay parked forever; their workers are replaced."""
        workers = _workers(len(self.bodies))
        for i, st in enumerate(self.state):
            if st != "done":
                _retire(workers[i])
