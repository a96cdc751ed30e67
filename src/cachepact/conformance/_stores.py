"""The embedded default stores behind ``env``: an in-memory DB and an in-memory cache with leases.

They live beside the environment that records calls on them; the kit reads them directly (never
through ``env``) to judge what a run left behind.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from typing import Any


class MemoryDB:
    """System of record: ``get(key) -> value | None``, ``put(key, value)``."""

    def __init__(self, initial: dict[Hashable, Any] | None = None) -> None:
        self._data: dict[Hashable, Any] = dict(initial or {})

    def get(self, key: Hashable) -> Any:
        return self._data.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        self._data[key] = value

    def snapshot(self) -> dict[Hashable, Any]:
        return dict(self._data)


class MemoryCache:
    """Cache store with memcache-style leases (NSDI 2013).

    At most one lease is out per key; ``delete`` voids every outstanding token on the key, so a
    fill that raced an invalidation is refused by ``lease_set``.
    """

    def __init__(self) -> None:
        self._data: dict[Hashable, Any] = {}
        self._leases: dict[Hashable, int] = {}
        self._tokens = itertools.count(1)

    def get(self, key: Hashable) -> Any:
        return self._data.get(key)

    # None is never stored: ``get`` returning None means a miss, so a stored None would be a lie.
    def set(self, key: Hashable, value: Any) -> None:
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value

    def add(self, key: Hashable, value: Any) -> bool:
        if key in self._data:
            return False
        if value is not None:
            self._data[key] = value
        return True

    def delete(self, key: Hashable) -> None:
        self._data.pop(key, None)
        self._leases.pop(key, None)

    def lease_get(self, key: Hashable) -> tuple[Any, Any]:
        if key in self._data:
            return self._data[key], None
        if key in self._leases:
            return None, None
        token = f"t{next(self._tokens)}"
        self._leases[key] = token  # type: ignore[assignment]
        return None, token

    def lease_set(self, key: Hashable, value: Any, token: Any) -> bool:
        if token is None or self._leases.get(key) != token:
            return False
        del self._leases[key]  # a None value releases the lease without storing anything
        if value is not None:
            self._data[key] = value
        return True

    def live_tokens(self) -> set:
        return set(self._leases.values())

    def state_key(self) -> Any:
        """The store's state for the exhaustive explorer, with tokens reduced to 'a lease is out'."""
        return (repr(sorted(self._data.items(), key=repr)), repr(sorted(self._leases, key=repr)))

    def snapshot(self) -> dict[Hashable, Any]:
        return dict(self._data)
