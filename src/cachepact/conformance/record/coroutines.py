"""Coroutine adapters: an ``async def`` read or write runs as a task on an event loop of its own, on
the operation's thread, so every store call it awaits is the same scheduling point a synchronous
call is, and the drivers, replay strings and judge are the ones synchronous adapters get.

A task started while the Cache's code (``cache_code``) is running belongs to the Cache, as a helper
thread does: the loop's task factory asks the attribution of the operation's app instance, at the
task's creation, and the task carries the answer in its context (``contextvars``: every task copies
its creator's). Tasks the operation leaves running are its work: it ends once they are done.

Time on the loop is the check's: ``loop.time()`` reads ``time.monotonic``, which the virtual clock
moves, and the loop's waits for a timer go through ``time.sleep``, the kit's during a check
(``KitSelector``), so ``asyncio.sleep`` and ``asyncio.timeout`` take no real time and a poll loop's
waits are scheduling points, as a thread's ``time.sleep`` is.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import selectors
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from ..runtime.primitives import handle
from ..runtime.signals import raised_unwinding

# True in the context of a task the Cache's code started (and of the tasks that task starts).
CACHE_TASK: contextvars.ContextVar[bool] = contextvars.ContextVar("cachepact_cache_task", default=False)
# In the context of a task that is background work (a refresh a read left running in refresh-ahead):
# what its calls work for, instead of its thread's operation (``Recorder.context``).
WORKER: contextvars.ContextVar[Any] = contextvars.ContextVar("cachepact_worker", default=None)


def is_awaitable(result: Any) -> bool:
    return inspect.isawaitable(result)


class KitSelector(selectors.DefaultSelector):
    """The loop's selector, where its waits are: I/O ready now is returned at once; a wait that only a
    timer ends (``asyncio.sleep``, a timeout) is ``time.sleep``, which during a check is the kit's
    (a wait the scheduler ends, the virtual clock moving on when every participant waits). Once it
    ends, the time waited has passed for the loop, as it has for a thread's ``time.sleep``."""

    def __init__(self) -> None:
        super().__init__()
        self.slept = 0.0  # the loop's time runs this far ahead of the clock it reads
        self.callbacks: Any = ()  # the loop's queue of ready callbacks (set by the loop)
        self.settling = False  # the run is over: cancelled tasks unwind without the kit's waits

    def select(self, timeout: float | None = None) -> list:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if self.settling:
            return super().select(0.001 if timeout is None else min(timeout, 0.001))
        me = handle()
        if me is None:  # not an operation's thread (a loop run outside the scheduler): a plain wait
            return super().select(timeout)
        if timeout is None and len(self.get_map()) > 1:
            return super().select(None)  # waiting on I/O alone (a socket to a real server)
        # A wait another operation may end: an asyncio primitive it shares with this one (a Lock, an
        # Event, a Queue made in make) completes this loop's future from its own thread, which puts
        # the future's callback on this loop's ready queue. The scheduler sees that, so the wait is
        # one the kit schedules, as a kit lock's is; a timed wait (asyncio.sleep, a timeout) is one
        # time may end as well.
        callbacks = self.callbacks
        before = time.monotonic()
        woken = me.block(
            lambda: bool(callbacks),
            timeout,
            "a sleep"
            if timeout is not None
            else "an asyncio future nothing completes (an Event never set, a Lock never released, a task "
            "awaited that waits for itself)",
        )
        if not woken:
            # Whatever of the wait the clock did not pass itself (the kit moves it only when every
            # participant waits) has passed for this loop all the same.
            self.slept += max(0.0, timeout - (time.monotonic() - before))
        return super().select(0)


class KitTask(asyncio.tasks._PyTask):  # type: ignore[name-defined,misc]
    """A task on a kit loop that may await a future of another kit loop: a task, or a future, made by
    another operation (an in-flight load shared between requests, as ``async-lru`` and hand-written
    single-flight maps do). asyncio's own (C) task refuses any future not of its loop; this one, the
    pure-Python ``Task`` asyncio ships, asks ``futures._get_loop`` (which ``_share_between_loops``
    answers with the waiting loop for kit loops) and, when the future completes on its own loop's
    thread, moves its wake-up to this task's loop, whose ``KitSelector`` the scheduler then wakes."""

    def _Task__wakeup(self, future: asyncio.Future) -> None:
        if asyncio.events._get_running_loop() is not self._loop:
            self._loop.call_soon(super()._Task__wakeup, future, context=self._context)
            return
        super()._Task__wakeup(future)


def _waiting_code() -> frozenset:
    """The code that asks ``futures._get_loop`` of a future a task is about to wait on, in this
    Python's asyncio: the pure-Python task's step (3.12 moved the question into
    ``__step_run_and_handle_result``) and ``ensure_future`` (3.11 asks in ``_ensure_future``)."""
    found = []
    for name in ("_Task__step", "_Task__step_run_and_handle_result"):
        method = asyncio.tasks._PyTask.__dict__.get(name)
        if method is not None:
            found.append(method.__code__)
    for name in ("_ensure_future", "ensure_future"):
        function = getattr(asyncio.tasks, name, None)
        if function is not None and hasattr(function, "__code__"):
            found.append(function.__code__)
    return frozenset(found)


@functools.cache
def kit_tasks_work() -> bool:
    """Whether ``KitTask`` (asyncio's pure-Python task) is a task this Python's asyncio knows as the
    current one (``asyncio.timeout``, ``wait_for`` ask): checked once, on a plain loop. Where it is
    not, operations run on asyncio's own tasks, and a task one operation made cannot be awaited by
    another (asyncio refuses a future of another loop)."""

    async def probe() -> bool:
        return asyncio.current_task() is not None

    loop = asyncio.new_event_loop()
    try:
        loop.set_task_factory(lambda loop, coro, **kwargs: KitTask(coro, loop=loop, **kwargs))
        return bool(loop.run_until_complete(probe()))
    except Exception:
        return False
    finally:
        loop.close()


def _share_between_loops() -> None:
    """Let an asyncio primitive (``Lock``, ``Semaphore``, ``Event``, ``Condition``, ``Queue``,
    ``Barrier``) made in ``make`` serve every operation, as it serves every request of a process.

    asyncio binds such a primitive to the first loop that waits on it and refuses any other loop
    (``RuntimeError: ... is bound to a different event loop``). The kit gives each operation a loop
    of its own, on its own thread, and runs one thread at a time: a waiter's future, completed from
    another operation's thread, wakes its own loop through ``KitSelector``. So between the kit's
    loops the binding is lifted: each wait makes its future on the loop that waits. Any other loop
    keeps asyncio's rule. Patched once, for the process, as redis-py is.

    The same goes for a future another operation made (``futures._get_loop``, which tasks, ``gather``,
    ``shield`` and ``wait_for`` ask): between kit loops it is the waiting loop's (see ``KitTask``)."""
    from asyncio import futures, mixins

    loop_of = futures._get_loop
    if getattr(loop_of, "_cachepact_original", None) is None:
        # Only where a task takes up a future to wait on (its step, ``ensure_future``): ``all_tasks``
        # asks too, and must still tell each loop's tasks apart.
        waiting = _waiting_code()

        def _get_loop_of(fut: Any) -> asyncio.AbstractEventLoop:
            own = loop_of(fut)
            if isinstance(own, KitEventLoop) and sys._getframe(1).f_code in waiting:
                running = asyncio.events._get_running_loop()
                if isinstance(running, KitEventLoop):
                    return running
            return own

        _get_loop_of._cachepact_original = loop_of  # type: ignore[attr-defined]
        futures._get_loop = _get_loop_of

    current = mixins._LoopBoundMixin._get_loop
    if getattr(current, "_cachepact_original", None) is not None:
        return

    def _get_loop(self: Any) -> asyncio.AbstractEventLoop:
        loop = asyncio.events._get_running_loop()
        if isinstance(loop, KitEventLoop) and isinstance(self._loop, KitEventLoop):
            return loop
        return current(self)

    _get_loop._cachepact_original = current  # type: ignore[attr-defined]
    mixins._LoopBoundMixin._get_loop = _get_loop  # type: ignore[method-assign]


class KitEventLoop(asyncio.SelectorEventLoop):
    """An event loop whose timers wait through ``KitSelector``: one ``asyncio.sleep`` is one wait, as
    one ``time.sleep`` is, so a coroutine and its threaded twin meet the same scheduling points."""

    def __init__(self) -> None:
        self._kit_selector = KitSelector()
        super().__init__(self._kit_selector)
        self._kit_selector.callbacks = self._ready  # asyncio keeps them there (no public API shows them)
        # Debug mode (-X dev, PYTHONASYNCIODEBUG) refuses a callback scheduled from another thread:
        # here that is how one operation wakes another's waiter, one thread running at a time.
        self.set_debug(False)
        # Between its thread's operations the loop rests: to the operations it served it is as
        # good as closed (it is kept open only to serve the thread's next one).
        self.resting = True

    def call_soon(self, callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:
        if self.resting or self.is_closed():
            running = asyncio.events._get_running_loop()
            if isinstance(running, KitEventLoop) and running is not self:
                # A future of an operation that is over (a task it left in a shared map) completes,
                # or is awaited, from another operation: its callbacks run on that one's loop.
                return running.call_soon(callback, *args, context=context)
            if self.resting:
                raise RuntimeError("Event loop is closed")  # what the operation's own loop would say
        return super().call_soon(callback, *args, context=context)

    def time(self) -> float:
        return super().time() + self._kit_selector.slept

    def __del__(self) -> None:
        # A loop its thread never got to close (a run cut short by Ctrl-C, a thread left blocked) is
        # closed when collected, quietly: at the interpreter's exit asyncio's own warning and close
        # would print tracebacks after the kit's one line.
        with contextlib.suppress(Exception):
            if not self.is_closed() and not self.is_running():
                self.resting = True
                self.close()

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        # "Future exception was never retrieved" for the kit's own unwinding of a redundant schedule
        # (an adapter's ``except BaseException: future.set_exception(e)`` passing it on) is no error
        # of the adapter's to log.
        error = context.get("exception")
        if isinstance(error, BaseException) and raised_unwinding(error):
            return
        super().call_exception_handler(context)


def drive(
    awaitable: Any,
    *,
    cache_started: Callable[[], bool],
    returned: Callable[[Any], None] | None = None,
    left_running: Callable[[list[asyncio.Task]], None] | None = None,
) -> Any:
    """Run ``awaitable`` to its end on its thread's event loop, then every task it left running; its
    result. ``cache_started()`` says, at a task's creation, whether the Cache's code is starting it;
    ``returned(result)`` is told the moment the coroutine returns, before its tasks are done, and
    ``left_running(tasks)`` then hears which of its tasks are still running (``as_worker``)."""
    _share_between_loops()
    shared = kit_tasks_work()
    loop = _loop_of_this_thread()

    def factory(loop: asyncio.AbstractEventLoop, coro: Coroutine, **kwargs: Any) -> asyncio.Task:
        context = kwargs.pop("context", None) or contextvars.copy_context()
        if not context.get(CACHE_TASK) and cache_started():
            context = context.copy()  # a context the caller passed stays as it was
            context.run(CACHE_TASK.set, True)
        task = (KitTask if shared else asyncio.Task)(coro, loop=loop, context=context, **kwargs)
        created.append(task)
        return task

    created: list[asyncio.Task] = []
    try:
        # The operation's own task is the kit's, the App's by definition: made directly, not asked
        # of the attribution (a look at the stack, a tenth of a short operation's cost).
        main = (KitTask if shared else asyncio.Task)(_with_tasks(awaitable, returned, left_running, created), loop=loop)
        created.append(main)
        loop.set_task_factory(factory)
        result = loop.run_until_complete(main)
        _run_ready(loop)
        if not loop._ready:
            _rest(loop)  # left as it was made: its thread's next operation may run on it
        return result
    except BaseException:
        # The operation raised (or its run was cut short): what its tasks raised is that error, here
        # already; the tasks still pending end cancelled, so the loop closes with none left running.
        _settle(loop, created)
        with contextlib.suppress(BaseException):
            _run_ready(loop)  # wake-ups of other operations' waiters it still holds
        raise
    finally:
        if not loop.resting:
            _discard(loop)


def _loop_of_this_thread() -> KitEventLoop:
    """The loop this operation runs on: its app thread's, kept from that thread's last operation
    (``AppThread.event_loop``), or a new one (made for the thread to keep, where it has one)."""
    thread = getattr(handle(), "thread", None)
    lock = getattr(thread, "loop_lock", None)
    if lock is None:  # not an app thread's: a loop for this operation alone
        loop = KitEventLoop()
        loop.resting = False
        return loop
    with lock:  # the world's end may be closing it from another thread (``AppThread.close``)
        loop = thread.event_loop
        if isinstance(loop, KitEventLoop) and loop.resting and not loop.is_closed():
            loop.resting = False
            return loop
        loop = thread.event_loop = KitEventLoop()
        loop.resting = False
        return loop


def _rest(loop: KitEventLoop) -> None:
    """Between operations: no task factory of the last one's, its time as a new loop's."""
    loop.set_task_factory(None)
    loop._kit_selector.slept = 0.0
    loop.resting = True


def _discard(loop: KitEventLoop) -> None:
    """A loop an operation left work on (it raised, was cut short, or left a callback queued) serves
    no other: closed, and its thread makes a new one for its next operation."""
    thread = getattr(handle(), "thread", None)
    lock = getattr(thread, "loop_lock", None)
    with lock if lock is not None else contextlib.nullcontext():
        if getattr(thread, "event_loop", None) is loop:
            thread.event_loop = None
        loop.resting = True
        loop.close()


def _run_ready(loop: KitEventLoop) -> None:
    """Run the callbacks the loop still holds once the operation is done: a task of its that another
    operation awaits has completed, and that operation's wake-up waits here (``KitTask``)."""
    for _ in range(100):  # each round runs what is ready now; a callback may make more ready
        if not loop._ready:
            return
        loop.call_soon(loop.stop)
        loop.run_forever()


def _settle(loop: KitEventLoop, created: list[asyncio.Task]) -> None:
    """Cancel what is still running and let it unwind, outside the kit's scheduling (the run is
    over, or cut short); every task's error is retrieved: it goes on from ``drive``, not as asyncio's
    "never retrieved" at exit."""
    loop._kit_selector.settling = True
    try:
        pending = [t for t in created if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            with contextlib.suppress(BaseException):
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    finally:
        for task in created:
            if task.done() and not task.cancelled():
                task.exception()


async def _with_tasks(
    awaitable: Any,
    returned: Callable[[Any], None] | None,
    left_running: Callable[[list[asyncio.Task]], None] | None,
    created: list[asyncio.Task],
) -> Any:
    """The operation's coroutine, then the tasks it left running (its work, as a helper thread's)."""
    result = await awaitable
    me = asyncio.current_task()
    if returned is not None:
        returned(result)  # the caller has its answer now; what its tasks still do comes after
    if left_running is not None and (running := [t for t in created if t is not me and not t.done()]):
        left_running(running)
    loop = asyncio.get_running_loop()
    while True:
        # The tasks made on this loop (``all_tasks`` would do, at the price of every live task's look)
        if pending := [t for t in created if t is not me and not t.done()]:
            done, _ = await asyncio.wait(pending)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # its work failed (or its run was cut short): the operation's error
            continue
        # Callbacks it scheduled (``loop.call_later``: a delayed second delete) are its work too. The
        # loop keeps them in ``_scheduled`` (no public API lists them).
        timers = [h for h in getattr(loop, "_scheduled", ()) if not h.cancelled()]
        if not timers:
            return result
        await asyncio.sleep(max(0.0, min(h.when() for h in timers) - loop.time()))


def as_worker(task: asyncio.Task, context: Any, done: Callable[[], None]) -> None:
    """From now on ``task`` (and the tasks it starts) works for ``context``, a worker of background
    work, as a thread would; ``done()`` is told when it ends. Whether a task is such work shows only
    when its operation returns without it: what it did before that (if the operation awaited after
    starting it) was recorded as the operation's."""
    task_context = task.get_context() if hasattr(task, "get_context") else task._context  # type: ignore[attr-defined]
    task_context.run(WORKER.set, context)
    task.add_done_callback(lambda _: done())


class AsyncStore:
    """A run's store (``env.cache`` or ``env.db``) with awaitable methods: ``env.async_cache``,
    ``env.async_db``. Each call is the synchronous one, recorded and scheduled the same way."""

    __slots__ = ("_store",)

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if name.startswith("_") or not callable(method):
            return method
        if name == "transaction":
            return method  # a context manager: ``with env.async_db.transaction():``, its calls awaited

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        call.__name__ = call.__qualname__ = name
        return call

    def __repr__(self) -> str:
        return f"<async {self._store.__class__.__name__}>"


__all__ = ["CACHE_TASK", "WORKER", "AsyncStore", "KitEventLoop", "as_worker", "drive", "is_awaitable"]
