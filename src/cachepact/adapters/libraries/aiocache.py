"""aiocache, as its documentation shows it: ``@cached(ttl=, cache=Cache.REDIS, key_builder=,
skip_cache_func=)`` on an ``async def`` loader (read-through: the decorator loads through the function
on a miss and fills), its cache reached as ``loader.cache`` to ``delete`` on write. The cache is
aiocache's ``RedisCache`` on the run's server (``endpoint``/``port``/``db`` from ``env.redis_url``):
its ``redis.asyncio`` client's commands are recorded as any client's are.

``cached_leased`` is the fix: the same decorator whose fill is lease-checked, through the two methods
aiocache's ``cached`` documents as its cache access (``get_from_cache``, ``set_in_cache``) and
``cachepact.leases.AsyncLeases`` on the decorator's own Redis client. The write's ``delete`` goes
through the leases too, so it voids a reader's lease.

``cache_code="aiocache"``: a call made while aiocache's code is on the stack is the Cache's, so the
decorated function's DB read is the Cache loading.
"""

from __future__ import annotations

import contextvars
import json
from typing import Any
from urllib.parse import urlsplit

from cachepact import Adapter
from cachepact.errors import MissingDependency
from cachepact.leases import AsyncLeases

try:
    from aiocache import Cache, cached
except ImportError as e:  # pragma: no cover - exercised in a venv without the extra
    raise MissingDependency(
        "aiocache", "cachepact[aiocache]", needed_for="cachepact.adapters.libraries.aiocache"
    ) from e

TTL = 300


def _where(env) -> dict[str, Any]:
    """``RedisCache``'s address arguments for the run's server (aiocache takes no URL)."""
    url = urlsplit(env.redis_url)
    return {"endpoint": url.hostname, "port": url.port or 6379, "db": int(url.path.lstrip("/") or 0)}


def _key(function: Any, key: str) -> str:
    return f"user:{key}"


def _skip_absent(value: Any) -> bool:
    # aiocache's documented way not to cache None: its reads take a cached null for a miss anyway
    return value is None


def _adapter(env, load: Any, invalidate: Any) -> Adapter:
    async def read(key):
        return await load(key)

    async def write(key, value):
        await env.async_db.put(key, value)
        await invalidate(f"user:{key}")

    # RedisCache's default serializer is JSON: an entry's payload is the value as JSON.
    return Adapter(read=read, write=write, cache_code="aiocache", decode=json.loads)


def cached_redis(env) -> Adapter:
    """``@cached(ttl=300, cache=Cache.REDIS, ...)`` on the loader; ``load.cache.delete(key)`` on write."""

    @cached(ttl=TTL, cache=Cache.REDIS, key_builder=_key, skip_cache_func=_skip_absent, **_where(env))
    async def load(key):
        return await env.async_db.get(key)

    return _adapter(env, load, load.cache.delete)


class leased_cached(cached):  # lower case, as the decorator it extends
    """aiocache's ``cached`` filling through a lease: a miss takes the key's lease, the fill is a
    lease-checked set, so a write's delete in between (through the same leases) refuses it. Only
    the task that holds the lease fills; a reader told another holds it loads without filling."""

    def __call__(self, f: Any) -> Any:
        wrapper = super().__call__(f)
        self.leases = AsyncLeases(self.cache.client)
        self.token: contextvars.ContextVar[str | None] = contextvars.ContextVar("aiocache_lease", default=None)
        wrapper.leases = self.leases
        return wrapper

    async def get_from_cache(self, key: str) -> Any:
        raw, token = await self.leases.get(self.cache.build_key(key))
        self.token.set(token)  # this read's own: each operation runs in a context of its own
        return None if raw is None else self.cache.serializer.loads(raw)

    async def set_in_cache(self, key: str, value: Any) -> None:
        token = self.token.get()
        if token is not None:
            payload = self.cache.serializer.dumps(value)
            await self.leases.set(self.cache.build_key(key), payload, token, ttl=self.ttl)


def cached_leased(env) -> Adapter:
    """``cached_redis`` with ``leased_cached`` for ``cached``, and the write deleting through the
    decorator's leases: the fix for the stale-set race."""

    @leased_cached(ttl=TTL, cache=Cache.REDIS, key_builder=_key, skip_cache_func=_skip_absent, **_where(env))
    async def load(key):
        return await env.async_db.get(key)

    return _adapter(env, load, load.leases.delete)
