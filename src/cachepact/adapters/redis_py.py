"""The reference adapters as teams write them over redis-py: ``env.redis`` is a genuine client.

Each is the in-memory reference (``reference.py``) with Redis commands instead of ``env.cache``
calls: ``GET``, ``SET ... EX``, ``DEL``, ``cachepact.leases`` (Lua scripts) for the leased ones, and
redis-py's own ``Lock`` for the locked write-through.
Values go through Redis as bytes and come back decoded, as real code does. The kit judges each
command by what it did, so these get the same verdicts as the in-memory ones: the plain ones pass
sequentially and lose the stale-set race; the leased ones close it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cachepact import Adapter
from cachepact.leases import Leases

from .library import LEASE_RETRIES

TTL = 300  # seconds: entries expire eventually, as production code sets them


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode()


def cache_aside(env) -> Adapter:
    r = env.redis

    def read(key):
        value = _text(r.get(key))
        if value is None:
            value = env.db.get(key)  # the App loads ...
            if value is not None:
                r.set(key, value, ex=TTL)  # ... and the App fills
        return value

    def write(key, value):
        env.db.put(key, value)
        r.delete(key)

    return Adapter(read=read, write=write)


def cache_aside_leased(env) -> Adapter:
    leases = Leases(env.redis)

    def read(key):
        for _ in range(LEASE_RETRIES):
            raw, token = leases.get(key)
            if raw is not None:
                return _text(raw)
            if token is not None:
                value = env.db.get(key)
                leases.set(key, value, token, ttl=TTL)  # None just releases the lease
                return value
        return env.db.get(key)  # another lease stayed out: serve the DB's value without filling

    def write(key, value):
        env.db.put(key, value)
        leases.delete(key)  # invalidates, and voids a racing reader's lease

    return Adapter(read=read, write=write)


class RedisReadThrough:
    """A small read-through cache over redis-py, as a team's own caching module would be: the Cache
    loads and fills on a miss (``cache_code`` names it)."""

    def __init__(self, client: Any, loader: Callable[[Any], Any], *, leased: bool = False) -> None:
        self.client = client
        self.loader = loader
        self.leases = Leases(client) if leased else None

    def get(self, key: Any) -> Any:
        if self.leases is None:
            value = _text(self.client.get(key))
            if value is None:
                value = self.loader(key)
                if value is not None:
                    self.client.set(key, value, ex=TTL)
            return value
        for _ in range(LEASE_RETRIES):
            raw, token = self.leases.get(key)
            if raw is not None:
                return _text(raw)
            if token is not None:
                value = self.loader(key)
                self.leases.set(key, value, token, ttl=TTL)
                return value
        return self.loader(key)

    def invalidate(self, key: Any) -> None:
        if self.leases is None:
            self.client.delete(key)
        else:
            self.leases.delete(key)


def _read_through(env, *, leased: bool) -> Adapter:
    cache = RedisReadThrough(env.redis, env.db.get, leased=leased)

    def write(key, value):
        env.db.put(key, value)
        cache.invalidate(key)

    return Adapter(read=cache.get, write=write, cache_code=RedisReadThrough)


def read_through(env) -> Adapter:
    return _read_through(env, leased=False)


def read_through_leased(env) -> Adapter:
    return _read_through(env, leased=True)


class RedisWriteThrough(RedisReadThrough):
    """Write-through over redis-py, as a team's caching module writes it: the cache loads on a miss,
    and ``put`` writes the DB and then ``SET``s the value. With ``locked``, a redis-py ``Lock`` per key
    (in the shared Redis, so every app instance takes it) serialises a key's miss-fill and writes:
    the model's fix."""

    def __init__(self, client: Any, loader: Callable[[Any], Any], writer: Callable[[Any, Any], None], *, locked: bool):
        super().__init__(client, loader)
        self.writer = writer
        self.locked = locked

    def _lock(self, key: Any) -> Any:
        # No timeout: a lock that expires stops serialising once its holder is paused past it (the
        # check moves the clock inside races and shows it), at the price of a lock a crashed holder
        # never frees.
        return self.client.lock(f"lock:{key}", timeout=None, sleep=0.01)

    def get(self, key: Any) -> Any:
        value = _text(self.client.get(key))
        if value is not None:
            return value
        if not self.locked:
            return self._load(key)
        with self._lock(key):
            return self._load(key)

    def _load(self, key: Any) -> Any:
        value = self.loader(key)
        if value is not None:
            self.client.set(key, value, ex=TTL)
        return value

    def put(self, key: Any, value: Any) -> None:
        if not self.locked:
            self.writer(key, value)
            self.client.set(key, value, ex=TTL)
            return
        with self._lock(key):
            self.writer(key, value)
            self.client.set(key, value, ex=TTL)


def _write_through(env, *, locked: bool) -> Adapter:
    cache = RedisWriteThrough(env.redis, env.db.get, env.db.put, locked=locked)
    return Adapter(read=cache.get, write=cache.put, cache_code=RedisWriteThrough)


def write_through(env) -> Adapter:
    return _write_through(env, locked=False)


def write_through_locked(env) -> Adapter:
    return _write_through(env, locked=True)


# As in reference.py: the leased and locked ones are correct under concurrency with any number of
# app instances; the plain ones only sequentially.
RACE_FREE = {"cache_aside_leased", "read_through_leased", "write_through_locked"}

REFERENCE = {
    "cache-aside": {"cache_aside": cache_aside, "cache_aside_leased": cache_aside_leased},
    "read-through": {"read_through": read_through, "read_through_leased": read_through_leased},
    "write-through": {"write_through": write_through, "write_through_locked": write_through_locked},
}
