"""cachetools, as its documentation shows it: ``@cached(cache, key=, lock=)`` (read-through: the
decorator loads through the function and fills) over a mapping backed by ``env.cache``, invalidated
the way the docs show (``fn.cache.pop(fn.cache_key(...))``); and a ``TTLCache`` used by hand as a
per-process L1 in front of the shared cache (cache-aside).

``cache_code`` names the ``cachetools`` module: a call made while its code is on the stack is the
Cache's, so the decorated function's DB read is the Cache loading.
"""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from typing import Any

from cachepact import Adapter
from cachepact.errors import MissingDependency

try:
    import cachetools
except ImportError as e:  # pragma: no cover - exercised in a venv without the extra
    raise MissingDependency(
        "cachetools", "cachepact[cachetools]", needed_for="cachepact.adapters.libraries.cachetools"
    ) from e

TTL = 300


class EnvCacheMapping(MutableMapping):
    """The mapping ``@cached`` stores into, over the shared ``env.cache``: how a team puts
    cachetools' decorator in front of a shared cache."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache

    def __getitem__(self, key: Any) -> Any:
        value = self.cache.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        self.cache.set(key, value)

    def __delitem__(self, key: Any) -> None:
        self.cache.delete(key)

    def __iter__(self):  # cachetools never iterates a cache it was given
        raise TypeError("env.cache cannot be listed")

    def __len__(self) -> int:
        raise TypeError("env.cache cannot be counted")


def cached(env) -> Adapter:
    """Read-through: ``@cachetools.cached(EnvCacheMapping(env.cache), lock=Lock())``; a write pops the
    entry, ``load.cache.pop(load.cache_key(key), None)``, as the docs show."""

    @cachetools.cached(EnvCacheMapping(env.cache), lock=threading.Lock())
    def load(key):
        return env.db.get(key)

    def write(key, value):
        env.db.put(key, value)
        load.cache.pop(load.cache_key(key), None)

    return Adapter(read=load, write=write, cache_code="cachetools")


def ttl_cache(env) -> Adapter:
    """Cache-aside by hand, two tiers: a ``TTLCache`` in this process (an L1) in front of the shared
    ``env.cache``. Each app instance has its own L1, and a write clears only its own."""
    local = cachetools.TTLCache(maxsize=1024, ttl=TTL)

    def read(key):
        value = local.get(key)
        if value is None:
            value = env.cache.get(key)
            if value is None:
                value = env.db.get(key)
                if value is not None:
                    env.cache.set(key, value, ttl=TTL)
            if value is not None:
                local[key] = value
        return value

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)
        local.pop(key, None)

    return Adapter(read=read, write=write)
