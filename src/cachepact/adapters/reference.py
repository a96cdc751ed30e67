"""Correct adapters for each pattern: the seed's pseudocode made real, and lease-guarded versions.

The plain ones are sequentially correct and lose coherence under the stale-set race; the leased
ones close it (memcache leases: a delete voids the racing reader's token, so its fill is refused),
and so does the locked one, by serialising every operation on a key.
"""

from __future__ import annotations

from cachepact import Adapter

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
    miss-fills and writes, across app instances too."""
    cache = WriteThroughCache(env.cache, env.db.get, env.db.put, lock=CacheLock(env.cache))
    return Adapter(read=cache.get, write=cache.put, cache_code=(WriteThroughCache, CacheLock))


def cache_aside_write_through(env) -> Adapter:
    """Lazy loading plus write-through by the app (AWS's guidance): the App loads and fills on a
    miss (cache-aside's read, unchanged), and a write puts the DB, then sets the new value."""

    def write(key, value):
        env.db.put(key, value)
        env.cache.set(key, value)

    return Adapter(read=cache_aside(env).read, write=write)


def cache_aside_write_through_locked(env) -> Adapter:
    """The same, serialised per key by a lock in the shared cache."""
    lock = CacheLock(env.cache)

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


# Correct under concurrency, with any number of app instances: leases (or the lock) live in the
# shared cache.
RACE_FREE = {"cache_aside_leased", "read_through_leased", "write_through_locked", "cache_aside_write_through_locked"}
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
}
