"""cashews, as its documentation shows it: a ``Cache`` set up on the run's Redis
(``cache.setup(env.redis_url)``), ``@cache(ttl="5m", key="user:{key}")`` on an ``async def`` loader
(read-through: the decorator loads on a miss and fills) and ``@cache.invalidate("user:{key}")`` on the
write (it deletes the key once the write returns). Its ``redis.asyncio`` client's commands are
recorded as any client's are.

``cache_invalidate`` keeps cashews' default, ``suppress=True``: a Redis error is logged and swallowed,
so a write whose delete failed returns as if it had invalidated. ``cache_invalidate_raising`` sets
``suppress=False``, so the error reaches the caller.

``cache_code="cashews.decorators"``: a call made while cashews' caching decorators are on the stack is
the Cache's, so the decorated loader's DB read is the Cache loading. Not all of ``cashews``: its
``invalidate`` decorator wraps the write itself, and the write's DB put is the App's.
"""

from __future__ import annotations

from cachepact import Adapter
from cachepact.errors import MissingDependency

try:
    from cashews import Cache
except ImportError as e:  # pragma: no cover - exercised in a venv without the extra
    raise MissingDependency("cashews", "cachepact[cashews]", needed_for="cachepact.adapters.libraries.cashews") from e

TTL = "5m"


def _adapter(env, *, suppress: bool) -> Adapter:
    cache = Cache()  # one per app instance, as each process sets up its own
    cache.setup(env.redis_url, suppress=suppress)

    @cache(ttl=TTL, key="user:{key}")
    async def load(key):
        return await env.async_db.get(key)

    async def read(key):
        return await load(key)

    @cache.invalidate("user:{key}")
    async def write(key, value):
        await env.async_db.put(key, value)

    return Adapter(read=read, write=write, cache_code="cashews.decorators")


def cache_invalidate(env) -> Adapter:
    """``@cache(ttl="5m", key=...)`` on the loader, ``@cache.invalidate(...)`` on the write."""
    return _adapter(env, suppress=True)


def cache_invalidate_raising(env) -> Adapter:
    """The same with ``cache.setup(url, suppress=False)``: a failed delete reaches the writer."""
    return _adapter(env, suppress=False)
