"""cachetools, as its documentation shows it: ``@cached(cache, key=, lock=)`` (read-through: the
decorator loads through the function and fills) over a mapping backed by ``env.cache``, invalidated
the way the docs show (``fn.cache.pop(fn.cache_key(...))``); and a ``TTLCache`` used by hand as a
per-process L1 in front of the shared cache (cache-aside). The fix, ``cached_leased``, is the same
decorator over ``LeasedRedisMapping``: a mapping on Redis whose fills are lease-checked.

``cache_code`` names the ``cachetools`` module: a call made while its code is on the stack is the
Cache's, so the decorated function's DB read is the Cache loading.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import MutableMapping
from typing import Any

from cachepact import Adapter
from cachepact.errors import MissingDependency
from cachepact.leases import Leases

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


_MISSING = object()


class LeasedRedisMapping(MutableMapping):
    """The fix: the mapping ``@cached`` stores into, on Redis through ``cachepact.leases.Leases``.
    A miss (``cache[k]``) takes the key's lease; ``@cached`` then stores through ``setdefault``, a
    lease-checked set that never takes a lease itself; a delete voids outstanding leases, so a load
    that raced a write is not cached. Values are pickled. A lease whose loader raised is given to
    the next reader once ``Leases``' ``lease_ttl`` runs out."""

    def __init__(self, client: Any, *, ttl: float = TTL) -> None:
        self.leases = Leases(client)
        self.client = client
        self.ttl = ttl
        self._held = threading.local()  # this thread's last miss: (key, its lease token or None)

    def __getitem__(self, key: Any) -> Any:
        value, token = self.leases.get(key)
        if value is None:
            self._held.miss = (key, token)
            raise KeyError(key)
        return pickle.loads(value)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        # What @cached calls after loading, to "prefer the item already in the cache". Neither half
        # of that is safe here: a look with a lease, granted after a write voided ours, lets the
        # value loaded before the write in; and the cached item may be older than what this read
        # just loaded (the kit reports fresh-read). So: a lease-checked store, and the loaded value.
        self._store(key, default)
        return default

    def __setitem__(self, key: Any, value: Any) -> None:
        self._store(key, value)

    def _store(self, key: Any, value: Any) -> None:
        """Store only with the lease this thread's miss of ``key`` was granted (refused if a write
        voided it); without one, another reader holds the lease and nothing is stored."""
        held, token = getattr(self._held, "miss", (None, None))
        self._held.miss = (None, None)
        if held == key and token is not None:
            self.leases.set(key, pickle.dumps(value), token, ttl=self.ttl)

    def __delitem__(self, key: Any) -> None:
        self.leases.delete(key)

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        # MutableMapping.pop looks first and deletes only on a hit; a look that misses would take a
        # lease and skip the delete, leaving a reader's lease valid. Invalidation always deletes.
        self.leases.delete(key)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def get(self, key: Any, default: Any = None) -> Any:
        value = self.client.get(key)  # a plain look: inspecting the cache takes no lease
        return default if value is None else pickle.loads(value)

    def __contains__(self, key: object) -> bool:
        return bool(self.client.exists(key))

    def __iter__(self):  # cachetools never iterates a cache it was given
        raise TypeError("a shared Redis cache is not listed")

    def __len__(self) -> int:
        raise TypeError("a shared Redis cache is not counted")


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


def cached_leased(env) -> Adapter:
    """The fix: ``@cachetools.cached(LeasedRedisMapping(env.redis), key=..., lock=Lock())``, a key per
    product; a write pops the entry as the docs show."""
    return cached_over(env, LeasedRedisMapping(env.redis))


def cached_over(env, mapping: MutableMapping) -> Adapter:
    """``@cachetools.cached(mapping, key=..., lock=Lock())`` over a mapping on Redis that pickles its
    values, a key per product; a write pops the entry as the docs show."""

    @cachetools.cached(mapping, key=lambda key: f"product:{key}", lock=threading.Lock())
    def load(key):
        return env.db.get(key)

    def write(key, value):
        env.db.put(key, value)
        load.cache.pop(load.cache_key(key), None)

    return Adapter(read=load, write=write, cache_code="cachetools", decode=pickle.loads)


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
