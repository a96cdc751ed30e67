"""redis-py's asyncio client, as an async service uses it: ``redis.asyncio.Redis`` on the run's server
(``env.async_redis``), cache-aside by hand (``GET``, the load, ``SET ... EX``; the write's ``DEL``),
and the fix, the same with ``cachepact.leases.AsyncLeases``: the fill is lease-checked, and the
write's delete voids a reader's lease.
"""

from __future__ import annotations

from cachepact import Adapter
from cachepact.leases import AsyncLeases

TTL = 300


def get_set(env) -> Adapter:
    """``await r.get``, the load, ``await r.set(key, value, ex=300)``; ``await r.delete`` on write."""
    r = env.async_redis

    async def read(key):
        raw = await r.get(f"user:{key}")
        if raw is not None:
            return raw.decode()
        value = await env.async_db.get(key)
        if value is not None:
            await r.set(f"user:{key}", value, ex=TTL)
        return value

    async def write(key, value):
        await env.async_db.put(key, value)
        await r.delete(f"user:{key}")

    return Adapter(read=read, write=write)


def leased(env) -> Adapter:
    """``AsyncLeases(env.async_redis)``: ``get`` grants the miss a lease, ``set`` fills under it,
    ``delete`` invalidates and voids it."""
    leases = AsyncLeases(env.async_redis)

    async def read(key):
        raw, token = await leases.get(f"user:{key}")
        if raw is not None:
            return raw.decode()
        value = await env.async_db.get(key)
        if token is not None:
            await leases.set(f"user:{key}", value, token, ttl=TTL)  # None releases the lease
        return value

    async def write(key, value):
        await env.async_db.put(key, value)
        await leases.delete(f"user:{key}")

    return Adapter(read=read, write=write)
