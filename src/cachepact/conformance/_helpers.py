"""Work an operation hands to another thread stays the operation's.

Code under test starts threads (``threading.Thread``, ``Timer``) and submits work to executors
(``concurrent.futures``, ``loop.run_in_executor``, asgiref's ``sync_to_async``). While a run is
controlled, a thread started by a thread that works for an operation becomes one of that
operation's helpers: the scheduler runs it like any other participant, its DB and cache calls are
recorded as the operation's, and the operation is in flight until it ends. Work submitted to a
thread pool runs on a helper of its own instead of the pool's long-lived workers, which would
otherwise carry one operation's work into another's.

A thread started outside any operation (a library's background thread, made in ``make(env)``) is
not adopted: the kit does not control it, and its calls to ``env`` are reported.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from . import _primitives
from ._signals import Pruned

real_submit = ThreadPoolExecutor.submit


class Adopter(Protocol):
    def adopt(self, thread: threading.Thread) -> None: ...


def _adopter() -> Adopter | None:
    handle = _primitives.scheduled.get(threading.get_ident())
    return getattr(handle, "scheduler", None)


def _start(thread: threading.Thread) -> None:
    adopter = _adopter()
    if adopter is None:
        # Not started for an operation: what an operation waits for may now be set from outside
        # the kit's view, so an apparent deadlock deserves a moment's patience.
        _primitives.foreign[0] = True
        _primitives.real_start(thread)
        return
    adopter.adopt(thread)  # registers the helper and wraps its run()
    _primitives.start_plainly(thread)


def _submit(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
    if _adopter() is None:
        return real_submit(self, fn, *args, **kwargs)
    future: Future = Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = fn(*args, **kwargs)
        except Pruned:
            raise
        except BaseException as e:
            future.set_exception(e)
        else:
            future.set_result(result)

    threading.Thread(target=work, name=f"{self._thread_name_prefix or 'executor'}-cachepact", daemon=True).start()
    return future


def adopt_threads(on: bool) -> None:
    """While on, threads and executor work started for an operation become its helpers."""
    threading.Thread.start = _start if on else _primitives.real_start  # type: ignore[method-assign]
    ThreadPoolExecutor.submit = _submit if on else real_submit  # type: ignore[method-assign]


_primitives._Controlled.adopt_threads = staticmethod(adopt_threads)  # type: ignore[assignment]
