"""The app instances' threads: where operations run.

Each app instance (one ``make(env)``, as one process of a deployment) has its threads, made fresh
for each world and reused across that world's operations as a server's thread pool is. Operations
one at a time run reads on the instance's first thread and writes on its second, so a
``threading.local`` memo meets writes made on another thread of its own process (on one thread,
it would always see its own writes). Moving to another thread costs a wake-up (about 50 us here);
this way a run pays it only where a read follows a write or a write a read, not at every
operation, as a rotation over the pool did (a quarter more time per sequential check). Operations
in flight together take a thread each. The thread follows from the operation alone, so the same
sequence lands on the same threads every time (a replay is the run it names). Fresh for each
world, so nothing a thread holds (a thread-local, a per-thread client bound to an env) leaks from
one run into the next.

They are plain OS threads (``_thread``): a ``threading.Thread`` costs over twice as much to start,
and a check starts thousands.
"""

from __future__ import annotations

import _thread
import contextlib
import queue
import sys
from collections.abc import Callable
from typing import Any

from .session import Session, running

WRITER = 1  # the slot an instance's writes run on one at a time; its reads run on slot 0


class AppThread:
    """A thread of one app instance, running the jobs it is given, one at a time.

    While it runs one it is in its session's ``busy``: one still busy when its check is over was
    left behind (a timeout, Ctrl-C), and may yet send commands (``record/redis_hook``)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.stranded = False  # left blocked out of the kit's control: never given work again
        # The event loop its coroutine operations run on (``record/coroutines.drive``), made by the
        # first and kept for the next: a loop costs a socket pair and a selector to make, more than
        # a short coroutine costs to run. It is closed with the thread.
        self.event_loop: Any = None
        # Who takes the loop: the thread for its next operation, or ``close`` (another thread, at the
        # world's end) to close it while it rests. A plain lock: the kit's would be a scheduling point.
        self.loop_lock = _thread.allocate_lock()
        # Started with its first job: an operation that never runs (a schedule cut before its
        # turn) costs no thread.
        self.started = False

    def submit(self, job: Callable[[], None]) -> None:
        if not self.started:
            self.started = True
            _thread.start_new_thread(self._loop, ())
        self.jobs.put(job)

    def close(self) -> None:
        with self.loop_lock:
            loop = self.event_loop
            if loop is not None and getattr(loop, "resting", False):
                self.event_loop = None
                with contextlib.suppress(Exception):  # a world cut short: the thread closes it on its way out
                    loop.close()  # idle between jobs: closed now, so the world's end leaves no loop open
        if self.started:
            self.jobs.put(None)

    def _loop(self) -> None:
        me = _thread.get_ident()
        busy = self.session.busy
        try:
            while (job := self.jobs.get()) is not None:
                busy[me] = self
                try:
                    job()  # a job handles what its body raises (the scheduler's wrapper)
                except BaseException:
                    if sys.is_finalizing() or running() is not self.session:
                        # Its check is over (Ctrl-C, a timeout) and left it at work: what its job
                        # raised against a world already closed is no one's to print after the report.
                        return
                    raise
                finally:
                    busy.pop(me, None)
        finally:
            with self.loop_lock, contextlib.suppress(Exception):
                if self.event_loop is not None:
                    self.event_loop.close()


class Deployment:
    """The threads of every app instance of one world, made as operations need them."""

    def __init__(self, instances: int, session: Session) -> None:
        self.session = session
        self.pools: list[list[AppThread]] = [[] for _ in range(instances)]

    def next_thread(self, instance: int, *, writes: bool) -> AppThread:
        """The thread ``instance``'s next operation alone runs on: a read's, or a write's."""
        return self.thread(instance, WRITER if writes else 0)

    def thread(self, instance: int, slot: int = 0) -> AppThread:
        """The ``slot``-th thread of ``instance`` (0: the one operations alone run on)."""
        pool = self.pools[instance]
        while len(pool) <= slot:
            pool.append(AppThread(self.session))
        if pool[slot].stranded:
            pool[slot] = AppThread(self.session)
        return pool[slot]

    def close(self) -> None:
        for pool in self.pools:
            for t in pool:
                if not t.stranded:
                    t.close()
