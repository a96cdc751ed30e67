"""dogpile.cache, as its documentation shows it: a region, ``get_or_create`` and
``cache_on_arguments`` (read-through: the region loads through the creator and fills), and
``get``/``set`` by hand (cache-aside). Regions run on the run's Redis (``dogpile.cache.redis``) or on
``env.cache`` (a small backend). Invalidation is ``region.delete`` / ``.invalidate()``. The fix,
``get_or_create_leased``, runs a region on ``LeasedRedisBackend``: dogpile's Redis backend with leases.

``cache_code="dogpile.cache"``: a call made while dogpile's code is on the stack is the Cache's, so
the creator the application hands to ``get_or_create`` is run by the Cache.
"""

from __future__ import annotations

import threading
from typing import Any

from cachepact import ABSENT, Adapter
from cachepact.errors import MissingDependency
from cachepact.leases import Leases

try:
    from dogpile.cache import make_region, register_backend
    from dogpile.cache.api import NO_VALUE, CacheBackend, CachedValue, CacheMutex
    from dogpile.cache.backends.redis import RedisBackend
except ImportError as e:  # pragma: no cover - exercised in a venv without the extra
    raise MissingDependency(
        "dogpile.cache", "cachepact[dogpile]", needed_for="cachepact.adapters.libraries.dogpile"
    ) from e

TTL = 300  # expiration_time: on the kit's virtual clock, so the kit's jumps past it expire entries


class EnvCacheBackend(CacheBackend):
    """A dogpile backend over ``env.cache``, as a team writes one for its own store."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        self.cache = arguments["cache"]

    def get(self, key: str) -> Any:
        value = self.cache.get(key)
        return NO_VALUE if value is None else value

    def set(self, key: str, value: Any) -> None:
        self.cache.set(key, value)

    def delete(self, key: str) -> None:
        self.cache.delete(key)


register_backend("cachepact.env_cache", __name__, "EnvCacheBackend")


class LeasedRedisBackend(RedisBackend):
    """``dogpile.cache.redis`` with memcache-style leases (``cachepact.leases.Leases``): a miss takes
    the key's lease, the fill is a lease-checked set, and ``delete`` voids outstanding leases, so a
    creator that loaded before a write cannot cache what it loaded. Everything else (the client,
    serialisation, ``redis_expiration_time``) is dogpile's own.

    Only a thread that holds the key's lease stores it: a ``set`` after a hit or with no miss before
    it (``fn.refresh``, ``fn.set``, a refresh after ``region.invalidate()`` or dogpile's soft
    expiry) stores nothing. Invalidate with ``delete``/``fn.invalidate(key)``, and let Redis expire
    entries (``redis_expiration_time``). A lease whose creator raised, or whose creator itself
    missed another key (nested ``get_or_create``: one miss's leases are held at a time), stays out
    until ``Leases``' ``lease_ttl`` (10 s) runs out; readers meanwhile load without filling."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        super().__init__(arguments)
        self.leases = Leases(self.writer_client)
        self._held = threading.local()  # the leases this thread's last miss was granted: key -> token

    def _granted(self) -> dict[str, str]:
        return getattr(self._held, "tokens", {})

    def get_serialized(self, key: str) -> Any:
        # get_or_create looks twice (again under its mutex), both before the creator loads, so a
        # lease granted by the second look guards the load as well as the first would have.
        value, token = self.leases.get(key)
        if token is not None:
            self._held.tokens = {key: token}  # one miss at a time: nothing accumulates
        elif value is not None:
            self._held.tokens = {}  # a hit: no fill follows (a soft-expired refresh stores nothing)
        return NO_VALUE if value is None else value

    def get_mutex(self, key: str) -> Any:
        """dogpile's own per-key thread lock, which also ends this thread's hold on the lease when the
        creator is done: a creator that raised leaves its lease abandoned (out until it expires), and a
        later miss on the same thread must not fill with it."""
        return _LeaseEndingMutex(self._held)

    def get_serialized_multi(self, keys: list[str]) -> list[Any]:
        looks = [self.leases.get(key) for key in keys]
        self._held.tokens = {key: token for key, (_, token) in zip(keys, looks) if token is not None}
        return [NO_VALUE if value is None else value for value, _ in looks]

    def set_serialized(self, key: str, value: bytes) -> None:
        token = self._granted().pop(key, None)
        if token is not None:  # without the lease (another reader holds it) the value is not cached
            self.leases.set(key, value, token, ttl=self.redis_expiration_time or None)

    def set_serialized_multi(self, mapping: dict[str, bytes]) -> None:
        for key, value in mapping.items():
            self.set_serialized(key, value)

    def delete(self, key: str) -> None:
        self.leases.delete(key)

    def delete_multi(self, keys: list[str]) -> None:
        for key in keys:
            self.leases.delete(key)


class _LeaseEndingMutex(CacheMutex):
    def __init__(self, held: threading.local) -> None:
        self.lock = threading.Lock()
        self.held = held

    def acquire(self, wait: bool = True) -> bool:
        return self.lock.acquire(wait)

    def release(self) -> None:
        self.held.tokens = {}  # the creator is done, filled or raised: its lease is no longer this thread's
        self.lock.release()

    def locked(self) -> bool:
        return self.lock.locked()


register_backend("cachepact.leased_redis", __name__, "LeasedRedisBackend")


def decoder(region: Any) -> Any:
    """What a dogpile entry stands for: its payload, and a cached None (dogpile caches what the
    creator returned, "not found" included) as a negative entry. On Redis an entry is serialised
    (metadata, then the pickled payload): dogpile's own region parses it back."""

    def decode(payload: Any) -> Any:
        if isinstance(payload, bytes):
            payload = region._parse_serialized_from_backend(payload)  # dogpile's parser, not a copy of it
        if isinstance(payload, CachedValue):
            return ABSENT if payload.payload is None else payload.payload
        return payload

    return decode


def _region(env, *, on_redis: bool) -> Any:
    if on_redis:
        return make_region().configure(
            "dogpile.cache.redis",
            expiration_time=TTL,
            arguments={"url": env.redis_url, "connection_kwargs": env.redis_options, "redis_expiration_time": 2 * TTL},
        )
    return make_region().configure("cachepact.env_cache", expiration_time=TTL, arguments={"cache": env.cache})


def _get_or_create(env, *, on_redis: bool) -> Adapter:
    return _reading_through(env, _region(env, on_redis=on_redis))


def _reading_through(env, region: Any) -> Adapter:
    """``region.get_or_create(key, creator)`` to read; ``region.delete`` after the DB update."""

    def read(key):
        return region.get_or_create(key, lambda: env.db.get(key))

    def write(key, value):
        env.db.put(key, value)
        region.delete(key)

    return Adapter(read=read, write=write, cache_code="dogpile.cache", decode=decoder(region))


def get_or_create(env) -> Adapter:
    """Read-through: ``region.get_or_create(key, creator)`` over ``env.cache``; ``region.delete`` on write."""
    return _get_or_create(env, on_redis=False)


def get_or_create_redis(env) -> Adapter:
    """The same on ``dogpile.cache.redis``, the client dogpile makes itself on the run's Redis."""
    return _get_or_create(env, on_redis=True)


def get_or_create_leased(env) -> Adapter:
    """The fix: ``get_or_create`` on ``LeasedRedisBackend``, dogpile's Redis backend with leases.

    Entries expire in Redis (``redis_expiration_time``), not by dogpile's ``expiration_time``: a
    soft-expired entry is a hit, so its refresh holds no lease and is not cached (the kit's first
    run of this recipe with ``expiration_time`` reported exactly that, as ``who-populates``)."""
    return _reading_through(env, leased_region(env))


def leased_region(env) -> Any:
    """A region on ``LeasedRedisBackend`` at the run's Redis, expiring entries in Redis."""
    return make_region().configure(
        "cachepact.leased_redis",
        arguments={"url": env.redis_url, "connection_kwargs": env.redis_options, "redis_expiration_time": TTL},
    )


def cache_on_arguments(env) -> Adapter:
    """Read-through: a loader decorated with ``region.cache_on_arguments()``; ``load.invalidate(key)``
    on write."""
    region = _region(env, on_redis=False)

    @region.cache_on_arguments()
    def load(key):
        return env.db.get(key)

    def write(key, value):
        env.db.put(key, value)
        load.invalidate(key)

    return Adapter(read=load, write=write, cache_code="dogpile.cache", decode=decoder(region))


def get_set(env) -> Adapter:
    """Cache-aside by hand: ``region.get`` (``NO_VALUE`` on a miss), load, ``region.set``."""
    region = _region(env, on_redis=False)

    def read(key):
        value = region.get(key)
        if value is NO_VALUE:
            value = env.db.get(key)
            region.set(key, value)
        return value

    def write(key, value):
        env.db.put(key, value)
        region.delete(key)

    return Adapter(read=read, write=write, decode=decoder(region))


def get_or_create_refresh_ahead(env) -> Adapter:
    """Refresh-ahead, as dogpile's documentation shows it: a region with an ``async_creation_runner``
    serves an entry past ``expiration_time`` and recreates it on a thread of its own, which stores
    what the creator returned and releases dogpile's mutex; a miss loads and fills as
    ``get_or_create`` does; ``region.delete`` on write."""

    def runner(region: Any, key: str, creator: Any, mutex: Any) -> None:
        def refresh() -> None:
            try:
                region.set(key, creator())
            finally:
                mutex.release()

        threading.Thread(target=refresh).start()

    region = make_region(async_creation_runner=runner).configure(
        "cachepact.env_cache", expiration_time=TTL, arguments={"cache": env.cache}
    )
    return _reading_through(env, region)
