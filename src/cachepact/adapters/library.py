"""A tiny read-through cache library, standing in for dogpile.cache and friends.

The reference and broken read-through adapters use it and name it in ``cache_code``, so its DB
reads and cache fills are the Cache's, as they would be for a real library.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LEASE_RETRIES = 3


class ReadThroughCache:
    def __init__(
        self, store: Any, loader: Callable[[Any], Any], *, leases: bool = False, fill_if_absent: bool = False
    ) -> None:
        self.store = store
        self.loader = loader
        self.leases = leases
        self.fill_if_absent = fill_if_absent  # add, not set: never over an entry stored meanwhile

    def get(self, key: Any) -> Any:
        if not self.leases:
            value = self.store.get(key)
            if value is None:
                value = self.loader(key)
                if value is not None:
                    (self.store.add if self.fill_if_absent else self.store.set)(key, value)
            return value
        for _ in range(LEASE_RETRIES):
            value, token = self.store.lease_get(key)
            if value is not None:
                return value
            if token is not None:
                value = self.loader(key)
                self.store.lease_set(key, value, token)  # a None value just releases the lease
                return value
        # Another lease stayed out: serve from the DB without filling, as memcache clients do.
        return self.loader(key)

    def invalidate(self, key: Any) -> None:
        self.store.delete(key)


class WriteThroughCache(ReadThroughCache):
    """The same tiny library with a writer, as JCache's ``CacheWriter`` is: ``put`` writes the DB
    through the writer, then stores the value as the entry before it returns. With ``lock`` (a
    ``CacheLock``), a key's miss-fill and its writes are serialised: the model's fix for write-through."""

    def __init__(
        self, store: Any, loader: Callable[[Any], Any], writer: Callable[[Any, Any], None], *, lock: Any = None
    ) -> None:
        super().__init__(store, loader)
        self.writer = writer
        self.lock = lock

    def get(self, key: Any) -> Any:
        value = self.store.get(key)
        if value is not None or self.lock is None:
            return value if value is not None else self._load(key)
        with self.lock.held(key):
            return self._load(key)

    def _load(self, key: Any) -> Any:
        value = self.loader(key)
        if value is not None:
            self.store.set(key, value)
        return value

    def put(self, key: Any, value: Any) -> None:
        if self.lock is None:
            self.writer(key, value)
            self.store.set(key, value)
            return
        with self.lock.held(key):
            self.writer(key, value)
            self.store.set(key, value)


class CacheLock:
    """A per-key lock kept in the shared cache, so every app instance takes the same one:
    ``add(lock key)`` with a time to live (a holder that dies frees it), polled until it stores,
    and a delete to release. The TTL must outlast a load and a fill, or the lock stops serialising
    (``ttl=None``: none; a holder that dies keeps it)."""

    def __init__(self, store: Any, *, ttl: float | None = 30, poll: float = 0.005) -> None:
        self.store = store
        self.ttl = ttl
        self.poll = poll

    def held(self, key: Any) -> Any:
        import contextlib
        import time

        @contextlib.contextmanager
        def holding() -> Any:
            name = f"lock:{key}"
            while not self.store.add(name, "held", ttl=self.ttl):
                time.sleep(self.poll)  # the kit's clock: polling costs no real time in a check
            try:
                yield
            finally:
                self.store.delete(name)

        return holding()
