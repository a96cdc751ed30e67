"""Django's cache framework, as its documentation shows it: the cache configured in-process, on the
run's Redis (``django.core.cache.backends.redis.RedisCache``, the ``CACHES`` entry
``{"BACKEND": ..., "LOCATION": env.redis_url, "OPTIONS": env.redis_options}``) or on ``env.cache``
(a small ``BaseCache`` backend); ``cache.get``/``cache.set`` by hand (cache-aside),
``cache.get_or_set`` (read-through: Django calls the loader and fills), ``cache.delete`` on write.
``get_set_locked`` holds a redis-py ``Lock`` per key around a miss's load and fill and around the
write: it closes the race while no holder outlasts the lock's timeout, and fails once the clock moves
past it inside a race (the findings page says how).

``delete_in_atomic`` and ``delete_on_commit`` are a Django write's transaction: ``transaction.atomic()``
around the run's ``env.db.transaction()``, the invalidation inside it or in ``transaction.on_commit``.

``cache_code="django.core.cache"``: a call made while Django's cache code is on the stack is the
Cache's, so the loader handed to ``get_or_set`` is run by the Cache.
"""

from __future__ import annotations

from typing import Any

from cachepact import Adapter
from cachepact.errors import MissingDependency
from cachepact.leases import Leases

try:
    import django
    from django.conf import settings
    from django.core.cache import CacheHandler
    from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
    from django.core.cache.backends.redis import RedisCache
    from django.db import transaction
except ImportError as e:  # pragma: no cover - exercised in a venv without the extra
    raise MissingDependency("Django", "cachepact[django]", needed_for="cachepact.adapters.libraries.django") from e

TIMEOUT = 300

if not settings.configured:  # a script or a check outside a Django project: the framework needs settings
    # A database for transaction.atomic and on_commit to run on (an in-memory SQLite of each thread's
    # own); the system of record the kit judges is env.db, whose transaction the recipes nest inside.
    settings.configure(USE_TZ=True, DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}})
    django.setup()


class EnvCache(BaseCache):
    """A Django cache backend over ``env.cache``, as a team writes one for its own store; its
    ``LOCATION`` is the store itself."""

    def __init__(self, cache: Any, params: dict[str, Any]) -> None:
        super().__init__(params)
        self._cache = cache

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._cache.add(self.make_and_validate_key(key, version=version), value, ttl=self._ttl(timeout))

    def get(self, key, default=None, version=None):
        value = self._cache.get(self.make_and_validate_key(key, version=version))
        return default if value is None else value

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._cache.set(self.make_and_validate_key(key, version=version), value, ttl=self._ttl(timeout))

    def delete(self, key, version=None):
        self._cache.delete(self.make_and_validate_key(key, version=version))
        return True

    def _ttl(self, timeout: Any) -> float | None:
        """Django's timeout (seconds; None: forever; DEFAULT_TIMEOUT: the cache's) as env.cache's ttl."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return None if timeout is None else max(0.0, float(timeout))

    def clear(self):
        raise TypeError("env.cache is shared by the run's app instances and the kit: it is never cleared")


def _cache(env, *, on_redis: bool) -> Any:
    """The ``default`` cache of a ``CACHES`` setting, made by Django's own ``CacheHandler`` (what
    ``django.core.cache.caches`` is), one per app instance, as each process configures its own."""
    if on_redis:
        entry = {
            "BACKEND": f"{RedisCache.__module__}.RedisCache",
            "LOCATION": env.redis_url,
            "OPTIONS": env.redis_options,
        }
    else:
        entry = {"BACKEND": f"{__name__}.EnvCache", "LOCATION": env.cache}
    return CacheHandler({"default": {**entry, "TIMEOUT": TIMEOUT}})["default"]


def _get_set(env, *, on_redis: bool) -> Adapter:
    cache = _cache(env, on_redis=on_redis)

    def read(key):
        value = cache.get(key)
        if value is None:
            value = env.db.get(key)
            if value is not None:
                cache.set(key, value, timeout=TIMEOUT)
        return value

    def write(key, value):
        env.db.put(key, value)
        cache.delete(key)

    return Adapter(read=read, write=write)


def get_set(env) -> Adapter:
    """Cache-aside by hand over ``env.cache``: ``cache.get``, load, ``cache.set``; ``cache.delete``."""
    return _get_set(env, on_redis=False)


def get_set_redis(env) -> Adapter:
    """The same on Django's ``RedisCache``, the client Django makes itself on the run's Redis."""
    return _get_set(env, on_redis=True)


def _get_or_set(env, *, on_redis: bool) -> Adapter:
    cache = _cache(env, on_redis=on_redis)

    def read(key):
        return cache.get_or_set(key, lambda: env.db.get(key), timeout=TIMEOUT)

    def write(key, value):
        env.db.put(key, value)
        cache.delete(key)

    return Adapter(read=read, write=write, cache_code="django.core.cache")


def get_or_set(env) -> Adapter:
    """Read-through: ``cache.get_or_set(key, loader)`` over ``env.cache``; ``cache.delete`` on write."""
    return _get_or_set(env, on_redis=False)


def get_or_set_redis(env) -> Adapter:
    """The same on Django's ``RedisCache``."""
    return _get_or_set(env, on_redis=True)


def aget_aset_redis(env) -> Adapter:
    """``get_set_redis`` in an async view: ``await cache.aget``, the load, ``await cache.aset``;
    ``await cache.adelete`` on write. Django runs each through ``sync_to_async`` (a worker thread
    sends the command), which the kit follows as the operation's own work."""
    cache = _cache(env, on_redis=True)

    async def read(key):
        value = await cache.aget(key)
        if value is None:
            value = await env.async_db.get(key)
            if value is not None:
                await cache.aset(key, value, timeout=TIMEOUT)
        return value

    async def write(key, value):
        await env.async_db.put(key, value)
        await cache.adelete(key)

    return Adapter(read=read, write=write)


def aget_or_set_redis(env) -> Adapter:
    """Read-through in an async view: ``await cache.aget_or_set(key, loader)``; ``await cache.adelete``."""
    cache = _cache(env, on_redis=True)

    async def read(key):
        return await cache.aget_or_set(key, lambda: env.db.get(key), timeout=TIMEOUT)

    async def write(key, value):
        await env.async_db.put(key, value)
        await cache.adelete(key)

    return Adapter(read=read, write=write, cache_code="django.core.cache")


def get_set_locked(env) -> Adapter:
    """The fix by locking, as far as a lock goes: ``get_set_redis`` with a Redis lock (redis-py's
    ``Lock(timeout=10)``) per key that covers the reader's load and fill and the writer's write and
    delete, so neither lands inside the other while the lock holds. Hits take no lock; a miss looks
    again once it holds the lock, since the reader it waited for has usually filled the entry (the
    kit's ``hit-after-fill`` fails without that look). A holder paused past the timeout loses the
    lock: its release raises ``LockNotOwnedError``, after a fill that may be stale."""
    cache = _cache(env, on_redis=True)

    def lock(key):
        return env.redis.lock(f"lock:{key}", timeout=10, blocking_timeout=10)

    def read(key):
        value = cache.get(key)
        if value is None:
            with lock(key):
                value = cache.get(key)
                if value is None:
                    value = env.db.get(key)
                    if value is not None:
                        cache.set(key, value, timeout=TIMEOUT)
        return value

    def write(key, value):
        with lock(key):
            env.db.put(key, value)
            cache.delete(key)

    return Adapter(read=read, write=write)


def _atomic_write(env, *, on_commit: bool) -> Adapter:
    """A write as a Django view makes it: the DB write in ``transaction.atomic()`` (wrapping the
    run's ``env.db.transaction()``, the system of record the kit judges), the invalidation either
    inside the block or handed to ``transaction.on_commit``. Reads fill through a lease
    (``cachepact.leases`` on the run's Redis), the fix for the stale-set race, so the one race left
    is where the write invalidates relative to its commit."""
    leases = Leases(env.redis)

    def read(key):
        value, token = leases.get(key)
        if value is None:
            value = env.db.get(key)
            if token is not None:
                leases.set(key, value, token, ttl=TIMEOUT)
        return value.decode() if isinstance(value, bytes) else value

    def write(key, value):
        with transaction.atomic(), env.db.transaction():
            env.db.put(key, value)
            if on_commit:
                transaction.on_commit(lambda: leases.delete(key))
            else:
                leases.delete(key)

    return Adapter(read=read, write=write)


def delete_in_atomic(env) -> Adapter:
    """The invalidation inside ``transaction.atomic()``: it lands before the commit, and a read in
    between reloads the old value and caches it for good."""
    return _atomic_write(env, on_commit=False)


def delete_on_commit(env) -> Adapter:
    """``transaction.on_commit(lambda: leases.delete(key))``: Django runs the invalidation after the
    commit (never after a rollback), the fix for ``delete_in_atomic``."""
    return _atomic_write(env, on_commit=True)
