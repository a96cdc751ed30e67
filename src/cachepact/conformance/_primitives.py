"""Kit-controlled stand-ins for the standard library's synchronisation primitives.

While a concurrent run builds and drives an adapter, ``threading.Lock``, ``RLock``,
``Condition``, ``Event``, ``Semaphore`` and ``BoundedSemaphore`` are these classes. An operation
that would block on one tells the scheduler what it waits for instead of blocking a real thread,
so a mutex around load-and-fill (as dogpile-style caches use) neither hangs the kit nor costs a
timeout at each switch. Outside an operation's thread they behave as ordinary primitives.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

# The real classes, kept before anything is patched: the kit's own machinery always uses these.
RealLock = threading.Lock
RealCondition = threading.Condition

_state = RealLock()  # guards every kit primitive's fields
_changed = RealCondition(_state)  # wakes non-operation threads waiting on a kit primitive

# Set by the scheduler: thread ident -> blocker function ``block(predicate, timeout) -> bool``.
blockers: dict[int, Callable[[Callable[[], bool], float | None], bool]] = {}
# And thread ident -> park function: acquiring a lock is itself a scheduling point.
parks: dict[int, Callable[[tuple], None]] = {}


def _park(what: str) -> None:
    park = parks.get(threading.get_ident())
    if park is not None:
        park(("lock", what, None))


def _wait_until(predicate: Callable[[], bool], timeout: float | None) -> bool:
    """Block the calling thread until ``predicate()`` (evaluated under ``_state``) holds."""
    block = blockers.get(threading.get_ident())
    if block is not None:
        with _state:
            if predicate():
                return True
        return block(lambda: _locked(predicate), timeout)
    deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
    with _state:
        while not predicate():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            _changed.wait(remaining)
        return True


# Set when a thread the kit did not start used a kit primitive during a run: an operation blocked
# on it may be woken from outside, so the scheduler waits a moment before calling it a deadlock.
foreign = [False]


def _touch() -> None:
    if blockers and threading.get_ident() not in blockers:
        foreign[0] = True


def _locked(predicate: Callable[[], bool]) -> bool:
    with _state:
        return predicate()


def _notify() -> None:
    _changed.notify_all()


class KitLock:
    _reentrant = False

    def __init__(self) -> None:
        self._owner: int | None = None
        self._count = 0

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
            if not _wait_until(lambda: self._owner is None, None if timeout < 0 else timeout):
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


class KitCondition:
    def __init__(self, lock: Any = None) -> None:
        self._lock = lock if lock is not None else KitRLock()
        self._waiters: list[list[bool]] = []
        self.acquire = self._lock.acquire
        self.release = self._lock.release

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
            return _wait_until(lambda: token[0], timeout)
        finally:
            with _state:
                if token in self._waiters:
                    self._waiters.remove(token)
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
    def __init__(self) -> None:
        self._flag = False

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
        return _wait_until(lambda: self._flag, timeout)


class KitSemaphore:
    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._value = value

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        _touch()
        _park("acquire")
        while True:
            with _state:
                if self._value > 0:
                    self._value -= 1
                    return True
            if not blocking or not _wait_until(lambda: self._value > 0, timeout):
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


_PATCH = {
    "Lock": KitLock,
    "RLock": KitRLock,
    "Condition": KitCondition,
    "Event": KitEvent,
    "Semaphore": KitSemaphore,
    "BoundedSemaphore": KitBoundedSemaphore,
}


@contextlib.contextmanager
def controlled() -> Iterator[None]:
    """Make ``threading``'s primitives the kit's for the duration (the adapter's and its libraries')."""
    saved = {name: getattr(threading, name) for name in _PATCH}
    for name, cls in _PATCH.items():
        setattr(threading, name, cls)
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        # The adapter starts a thread of its own: what an operation waits for may now be set from
        # outside the kit's view, so an apparent deadlock deserves a moment's patience.
        foreign[0] = True
        real_start(thread)

    threading.Thread.start = start  # type: ignore[method-assign]
    try:
        yield
    finally:
        threading.Thread.start = real_start  # type: ignore[method-assign]
        for name, cls in saved.items():
            setattr(threading, name, cls)
