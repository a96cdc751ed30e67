"""Kit-controlled stand-ins for the standard library's synchronisation primitives, and ``sleep``.

While the kit builds and drives an adapter, ``threading.Lock``, ``RLock``, ``Condition``, ``Event``,
``Semaphore`` and ``BoundedSemaphore`` are these classes and ``time.sleep`` is ``kit_sleep``. A thread
working for an operation that would block on one tells the scheduler what it waits for instead of
blocking a real thread, so a mutex around load-and-fill (as dogpile-style caches use) neither hangs
the kit nor costs a timeout at each switch, and a deadlock can name the locks. Outside such threads
they behave as ordinary primitives.

``control.controlled()`` puts them in place (and makes threads an operation starts its helpers,
``helpers``). Which thread works for which operation is the running session's (``session``).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from .session import running

# The real ones, kept before anything is patched: the kit's own machinery always uses these.
RealLock = threading.Lock
RealRLock = threading.RLock
RealCondition = threading.Condition
RealEvent = threading.Event
real_sleep = time.sleep
real_start = threading.Thread.start

# One lock over every kit primitive's fields, and the condition that wakes threads no scheduler runs
# waiting on one. The process's, not a check's: a primitive the adapter made may outlive its check
# (held by a thread the check left behind) and be used by threads of no check at all.
_state = RealLock()
_changed = RealCondition(_state)


class Scheduled(Protocol):
    """What the scheduler gives each thread it controls."""

    atomic: int  # inside an atomic step (an env call): its own scheduling points are not ones

    def park(self, call: tuple) -> None: ...

    def block(self, predicate: Callable[[], bool], timeout: float | None, what: Any) -> bool: ...


def handle() -> Scheduled | None:
    """The scheduler's handle of the calling thread, if it works for an operation of the running
    session (``Session.scheduled``)."""
    session = running()
    return None if session is None else session.scheduled.get(threading.get_ident())


def _site() -> str:
    """Where the code that made a primitive is: the first frame outside this module and threading, as
    file:line:column, since one line often makes two locks (``a, b = Lock(), Lock()``)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename in (__file__, threading.__file__):
        frame = frame.f_back
    if frame is None:
        return "?"
    where = f"{frame.f_code.co_filename.rpartition('/')[2]}:{frame.f_lineno}"
    for index, (_, _, column, _) in enumerate(frame.f_code.co_positions()):
        if index == frame.f_lasti // 2:
            return where if column is None else f"{where}:{column + 1}"
    return where


def _park(what: str) -> None:
    me = handle()
    if me is not None and not me.atomic:
        me.park(("lock", what, None))


def _wait_until(predicate: Callable[[], bool], timeout: float | None, what: Any) -> bool:
    """Block the calling thread until ``predicate()`` (evaluated under ``_state``) holds. Deadlines
    are on ``perf_counter``: the virtual clock moves ``time.monotonic`` by whole minutes."""
    me = handle()
    if me is not None and not me.atomic:
        with _state:
            if predicate():
                return True
        return me.block(lambda: _locked(predicate), timeout, what)
    deadline = None if timeout is None or timeout < 0 else time.perf_counter() + timeout
    with _state:
        while not predicate():
            remaining = None if deadline is None else deadline - time.perf_counter()
            if remaining is not None and remaining <= 0:
                return False
            _changed.wait(remaining)
        return True


def _touch() -> None:
    """A kit primitive is used: by a thread no scheduler runs, while operations run, it is foreign."""
    session = running()
    if session is not None and session.scheduled and threading.get_ident() not in session.scheduled:
        session.foreign = True


def _locked(predicate: Callable[[], bool]) -> bool:
    with _state:
        return predicate()


def _notify() -> None:
    _changed.notify_all()


def kit_sleep(seconds: float) -> None:
    """``time.sleep`` during a run: for a thread working for an operation, a wait that only time ends,
    so the scheduler may run others meanwhile and end it when it chooses (no real time passes)."""
    me = handle()
    if me is None or me.atomic:
        real_sleep(seconds)
        return
    me.block(_never, seconds if seconds > 0 else 0, "a sleep")


def _never() -> bool:
    return False


class KitLock:
    _reentrant = False
    kind = "Lock"

    def __init__(self) -> None:
        self._owner: int | None = None
        self._count = 0
        self.site = _site()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        _touch()
        _park("acquire")
        me = threading.get_ident()
        while True:
            with _state:
                if self._owner is None:
                    self._owner, self._count = me, 1
                    return True
                if self._reentrant and self._owner == me:
                    self._count += 1
                    return True
            if not blocking:
                return False
            if not _wait_until(lambda: self._owner is None, None if timeout < 0 else timeout, self):
                return False

    def release(self) -> None:
        _touch()
        with _state:
            if self._owner is None or (self._reentrant and self._owner != threading.get_ident()):
                raise RuntimeError("release unlocked lock")
            self._count -= 1
            if self._count == 0:
                self._owner = None
            _notify()

    def locked(self) -> bool:
        return self._owner is not None

    @property
    def owner(self) -> int | None:
        """The thread holding it, if any."""
        return self._owner

    __enter__ = acquire

    def __exit__(self, *exc: Any) -> None:
        self.release()

    # Condition needs these to release a reentrant lock fully while waiting.
    def _release_save(self) -> tuple[int | None, int]:
        with _state:
            saved = (self._owner, self._count)
            self._owner, self._count = None, 0
            _notify()
        return saved

    def _acquire_restore(self, saved: tuple[int | None, int]) -> None:
        self.acquire()
        with _state:
            self._owner, self._count = saved

    def _is_owned(self) -> bool:
        return self._owner == threading.get_ident()


class KitRLock(KitLock):
    _reentrant = True
    kind = "RLock"


class KitCondition:
    kind = "Condition"

    def __init__(self, lock: Any = None) -> None:
        self._lock = lock if lock is not None else KitRLock()
        self._waiters: list[list[bool]] = []
        self.acquire = self._lock.acquire
        self.release = self._lock.release
        self.site = _site()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        _touch()
        token = [False]
        with _state:
            self._waiters.append(token)
        saved = self._lock._release_save() if hasattr(self._lock, "_release_save") else self._lock.release()
        try:
            return _wait_until(lambda: token[0], timeout, self)
        finally:
            with _state:
                if token in self._waiters:
                    self._waiters.remove(token)
            try:
                self._restore(saved)
            except BaseException:
                # The run was cut short as it took the lock back (Pruned): unscheduled now, it takes it
                # like any thread and unwinds holding it, so the caller's `with cond:` releases it.
                self._restore(saved)
                raise

    def _restore(self, saved: Any) -> None:
        if hasattr(self._lock, "_acquire_restore"):
            self._lock._acquire_restore(saved)
        else:
            self._lock.acquire()

    def wait_for(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        result = predicate()
        while not result:
            if not self.wait(timeout):
                return predicate()
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        _touch()
        with _state:
            for token in self._waiters[:n]:
                token[0] = True
            del self._waiters[:n]
            _notify()

    def notify_all(self) -> None:
        self.notify(len(self._waiters))


class KitEvent:
    kind = "Event"

    def __init__(self) -> None:
        self._flag = False
        self.site = _site()

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        _touch()
        with _state:
            self._flag = True
            _notify()

    def clear(self) -> None:
        _touch()
        with _state:
            self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        _touch()
        return _wait_until(lambda: self._flag, timeout, self)


class KitSemaphore:
    kind = "Semaphore"

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._value = value
        self.site = _site()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        _touch()
        _park("acquire")
        while True:
            with _state:
                if self._value > 0:
                    self._value -= 1
                    return True
            if not blocking or not _wait_until(lambda: self._value > 0, timeout, self):
                return False

    __enter__ = acquire

    def release(self, n: int = 1) -> None:
        _touch()
        with _state:
            self._value += n
            _notify()

    def __exit__(self, *exc: Any) -> None:
        self.release()


class KitBoundedSemaphore(KitSemaphore):
    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self._initial = value

    def release(self, n: int = 1) -> None:
        _touch()
        if self._value + n > self._initial:
            raise ValueError("Semaphore released too many times")
        super().release(n)


def start_plainly(thread: threading.Thread) -> None:
    """Start a thread without touching a kit primitive: ``Thread.start`` waits on an Event made with
    the thread, a kit Event when made during a run, and that handshake is the OS's, not a step."""
    if isinstance(getattr(thread, "_started", None), KitEvent):
        thread._started = real_event()  # type: ignore[attr-defined]
    real_start(thread)


def real_event() -> threading.Event:
    """A standard-library Event even while the kit's are in place: ``Event()`` would build its
    Condition and Lock from the patched module."""
    event = RealEvent.__new__(RealEvent)
    event._cond = _REAL["Condition"](_REAL["Lock"]())  # type: ignore[attr-defined]
    event._flag = False  # type: ignore[attr-defined]
    return event


def describe(what: Any, op_of_thread: Callable[[int], str | None]) -> str:
    """What a blocked thread waits for, in a deadlock or timeout message."""
    if isinstance(what, str):
        return what
    made = f"the {what.kind} made at {what.site}"
    if isinstance(what, KitLock) and what.owner is not None:
        holder = op_of_thread(what.owner)
        return f"{made}, held by {holder}" if holder else f"{made}, held by a thread the kit does not run"
    if isinstance(what, KitEvent):
        return f"{made}, never set"
    return made


# Client libraries' own locks guard their internals (a connection pool, an in-process server), are
# never held while the application waits on something, and are taken in places the kit cannot
# schedule (a client's ``__del__`` run by the garbage collector): they stay real, so an ordinary Redis
# or SQL call is not a handful of scheduling points, and a collection never is one.
INFRASTRUCTURE = ("redis", "fakeredis", "lupa", "psycopg", "psycopg_pool")


def _by_infrastructure() -> bool:
    module = sys._getframe(2).f_globals.get("__name__", "")
    return module.partition(".")[0] in INFRASTRUCTURE


def _lock() -> Any:
    return RealLock() if _by_infrastructure() else KitLock()


def _rlock() -> Any:
    return RealRLock() if _by_infrastructure() else KitRLock()


def _condition(lock: Any = None) -> Any:
    if (lock is None and _by_infrastructure()) or (lock is not None and not isinstance(lock, KitLock)):
        return RealCondition(lock)  # a real lock's condition must be real
    return KitCondition(lock)


# What ``threading`` holds while the kit's primitives are in place, and what it held before: constant.
# The factories are staticmethods, which are callable (Python 3.10+) and, unlike plain functions,
# never bind: a library that keeps ``lock_class = threading.Lock`` as a class attribute (werkzeug's
# routing Map) and is first imported inside a check calls ``self.lock_class()`` and gets a lock, as it
# does with the standard library's builtin, not "_lock() takes 0 positional arguments".
_PATCH = {
    "Lock": staticmethod(_lock),
    "RLock": staticmethod(_rlock),
    "Condition": staticmethod(_condition),
    "Event": KitEvent,
    "Semaphore": KitSemaphore,
    "BoundedSemaphore": KitBoundedSemaphore,
}
_REAL = {name: getattr(threading, name) for name in _PATCH}


def patch(on: bool) -> None:
    """Put the kit's primitives and ``kit_sleep`` in place (or the standard library's back)."""
    threading.__dict__.update(_PATCH if on else _REAL)
    time.sleep = kit_sleep if on else real_sleep


def patched() -> bool:
    """Whether ``threading``'s primitives are the kit's right now (read off the module itself)."""
    return threading.__dict__.get("Lock") is _PATCH["Lock"]


class real_primitives:
    """The standard library's primitives for the duration, even inside ``controlled()``: for what the
    kit itself makes mid-run (its in-process Redis server), whose locks must never be scheduling points."""

    def __enter__(self) -> None:
        self.swapped = patched()
        if self.swapped:
            threading.__dict__.update(_REAL)

    def __exit__(self, *exc: object) -> None:
        if self.swapped:
            threading.__dict__.update(_PATCH)
