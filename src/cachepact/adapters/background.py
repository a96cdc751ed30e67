"""Two small caching libraries with background work, standing in for Caffeine's refreshAfterWrite and
Ehcache's or Coherence's write-behind, as a team would write them in Python.

``RefreshAheadCache`` serves a hit on an entry older than ``refresh_after`` and reloads it on a
thread it starts there. ``WriteBehindCache`` stores a write as a dirty entry, queues the key and
returns; a flusher thread started with the cache puts each queued key's value into the DB.

Each takes a ``store`` with ``get``, ``set``, ``add`` and ``delete`` (``env.cache``, or
``RedisStore`` over redis-py) and, for its safe form, a ``lock`` with ``held(key)`` (``CacheLock``,
or ``RedisLock``): the refresh, or the flush, of a key then runs under the key's lock, which a
write (refresh-ahead) takes too. The locks have no time to live: a lock that times out while its
holder is paused serialises nothing (the kit moves the clock inside races to show it).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

REFRESH_AFTER = 60  # seconds after its store an entry is refreshed on a hit
TTL = 600  # ... and expires


class RefreshAheadCache:
    """A loading cache that refreshes ahead: on a miss it loads and stores the entry (with a TTL); a
    hit on an entry older than ``refresh_after`` serves it and reloads it on a thread. Each process
    remembers when it stored what (as Caffeine keeps an entry's write time beside it)."""

    def __init__(
        self,
        store: Any,
        loader: Callable[[Any], Any],
        *,
        lock: Any = None,
        refresh_after: float = REFRESH_AFTER,
        ttl: float = TTL,
    ) -> None:
        self.store = store
        self.loader = loader
        self.lock = lock
        self.refresh_after = refresh_after
        self.ttl = ttl
        self.stored_at: dict[Any, float] = {}

    def get(self, key: Any) -> Any:
        value = self.store.get(key)
        if value is not None:
            if time.time() - self.stored_at.get(key, 0.0) > self.refresh_after:
                self.stored_at[key] = time.time()  # one refresh at a time from this process
                threading.Thread(target=self.refresh, args=(key,)).start()
            return value
        with self._held(key):
            return self._load(key)

    def refresh(self, key: Any) -> None:
        with self._held(key):
            self._load(key)

    def invalidate(self, key: Any) -> None:
        self.store.delete(key)

    def _load(self, key: Any) -> Any:
        value = self.loader(key)
        if value is not None:
            self.store.set(key, value, ttl=self.ttl)
            self.stored_at[key] = time.time()
        return value

    def _held(self, key: Any) -> Any:
        return self.lock.held(key) if self.lock is not None else contextlib.nullcontext()


class WriteBehindCache:
    """A loading cache that writes behind: a write stores its value as the entry, queues the key and
    returns; a flusher thread (started with the cache) takes each queued key and puts the entry's
    value into the DB through ``writer``. Safe (``lock``): a miss fills only where no entry is
    (``add``), and a key's flush runs under the key's lock, so flushes from every process put a
    key's values in the order they were written."""

    def __init__(
        self, store: Any, loader: Callable[[Any], Any], writer: Callable[[Any, Any], None], *, lock: Any = None
    ) -> None:
        self.store = store
        self.loader = loader
        self.writer = writer
        self.lock = lock
        self.dirty: queue.Queue = queue.Queue()
        threading.Thread(target=self._flush_forever, daemon=True, name="write-behind flusher").start()

    def get(self, key: Any) -> Any:
        value = self.store.get(key)
        if value is None:
            value = self.loader(key)
            if value is not None:
                if self.lock is not None:
                    self.store.add(key, value)  # never over a dirty entry a write stored meanwhile
                else:
                    self.store.set(key, value)
        return value

    def put(self, key: Any, value: Any) -> None:
        self.store.set(key, value)
        self.dirty.put(key)

    def _flush_forever(self) -> None:
        while True:
            self.flush(self.dirty.get())

    def flush(self, key: Any) -> None:
        with self.lock.held(key) if self.lock is not None else contextlib.nullcontext():
            value = self.store.get(key)  # the entry's value now: the latest write's
            if value is not None:
                self.writer(key, value)


class RefreshingWriteBehindCache(WriteBehindCache):
    """Both at once (``refresh-ahead+write-behind``): a refresh reloads an aged entry, a write is
    flushed later. Safe (``lock``): a write marks its key dirty in the shared store until its flush
    has landed, and a refresh, under the key's lock, leaves a dirty entry alone (the DB is behind it)."""

    def __init__(
        self, store: Any, loader: Callable[[Any], Any], writer: Callable[[Any, Any], None], *, lock: Any = None
    ) -> None:
        super().__init__(store, loader, writer, lock=lock)
        self.refreshing = RefreshAheadCache(store, loader, lock=lock)
        self.refreshing.refresh = self.refresh  # type: ignore[method-assign]

    def get(self, key: Any) -> Any:
        if self.store.get(key) is None:
            return super().get(key)
        return self.refreshing.get(key)

    def refresh(self, key: Any) -> None:
        with self.lock.held(key) if self.lock is not None else contextlib.nullcontext():
            if self.lock is not None and self.store.get(f"dirty:{key}") is not None:
                return  # a write's value waits for its flush: reloading would bring the old one back
            self.refreshing._load(key)

    def put(self, key: Any, value: Any) -> None:
        if self.lock is not None:
            with self.lock.held(key):
                self.store.set(f"dirty:{key}", "1")
                self.store.set(key, value)
        else:
            self.store.set(key, value)
        self.dirty.put(key)

    def flush(self, key: Any) -> None:
        super().flush(key)
        if self.lock is not None:
            with self.lock.held(key):
                self.store.delete(f"dirty:{key}")


class RedisStore:
    """``get``/``set``/``add``/``delete`` over a redis-py client, for the libraries above."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, key: Any) -> Any:
        value = self.client.get(key)
        return value.decode() if isinstance(value, bytes) else value

    def set(self, key: Any, value: Any, ttl: float | None = None) -> None:
        self.client.set(key, value, ex=None if ttl is None else int(ttl))

    def add(self, key: Any, value: Any, ttl: float | None = None) -> bool:
        return bool(self.client.set(key, value, nx=True, ex=None if ttl is None else int(ttl)))

    def delete(self, key: Any) -> None:
        self.client.delete(key)


class RedisLock:
    """A per-key redis-py ``Lock`` with no timeout, shared by every process."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @contextlib.contextmanager
    def held(self, key: Any) -> Iterator[None]:
        with self.client.lock(f"lock:{key}", sleep=0.01):
            yield
