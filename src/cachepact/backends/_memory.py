"""The embedded default stores behind ``env``: an in-memory DB and an in-memory cache with leases.

They live beside the environment that records calls on them; the kit reads them directly (never
through ``env``) to judge what a run left behind.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Hashable
from typing import Any


class MemoryDB:
    """System of record: ``get(key) -> value | None``, ``put(key, value)``."""

    def __init__(self, initial: dict[Hashable, Any] | None = None) -> None:
        self._data: dict[Hashable, Any] = dict(initial or {})

    def get(self, key: Hashable) -> Any:
        return self._data.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        self._data[key] = value

    def put_many(self, items: dict[Hashable, Any]) -> None:
        """A transaction's puts, all at once (its commit)."""
        self._data.update(items)

    def snapshot(self) -> dict[Hashable, Any]:
        return dict(self._data)


class MemoryCache:
    """Cache store with memcache-style leases (NSDI 2013) and per-entry TTLs.

    At most one lease is out per key; ``delete`` voids every outstanding token on the key, so a
    fill that raced an invalidation is refused by ``lease_set``. An entry stored with ``ttl``
    seconds is gone once ``clock()`` passes its deadline; during a check the clock is the kit's
    virtual one, so expiry happens when the kit advances time, and ``expire`` reports it.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: dict[Hashable, Any] = {}
        self._deadlines: dict[Hashable, float] = {}
        self._leases: dict[Hashable, str] = {}
        self._tokens = itertools.count(1)
        self._clock = clock

    def _live(self, key: Hashable) -> bool:
        if not self._deadlines:  # the common case: nothing stored with a TTL
            return key in self._data
        deadline = self._deadlines.get(key)
        if deadline is not None and self._clock() >= deadline:
            del self._data[key], self._deadlines[key]
        return key in self._data

    def _store(self, key: Hashable, value: Any, ttl: float | None) -> None:
        # None is never stored: ``get`` returning None means a miss, so a stored None would be a lie.
        if value is None:
            self._data.pop(key, None)
            self._deadlines.pop(key, None)
            return
        self._data[key] = value
        if ttl is None:
            self._deadlines.pop(key, None)
        else:
            self._deadlines[key] = self._clock() + ttl

    def get(self, key: Hashable) -> Any:
        return self._data[key] if self._live(key) else None

    def set(self, key: Hashable, value: Any, ttl: float | None = None) -> None:
        self._store(key, value, ttl)

    def add(self, key: Hashable, value: Any, ttl: float | None = None) -> bool:
        if self._live(key):
            return False
        self._store(key, value, ttl)
        return True

    def delete(self, key: Hashable) -> None:
        self._data.pop(key, None)
        self._deadlines.pop(key, None)
        self._leases.pop(key, None)

    def lease_get(self, key: Hashable) -> tuple[Any, Any]:
        if self._live(key):
            return self._data[key], None
        if key in self._leases:
            return None, None
        token = f"t{next(self._tokens)}"
        self._leases[key] = token
        return None, token

    def lease_set(self, key: Hashable, value: Any, token: Any, ttl: float | None = None) -> bool:
        if token is None or self._leases.get(key) != token:
            return False
        del self._leases[key]  # a None value releases the lease without storing anything
        if value is not None:
            self._store(key, value, ttl)
        return True

    # -- the kit's view: read without recording ---------------------------------------------------

    def peek(self, key: Hashable) -> Any:
        """The entry's payload, or None: what the judge compares before and after a call."""
        return self._data[key] if self._live(key) else None

    def lease_out(self, key: Hashable) -> bool:
        return key in self._leases

    def look(self, key: Hashable) -> tuple[Any, bool]:
        """(payload or None, whether a lease is out): the key as a call found or left it."""
        return (self._data[key] if self._live(key) else None), key in self._leases

    def expire(self) -> list[Hashable]:
        """Drop every entry whose deadline has passed; the keys dropped."""
        gone = [key for key in list(self._deadlines) if not self._live(key)]
        return gone

    def live_tokens(self) -> set:
        return set(self._leases.values())

    def expiring(self) -> list[tuple[Hashable, float]]:
        """Each entry that will expire, with the seconds it has left on the clock (the kit's
        virtual one during a check): what a jump of the clock inside a race is sized to."""
        if not self._deadlines:
            return []
        now = self._clock()
        return [(key, deadline - now) for key, deadline in list(self._deadlines.items()) if deadline > now]

    def ttl_bounds(self) -> list[tuple[Hashable, float]]:
        """What bounds a stale entry: the same as ``expiring`` (its clock is the kit's)."""
        return self.expiring()

    def state_key(self) -> Any:
        """The store's state for the exhaustive explorer, with tokens reduced to 'a lease is out'.
        Deadlines are left out: the explorer adds what the clock can still do (``RaceClock.state``)."""
        return (repr(sorted(self._data.items(), key=repr)), repr(sorted(self._leases, key=repr)))

    def snapshot(self) -> dict[Hashable, Any]:
        return {key: self._data[key] for key in list(self._data) if self._live(key)}
