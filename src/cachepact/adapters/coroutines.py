"""Coroutine adapters (``async def`` read and write), as async services write them, each the twin of
a synchronous adapter of the reference or broken catalogue: the same logic, awaited.

``ASYNC_CATALOGUE`` maps each to its pattern, its synchronous twin, and the verdicts of a sequential
(``--no-concurrency``) and a default check; ``tests/test_async_catalogue.py`` pins both, and that each
agrees with its twin's. The asyncio shapes with no synchronous spelling (a task left running, a lock
shared between requests, an in-flight load awaited by other requests) are here too, with the twin a
threaded adapter of the same meaning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import attrs

from cachepact import Adapter

from . import broken, reference


@attrs.frozen(kw_only=True)
class AsyncCase:
    name: str
    pattern: str
    sequential: str  # the verdict with --no-concurrency: "pass" or the invariant it fails
    default: str  # the verdict of the default check (concurrent, 2 app instances)
    twin: Callable  # the synchronous adapter of the same logic
    make: Callable
    instances: int = 2  # app instances of the default check (1: one process's requests)


ASYNC_CATALOGUE: dict[str, AsyncCase] = {}


def _case(pattern: str, sequential: str, default: str, twin: Callable, *, instances: int = 2):
    def register(make: Callable) -> Callable:
        ASYNC_CATALOGUE[make.__name__] = AsyncCase(
            name=make.__name__,
            pattern=pattern,
            sequential=sequential,
            default=default,
            twin=twin,
            make=make,
            instances=instances,
        )
        return make

    return register


def _read(env):
    async def read(key):
        value = await env.async_cache.get(key)
        if value is None:
            value = await env.async_db.get(key)
            if value is not None:
                await env.async_cache.set(key, value)
        return value

    return read


def _write(env):
    async def write(key, value):
        await env.async_db.put(key, value)
        await env.async_cache.delete(key)

    return write


class AsyncReadThrough:
    """A tiny async read-through library (named in ``cache_code``): it loads through its loader and
    fills, as aiocache's ``@cached`` does."""

    def __init__(self, cache, loader, *, leases: bool = False) -> None:
        self.cache = cache
        self.loader = loader
        self.leases = leases

    async def get(self, key):
        if self.leases:
            for _ in range(reference.LEASE_RETRIES):
                value, token = await self.cache.lease_get(key)
                if value is not None:
                    return value
                if token is not None:
                    value = await self.loader(key)
                    await self.cache.lease_set(key, value, token)
                    return value
            return await self.loader(key)
        value = await self.cache.get(key)
        if value is None:
            value = await self.loader(key)
            if value is not None:
                await self.cache.set(key, value)
        return value

    async def invalidate(self, key):
        await self.cache.delete(key)


# -- correct --------------------------------------------------------------------------------------------


@_case("cache-aside", "pass", "pass", reference.cache_aside_leased)
def leased(env) -> Adapter:
    async def read(key):
        for _ in range(reference.LEASE_RETRIES):
            value, token = await env.async_cache.lease_get(key)
            if value is not None:
                return value
            if token is not None:
                value = await env.async_db.get(key)
                await env.async_cache.lease_set(key, value, token)
                return value
        return await env.async_db.get(key)

    return Adapter(read=read, write=_write(env))


@_case("read-through", "pass", "pass", reference.read_through_leased)
def library_leased(env) -> Adapter:
    lib = AsyncReadThrough(env.async_cache, env.async_db.get, leases=True)

    async def write(key, value):
        await env.async_db.put(key, value)
        await lib.invalidate(key)

    return Adapter(read=lib.get, write=write, cache_code=AsyncReadThrough)


# -- caught sequentially ------------------------------------------------------------------------------


@_case("cache-aside", "who-populates", "who-populates", broken.aside_never_fills)
def never_fills(env) -> Adapter:
    async def read(key):
        value = await env.async_cache.get(key)
        return value if value is not None else await env.async_db.get(key)

    return Adapter(read=read, write=_write(env))


@_case("cache-aside", "invalidate-not-update", "invalidate-not-update", broken.aside_update_on_write)
def update_on_write(env) -> Adapter:
    async def write(key, value):
        await env.async_db.put(key, value)
        await env.async_cache.set(key, value)

    return Adapter(read=_read(env), write=write)


@_case("cache-aside", "fresh-read", "fresh-read", broken.aside_local_memo)
def local_memo(env) -> Adapter:
    inner, memo = _read(env), {}

    async def read(key):
        if key not in memo:
            memo[key] = await inner(key)
        return memo[key]

    return Adapter(read=read, write=_write(env))


@_case("cache-aside", "hit-after-fill", "hit-after-fill", broken.aside_validates_hits)
def validates_hits(env) -> Adapter:
    async def read(key):
        cached, value = await asyncio.gather(env.async_cache.get(key), env.async_db.get(key))
        if cached is None and value is not None:
            await env.async_cache.set(key, value)
        return value

    return Adapter(read=read, write=_write(env))


@_case("cache-aside", "single-load", "single-load", broken.aside_double_load)
def double_load(env) -> Adapter:
    async def read(key):
        value = await env.async_cache.get(key)
        if value is None:
            if await env.async_db.get(key) is None:
                return None
            value = await env.async_db.get(key)
            await env.async_cache.set(key, value)
        return value

    return Adapter(read=read, write=_write(env))


@_case("read-through", "who-loads", "who-loads", broken.through_app_loads)
def through_app_loads(env) -> Adapter:
    return Adapter(read=_read(env), write=_write(env))


@_case("read-through", "invalidate-not-update", "invalidate-not-update", broken.through_refresh_on_write)
def through_refresh_on_write(env) -> Adapter:
    lib = AsyncReadThrough(env.async_cache, env.async_db.get)

    async def write(key, value):
        await env.async_db.put(key, value)
        await env.async_cache.set(key, value)

    return Adapter(read=lib.get, write=write, cache_code=AsyncReadThrough)


# -- caught by the concurrent checks ---------------------------------------------------------------


@_case("cache-aside", "pass", "coherent-at-rest", broken.seed_cache_aside)
def textbook(env) -> Adapter:
    return Adapter(read=_read(env), write=_write(env))


@_case("read-through", "pass", "coherent-at-rest", broken.seed_read_through)
def library(env) -> Adapter:
    lib = AsyncReadThrough(env.async_cache, env.async_db.get)

    async def write(key, value):
        await env.async_db.put(key, value)
        await lib.invalidate(key)

    return Adapter(read=lib.get, write=write, cache_code=AsyncReadThrough)


@_case("cache-aside", "pass", "coherent-at-rest", broken.aside_delete_before_put)
def delete_before_put(env) -> Adapter:
    async def write(key, value):
        await env.async_cache.delete(key)
        await env.async_db.put(key, value)

    return Adapter(read=_read(env), write=write)


@_case("cache-aside", "pass", "coherent-at-rest", broken.aside_lease_after_load)
def lease_after_load(env) -> Adapter:
    async def read(key):
        value = await env.async_cache.get(key)
        if value is None:
            value = await env.async_db.get(key)
            _, token = await env.async_cache.lease_get(key)
            if token is not None:
                await env.async_cache.lease_set(key, value, token)
        return value

    return Adapter(read=read, write=_write(env))


# -- asyncio's own shapes, each beside a threaded adapter of the same meaning ------------------------------


def _threaded_deferred_delete(env) -> Adapter:
    import threading

    def write(key, value):
        env.db.put(key, value)
        threading.Thread(target=env.cache.delete, args=(key,)).start()  # returns before the delete

    return Adapter(read=reference.cache_aside_leased(env).read, write=write)


@_case("cache-aside", "pass", "fresh-read", _threaded_deferred_delete)
def fire_and_forget_delete(env) -> Adapter:
    """``asyncio.create_task`` for the invalidation, so the write answers sooner: a read between the
    return and the delete gets the old value. Reads fill through leases, so that is the one race."""
    tasks = set()  # a reference to each task, as asyncio's documentation asks

    async def write(key, value):
        await env.async_db.put(key, value)
        task = asyncio.create_task(env.async_cache.delete(key))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return Adapter(read=leased(env).read, write=write)


def _threaded_locked(env) -> Adapter:
    import threading

    guard = threading.Lock()
    inner = reference.cache_aside(env)

    def read(key):
        with guard:
            return inner.read(key)

    def write(key, value):
        with guard:
            inner.write(key, value)

    return Adapter(read=read, write=write)


@_case("cache-aside", "pass", "pass", _threaded_locked, instances=1)
def process_lock(env) -> Adapter:
    """One ``asyncio.Lock`` made in make, held by reads and writes: no stale fill within one process
    (``instances=1``; two processes each have their own lock, and race)."""
    guard = asyncio.Lock()
    read, write = _read(env), _write(env)

    async def locked_read(key):
        async with guard:
            return await read(key)

    async def locked_write(key, value):
        async with guard:
            await write(key, value)

    return Adapter(read=locked_read, write=locked_write)


def _threaded_coalescing(env) -> Adapter:
    import threading
    from concurrent.futures import Future

    inflight: dict = {}
    guard = threading.Lock()
    leased_read = reference.cache_aside_leased(env).read

    def read(key):
        with guard:
            future = inflight.get(key)
            mine = future is None
            if mine:
                future = inflight[key] = Future()
        if not mine:
            return future.result()
        try:
            value = leased_read(key)
            future.set_result(value)
            return value
        finally:
            with guard:
                inflight.pop(key, None)

    return Adapter(read=read, write=reference.cache_aside_leased(env).write)


@_case("cache-aside", "pass", "fresh-read", _threaded_coalescing)
def coalescing(env) -> Adapter:
    """Request coalescing: a read of a key another request of the process is loading awaits that
    load's task instead of its own. Leases keep the cache right, but a read that began after a write
    returned may join a load begun before the write, and return what the write replaced."""
    inflight: dict = {}
    leased_read = leased(env).read

    async def read(key):
        task = inflight.get(key)
        if task is None:
            task = inflight[key] = asyncio.ensure_future(leased_read(key))
            task.add_done_callback(lambda _: inflight.pop(key, None))
        return await task

    return Adapter(read=read, write=_write(env))


__all__ = ["ASYNC_CATALOGUE", "AsyncCase", "AsyncReadThrough"]
