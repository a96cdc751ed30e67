"""Correct adapters for each pattern: the seed's pseudocode made real, and lease-guarded versions.

The plain ones are sequentially correct and lose coherence under the stale-set race; the leased
ones close it (memcache leases: a delete voids the racing reader's token, so its fill is refused),
and so does the locked one, by serialising every operation on a key.
"""

from __future__ import annotations

import time

from cachepact import Adapter

from .background import RedisLock, RedisStore, RefreshAheadCache, RefreshingWriteBehindCache, WriteBehindCache
from .library import LEASE_RETRIES, CacheLock, ReadThroughCache, WriteThroughCache


def cache_aside(env) -> Adapter:
    def read(key):
        value = env.cache.get(key)
        if value is None:
            value = env.db.get(key)  # the App loads ...
            if value is not None:
                env.cache.set(key, value)  # ... and the App fills
        return value

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return Adapter(read=read, write=write)


def cache_aside_leased(env) -> Adapter:
    def read(key):
        for _ in range(LEASE_RETRIES):
            value, token = env.cache.lease_get(key)
            if value is not None:
                return value
            if token is not None:
                value = env.db.get(key)
                env.cache.lease_set(key, value, token)  # a None value just releases the lease
                return value
        return env.db.get(key)

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return Adapter(read=read, write=write)


def read_through(env) -> Adapter:
    cache = ReadThroughCache(env.cache, env.db.get)  # the library loads and fills itself

    def write(key, value):
        env.db.put(key, value)
        cache.invalidate(key)

    return Adapter(read=cache.get, write=write, cache_code=ReadThroughCache)


def read_through_leased(env) -> Adapter:
    cache = ReadThroughCache(env.cache, env.db.get, leases=True)

    def write(key, value):
        env.db.put(key, value)
        cache.invalidate(key)

    return Adapter(read=cache.get, write=write, cache_code=ReadThroughCache)


def cache_aside_locked(env) -> Adapter:
    """Cache-aside made coherent the blunt way, in one process only: a per-key mutex around every read
    and write. The lock lives in this process; a second app instance (another process, another
    host) does not take it, so across instances the stale-set race is back. ``--instances 1`` checks
    the one-process claim; the default (2 instances) catches the race."""
    import collections
    import threading

    locks = collections.defaultdict(threading.Lock)
    inner = cache_aside(env)

    def read(key):
        with locks[key]:
            return inner.read(key)

    def write(key, value):
        with locks[key]:
            inner.write(key, value)

    return Adapter(read=read, write=write)


def under_one_lock(make, lock=None):
    """``make``'s adapter with every read and write under one lock: ``lock`` when given (one made at
    import is shared by every app instance in a check, though not by real processes), else a lock
    each ``make(env)`` makes for itself (one per process)."""
    import threading

    def guarded(env) -> Adapter:
        inner = make(env)
        guard = lock if lock is not None else threading.Lock()

        def read(key):
            with guard:
                return inner.read(key)

        def write(key, value):
            with guard:
                inner.write(key, value)

        return Adapter(read=read, write=write, cache_code=inner.cache_code)

    return guarded


def write_through(env) -> Adapter:
    """Write-through as the docs draw it: the library loads on a miss, and its ``put`` writes the DB
    and then stores the value. Sequentially coherent; interleaved, two writers' puts and stores cross,
    and a reader that loaded before a write fills the old value after the write's store."""
    cache = WriteThroughCache(env.cache, env.db.get, env.db.put)
    return Adapter(read=cache.get, write=cache.put, cache_code=WriteThroughCache)


def write_through_locked(env) -> Adapter:
    """Write-through with the model's fix: a per-key lock in the shared cache serialises a key's
    miss-fills and writes, across app instances too. The lock has no time to live: one with a TTL
    stops serialising once a holder is paused past it (the check moves the clock inside races and
    shows it), at the price of a lock a crashed holder never frees."""
    cache = WriteThroughCache(env.cache, env.db.get, env.db.put, lock=CacheLock(env.cache, ttl=None))
    return Adapter(read=cache.get, write=cache.put, cache_code=(WriteThroughCache, CacheLock))


def cache_aside_write_through(env) -> Adapter:
    """Lazy loading plus write-through by the app (AWS's guidance): the App loads and fills on a
    miss (cache-aside's read, unchanged), and a write puts the DB, then sets the new value."""

    def write(key, value):
        env.db.put(key, value)
        env.cache.set(key, value)

    return Adapter(read=cache_aside(env).read, write=write)


def cache_aside_write_through_locked(env) -> Adapter:
    """The same, serialised per key by a lock in the shared cache (no TTL, as ``write_through_locked``'s)."""
    lock = CacheLock(env.cache, ttl=None)

    def read(key):
        value = env.cache.get(key)
        if value is None:
            with lock.held(key):
                value = env.db.get(key)
                if value is not None:
                    env.cache.set(key, value)
        return value

    def write(key, value):
        with lock.held(key):
            env.db.put(key, value)
            env.cache.set(key, value)

    return Adapter(read=read, write=write)


def refresh_ahead(env) -> Adapter:
    """Refresh-ahead as textbooks state it: the refresh stores what it loaded, whatever happened since."""
    cache = RefreshAheadCache(env.cache, env.db.get)

    def write(key, value):
        env.db.put(key, value)
        cache.invalidate(key)

    return Adapter(read=cache.get, write=write, cache_code=RefreshAheadCache)


def refresh_ahead_locked(env) -> Adapter:
    """A key's miss-fill, refresh and write under one lock in the shared cache (no time to live): a
    refresh never stores across a write, nor a miss's fill."""
    lock = CacheLock(env.cache, ttl=None)
    cache = RefreshAheadCache(env.cache, env.db.get, lock=lock)

    def write(key, value):
        with lock.held(key):
            env.db.put(key, value)
            cache.invalidate(key)

    return Adapter(read=cache.get, write=write, cache_code=RefreshAheadCache)


def refresh_ahead_redis(env) -> Adapter:
    """The textbook refresh-ahead over redis-py."""
    cache = RefreshAheadCache(RedisStore(env.redis), env.db.get)

    def write(key, value):
        env.db.put(key, value)
        env.redis.delete(key)

    return Adapter(read=cache.get, write=write, cache_code=(RefreshAheadCache, RedisStore))


def refresh_ahead_redis_locked(env) -> Adapter:
    """The locked refresh-ahead over redis-py, with a redis-py ``Lock`` per key (no timeout)."""
    lock = RedisLock(env.redis)
    cache = RefreshAheadCache(RedisStore(env.redis), env.db.get, lock=lock)

    def write(key, value):
        with lock.held(key):
            env.db.put(key, value)
            env.redis.delete(key)

    return Adapter(read=cache.get, write=write, cache_code=(RefreshAheadCache, RedisStore))


def write_behind(env) -> Adapter:
    """Write-behind as textbooks state it: a flusher thread per process, a miss fills with a set."""
    cache = WriteBehindCache(env.cache, env.db.get, env.db.put)
    return Adapter(read=cache.get, write=cache.put, cache_code=WriteBehindCache)


def write_behind_locked(env) -> Adapter:
    """Fills only where no entry is; a key's flushes one at a time under a lock every process shares."""
    cache = WriteBehindCache(env.cache, env.db.get, env.db.put, lock=CacheLock(env.cache, ttl=None))
    return Adapter(read=cache.get, write=cache.put, cache_code=(WriteBehindCache, CacheLock))


def write_behind_redis(env) -> Adapter:
    """The textbook write-behind over redis-py."""
    cache = WriteBehindCache(RedisStore(env.redis), env.db.get, env.db.put)
    return Adapter(read=cache.get, write=cache.put, cache_code=(WriteBehindCache, RedisStore))


def write_behind_redis_locked(env) -> Adapter:
    """The safe write-behind over redis-py: SET NX fills, a redis-py ``Lock`` per key around a flush."""
    cache = WriteBehindCache(RedisStore(env.redis), env.db.get, env.db.put, lock=RedisLock(env.redis))
    return Adapter(read=cache.get, write=cache.put, cache_code=(WriteBehindCache, RedisStore))


def aside_read(env, *, fill_if_absent: bool = False):
    """Cache-aside's read: the App loads on a miss and fills (with ``add`` when ``fill_if_absent``:
    never over an entry a write stored meanwhile)."""

    def read(key):
        value = env.cache.get(key)
        if value is None:
            value = env.db.get(key)
            if value is not None:
                (env.cache.add if fill_if_absent else env.cache.set)(key, value)
        return value

    return read


def cache_aside_write_behind(env) -> Adapter:
    """The App loads on a miss and fills; a write goes to the cache and is flushed later."""
    cache = WriteBehindCache(env.cache, env.db.get, env.db.put)
    return Adapter(read=aside_read(env), write=cache.put, cache_code=WriteBehindCache)


def cache_aside_write_behind_locked(env) -> Adapter:
    """... filling only where no entry is, each key's flushes one at a time under a shared lock."""
    cache = WriteBehindCache(env.cache, env.db.get, env.db.put, lock=CacheLock(env.cache, ttl=None))
    return Adapter(read=aside_read(env, fill_if_absent=True), write=cache.put, cache_code=(WriteBehindCache, CacheLock))


def refresh_ahead_write_through(env) -> Adapter:
    """Refresh-ahead reads; a write puts the DB, then stores its value as the entry."""
    cache = RefreshAheadCache(env.cache, env.db.get)

    def write(key, value):
        env.db.put(key, value)
        env.cache.set(key, value, ttl=cache.ttl)
        cache.stored_at[key] = time.time()

    return Adapter(read=cache.get, write=write, cache_code=RefreshAheadCache)


def refresh_ahead_write_through_locked(env) -> Adapter:
    """... a key's miss-fill, refresh and write under one lock in the shared cache."""
    lock = CacheLock(env.cache, ttl=None)
    cache = RefreshAheadCache(env.cache, env.db.get, lock=lock)

    def write(key, value):
        with lock.held(key):
            env.db.put(key, value)
            env.cache.set(key, value, ttl=cache.ttl)
            cache.stored_at[key] = time.time()

    return Adapter(read=cache.get, write=write, cache_code=(RefreshAheadCache, CacheLock))


def refresh_ahead_write_behind(env) -> Adapter:
    cache = RefreshingWriteBehindCache(env.cache, env.db.get, env.db.put)
    return Adapter(read=cache.get, write=cache.put, cache_code=(RefreshingWriteBehindCache, RefreshAheadCache))


def refresh_ahead_write_behind_locked(env) -> Adapter:
    cache = RefreshingWriteBehindCache(env.cache, env.db.get, env.db.put, lock=CacheLock(env.cache, ttl=None))
    return Adapter(
        read=cache.get, write=cache.put, cache_code=(RefreshingWriteBehindCache, RefreshAheadCache, CacheLock)
    )


# Correct under concurrency, with any number of app instances: leases (or the lock) live in the
# shared cache.
RACE_FREE = {
    "cache_aside_leased",
    "read_through_leased",
    "write_through_locked",
    "cache_aside_write_through_locked",
    "refresh_ahead_locked",
    "refresh_ahead_redis_locked",
    "write_behind_locked",
    "write_behind_redis_locked",
    "cache_aside_write_behind_locked",
    "refresh_ahead_write_through_locked",
    "refresh_ahead_write_behind_locked",
}
# Correct under concurrency within one app instance only: a process-local lock.
ONE_PROCESS = {"cache_aside_locked"}
# The plain ones are correct only sequentially (the stale-set race).

REFERENCE = {
    "cache-aside": {
        "cache_aside": cache_aside,
        "cache_aside_leased": cache_aside_leased,
        "cache_aside_locked": cache_aside_locked,
    },
    "read-through": {"read_through": read_through, "read_through_leased": read_through_leased},
    "write-through": {"write_through": write_through, "write_through_locked": write_through_locked},
    "cache-aside+write-through": {
        "cache_aside_write_through": cache_aside_write_through,
        "cache_aside_write_through_locked": cache_aside_write_through_locked,
    },
    "refresh-ahead": {
        "refresh_ahead": refresh_ahead,
        "refresh_ahead_locked": refresh_ahead_locked,
        "refresh_ahead_redis": refresh_ahead_redis,
        "refresh_ahead_redis_locked": refresh_ahead_redis_locked,
    },
    "write-behind": {
        "write_behind": write_behind,
        "write_behind_locked": write_behind_locked,
        "write_behind_redis": write_behind_redis,
        "write_behind_redis_locked": write_behind_redis_locked,
    },
    "cache-aside+write-behind": {
        "cache_aside_write_behind": cache_aside_write_behind,
        "cache_aside_write_behind_locked": cache_aside_write_behind_locked,
    },
    "refresh-ahead+write-through": {
        "refresh_ahead_write_through": refresh_ahead_write_through,
        "refresh_ahead_write_through_locked": refresh_ahead_write_through_locked,
    },
    "refresh-ahead+write-behind": {
        "refresh_ahead_write_behind": refresh_ahead_write_behind,
        "refresh_ahead_write_behind_locked": refresh_ahead_write_behind_locked,
    },
}
