"""Correct adapters written the way teams write caches: each legal behaviour the kit must not flag.

Every entry serialises, names its keys, evicts, expires or skips a call the way real code does, and
each is correct one operation at a time. Those that fill with a plain set after a plain lookup
still have the stale-set race of the pattern as the seed states it (``racy``): the kit shows it
under interleaving, as for the seed's own adapters. ``tests/test_idioms.py`` holds the kit to both.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from collections import OrderedDict
from collections.abc import Callable

import attrs

from cachepact import ABSENT, Adapter


@attrs.frozen(kw_only=True)
class Idiom:
    name: str
    pattern: str
    why: str
    make: Callable
    racy: bool = True  # a plain lookup-then-set fill: the seed's stale-set race under interleaving


IDIOMS: dict[str, Idiom] = {}


def idiom(pattern: str, why: str, *, racy: bool = True):
    def register(make: Callable) -> Callable:
        IDIOMS[make.__name__] = Idiom(name=make.__name__, pattern=pattern, why=why, make=make, racy=racy)
        return make

    return register


def _aside(env, get, put, drop) -> Adapter:
    """Cache-aside over ``get``/``put``/``drop`` functions of the adapter's own: the seed's flow."""

    def read(key):
        value = get(key)
        if value is None:
            value = env.db.get(key)
            if value is not None:
                put(key, value)
        return value

    def write(key, value):
        env.db.put(key, value)
        drop(key)

    return Adapter(read=read, write=write)


# -- payloads ---------------------------------------------------------------------------------------


@idiom("cache-aside", "stores JSON with a timestamp beside the value, decodes on read")
def aside_json_payloads(env) -> Adapter:
    def get(key):
        raw = env.cache.get(key)
        return None if raw is None else json.loads(raw)["value"]

    def put(key, value):
        env.cache.set(key, json.dumps({"value": value, "cached_at": time.time()}))

    return _aside(env, get, put, env.cache.delete)


@idiom("cache-aside", "pickles a (value, metadata) tuple, as cachelib and dogpile do")
def aside_pickled_payloads(env) -> Adapter:
    def get(key):
        raw = env.cache.get(key)
        return None if raw is None else pickle.loads(raw)[0]

    def put(key, value):
        env.cache.set(key, pickle.dumps((value, {"v": 1, "ct": time.time()})))

    return _aside(env, get, put, env.cache.delete)


# -- keys -------------------------------------------------------------------------------------------


@idiom("cache-aside", "namespaces its cache keys: user:<id>")
def aside_prefixed_keys(env) -> Adapter:
    def ck(key):
        return f"user:{key}"

    return _aside(
        env, lambda k: env.cache.get(ck(k)), lambda k, v: env.cache.set(ck(k), v), lambda k: env.cache.delete(ck(k))
    )


@idiom("cache-aside", "hashes its keys (as memcached clients do for long keys)")
def aside_hashed_keys(env) -> Adapter:
    def ck(key):
        return hashlib.sha1(f"app:1:{key}".encode()).hexdigest()

    return _aside(
        env, lambda k: env.cache.get(ck(k)), lambda k, v: env.cache.set(ck(k), v), lambda k: env.cache.delete(ck(k))
    )


# -- evictions and expiry ----------------------------------------------------------------------------


class LRUStore:
    """A capacity-bound LRU in front of the cache store: filling past capacity evicts the oldest."""

    def __init__(self, store, capacity: int) -> None:
        self.store, self.capacity = store, capacity
        self.order: OrderedDict = OrderedDict()

    def get(self, key):
        value = self.store.get(key)
        if value is None:
            self.order.pop(key, None)
        else:
            self.order[key] = None
            self.order.move_to_end(key)
        return value

    def set(self, key, value):
        self.order[key] = None
        self.order.move_to_end(key)
        while len(self.order) > self.capacity:
            oldest, _ = self.order.popitem(last=False)
            self.store.delete(oldest)
        self.store.set(key, value)

    def delete(self, key):
        self.order.pop(key, None)
        self.store.delete(key)


@idiom("cache-aside", "a capacity-1 LRU over three keys: nearly every fill evicts another entry")
def aside_lru_capacity_one(env) -> Adapter:
    lru = LRUStore(env.cache, capacity=1)
    adapter = _aside(env, lru.get, lru.set, lru.delete)
    # The LRU is the Cache: its evictions are the cache's own. (In cache-aside the App still fills,
    # through it.)
    return Adapter(read=adapter.read, write=adapter.write, cache_code=LRUStore)


@idiom("cache-aside", "every entry lives 300 s (a TTL on the store)")
def aside_ttl_entries(env) -> Adapter:
    return _aside(env, env.cache.get, lambda k, v: env.cache.set(k, v, ttl=300), env.cache.delete)


class ExpiringRegion:
    """A read-through region in the style of dogpile.cache: entries carry their creation time and are
    regenerated, by the region, once older than ``expiration_time``."""

    def __init__(self, store, creator, expiration_time: float) -> None:
        self.store, self.creator, self.expiration_time = store, creator, expiration_time

    def get_or_create(self, key):
        cached = self.store.get(key)
        if cached is not None:
            value, created = pickle.loads(cached)
            if time.time() - created < self.expiration_time:
                return value
        value = self.creator(key)
        if value is not None:
            self.store.set(key, pickle.dumps((value, time.time())))
        return value

    def invalidate(self, key):
        self.store.delete(key)


@idiom("read-through", "a region that regenerates entries older than 60 s (soft expiry), pickled with their age")
def through_soft_expiry(env) -> Adapter:
    region = ExpiringRegion(env.cache, env.db.get, expiration_time=60)

    def write(key, value):
        env.db.put(key, value)
        region.invalidate(key)

    return Adapter(read=region.get_or_create, write=write, cache_code=ExpiringRegion)


# -- negative caching --------------------------------------------------------------------------------

NOT_FOUND = "<none>"


@idiom("cache-aside", "caches 'not in the DB' as a marker, declared with decode=")
def aside_negative_caching(env) -> Adapter:
    def read(key):
        cached = env.cache.get(key)
        if cached is not None:
            return None if cached == NOT_FOUND else cached
        value = env.db.get(key)
        env.cache.set(key, NOT_FOUND if value is None else value)
        return value

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return Adapter(read=read, write=write, decode=lambda payload: ABSENT if payload == NOT_FOUND else payload)


@idiom("cache-aside", "caches 'not in the DB' as JSON null: no decode= needed")
def aside_negative_json(env) -> Adapter:
    def read(key):
        raw = env.cache.get(key)
        if raw is not None:
            return json.loads(raw)
        value = env.db.get(key)
        env.cache.set(key, json.dumps(value))
        return value

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return Adapter(read=read, write=write)


# -- calls skipped when they would change nothing ----------------------------------------------------


@idiom("cache-aside", "invalidates the mapping way, pop(key, None): no delete when nothing is cached")
def aside_pop_invalidation(env) -> Adapter:
    def drop(key):
        if env.cache.get(key) is not None:
            env.cache.delete(key)

    return _aside(env, env.cache.get, env.cache.set, drop)


@idiom("cache-aside", "fills the setdefault way: stores only when no other read has filled meanwhile")
def aside_setdefault_fill(env) -> Adapter:
    def put(key, value):
        if env.cache.get(key) is None:
            env.cache.set(key, value)

    return _aside(env, env.cache.get, put, env.cache.delete)
