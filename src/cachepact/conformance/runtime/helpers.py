"""Work an operation hands to another thread stays the operation's.

Code under test starts threads (``threading.Thread``, ``Timer``) and submits work to executors
(``concurrent.futures``, ``loop.run_in_executor``, asgiref's ``sync_to_async``). While a run is
controlled, a thread started by a thread that works for an operation becomes one of that
operation's helpers: the scheduler runs it like any other participant, its DB and cache calls are
recorded as the operation's, and the operation is in flight until it ends. Work submitted to a
``concurrent.futures`` executor (and so ``loop.run_in_executor``) runs at once on the submitting
thread, instead of on the pool's long-lived workers, which would otherwise carry one operation's
work into another's and leave an event loop blocked in ``select`` where the kit cannot see.

A thread started outside any operation (a library's background thread, made in ``make(env)``) is
not adopted: the kit does not control it, and its calls to ``env`` are reported. Except where the
pattern has background work (refresh-ahead, write-behind): there a thread the factory starts is a
daemon of its world (``Scheduler.keep``), started with the world's first run and scheduled like an
operation, idle while it waits for work.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from . import primitives as _primitives
from .session import running
from .signals import Pruned

# The originals this module patches over, kept at import (as ``primitives`` keeps the real locks).
real_submit = ThreadPoolExecutor.submit
real_join = threading.Thread.join


class Adopter(Protocol):
    def adopt(self, thread: threading.Thread) -> None: ...

    def in_background(self) -> bool: ...


def _adopter() -> Adopter | None:
    return getattr(_primitives.handle(), "scheduler", None)


def _start(thread: threading.Thread) -> None:
    adopter = _adopter()
    if adopter is None:
        session = running()
        if session is not None and session.daemons is not None:
            # Started by the factory of a pattern with background work (a flusher, a periodic
            # loop): the world runs it as a daemon, under its schedulers, from its first run.
            session.daemons.append((thread, session.building))
            return
        # Not started for an operation: what an operation waits for may now be set from outside
        # the kit's view, so an apparent deadlock deserves a moment's patience.
        if session is not None:
            session.foreign = True
        _primitives.real_start(thread)
        return
    adopter.adopt(thread)  # registers the helper and wraps its run()
    _primitives.start_plainly(thread)


def _join(self: threading.Thread, timeout: float | None = None) -> None:
    """Joining a helper is waiting for its participant to end, a scheduling point like any lock:
    the helper runs meanwhile, and a join with a timeout may also time out first."""
    helper = getattr(self, "_cachepact_helper", None)
    scheduled = helper is not None and _primitives.handle() is not None
    if scheduled and not _primitives._wait_until(lambda: helper.state == "done", timeout, f"the thread {self.name}"):
        return  # timed out, as the scheduler chose
    real_join(self, timeout)  # what is left of the thread is its exit: a moment, out of sight


def _submit(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
    """Work an operation submits runs there and then, on its behalf, and comes back as a done
    future. The calls it makes are the operation's, in the order a pool thread picked up at once
    would make them; an event loop waiting in ``select`` for a worker (``run_in_executor``) never
    blocks out of the kit's sight."""
    adopter = _adopter()
    if adopter is None:
        return real_submit(self, fn, *args, **kwargs)
    if adopter.in_background():
        # In a pattern with background work, work a read submits is a refresh and work a write
        # submits a flush: a worker thread of its own, which the operation does not wait for.
        return _on_a_thread(fn, args, kwargs)
    future: Future = Future()
    future.set_running_or_notify_cancel()
    try:
        result = fn(*args, **kwargs)
    except Pruned:
        raise
    except BaseException as e:
        future.set_exception(e)
    else:
        future.set_result(result)
    return future


def _on_a_thread(fn: Any, args: tuple, kwargs: dict) -> Future:
    future: Future = Future()
    future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:
            future.set_exception(e)
            if isinstance(e, Pruned):
                raise
        else:
            future.set_result(result)

    threading.Thread(target=run, name="executor work").start()  # adopted: a worker
    return future


# asyncio's BaseEventLoop.shutdown_default_executor, saved the first time it is patched over (asyncio
# loads only if the code under test uses it): an original of a process-wide patch, as real_join is.
_real_shutdown: list[Any] = []


async def _shutdown_default_executor(self: Any, *args: Any, **kwargs: Any) -> None:
    """``asyncio.run`` ends by shutting its default executor down from a thread of its own while
    the loop waits in ``select``; under the kit that executor's work already ran inline, so it is
    shut down on the spot instead of blocking the operation where the kit cannot see."""
    if _adopter() is None or self._default_executor is None:
        return await _real_shutdown[0](self, *args, **kwargs)
    self._executor_shutdown_called = True
    self._default_executor.shutdown(wait=True)


def adopt_threads(on: bool) -> None:
    """While on, threads and executor work started for an operation become its helpers."""
    threading.Thread.start = _start if on else _primitives.real_start  # type: ignore[method-assign]
    threading.Thread.join = _join if on else real_join  # type: ignore[method-assign]
    ThreadPoolExecutor.submit = _submit if on else real_submit  # type: ignore[method-assign]
    base_events = sys.modules.get("asyncio.base_events")  # only if the code under test uses asyncio
    if base_events is not None:
        loop = base_events.BaseEventLoop
        if not _real_shutdown:
            _real_shutdown.append(loop.shutdown_default_executor)
        loop.shutdown_default_executor = _shutdown_default_executor if on else _real_shutdown[0]
