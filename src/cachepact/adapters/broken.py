"""The catalogue of deliberately broken adapters: each declares the invariant it must trip.

The kit is only as good as what it catches. ``tests/test_catalogue.py`` runs every entry and
asserts it fails with exactly its declared invariant; ``cachepact check`` accepts any of them as
``cachepact.adapters.broken:NAME`` (``broken`` returns the factory, so each entry is a
module-level name).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from cachepact import Adapter

from ..model import pattern_named
from .background import RefreshAheadCache, RefreshingWriteBehindCache
from .library import CacheLock, ReadThroughCache, WriteThroughCache
from .reference import aside_read, cache_aside, cache_aside_write_through, read_through, write_through


@attrs.frozen(kw_only=True)
class Broken:
    name: str
    pattern: str
    invariant: str
    why: str
    make: Callable
    concurrent: bool = False  # caught only by the concurrent checks
    derived: bool = False  # another entry's read-side bug with another write half (the same code)


CATALOGUE: dict[str, Broken] = {}


def broken(pattern: str, invariant: str, why: str, *, concurrent: bool = False, derived: bool = False):
    def register(make: Callable) -> Callable:
        CATALOGUE[make.__name__] = Broken(
            name=make.__name__,
            pattern=pattern,
            invariant=invariant,
            why=why,
            make=make,
            concurrent=concurrent,
            derived=derived,
        )
        return make

    return register


def _write(env, cache=None):
    """The correct write path (DB, then invalidate), for entries whose bug is on the read side."""

    def write(key, value):
        env.db.put(key, value)
        (cache.invalidate if cache else env.cache.delete)(key)

    return write


# -- cache-aside ---------------------------------------------------------------------------------


@broken("cache-aside", "who-loads", "claims cache-aside but hands loading to a read-through library")
def aside_library_loads(env) -> Adapter:
    cache = ReadThroughCache(env.cache, env.db.get)
    return Adapter(read=cache.get, write=_write(env, cache), cache_code=ReadThroughCache)


@broken("cache-aside", "who-populates", "loads on a miss but never fills the cache")
def aside_never_fills(env) -> Adapter:
    def read(key):
        value = env.cache.get(key)
        return value if value is not None else env.db.get(key)

    return Adapter(read=read, write=_write(env))


@broken(
    "cache-aside",
    "coherent-at-rest",
    "invalidates before writing the DB, not after: a read between refills",
    concurrent=True,
)
def aside_invalidate_first(env) -> Adapter:
    read = cache_aside(env).read

    def write(key, value):
        env.cache.delete(key)
        env.db.put(key, value)

    return Adapter(read=read, write=write)


@broken("cache-aside", "invalidate-not-update", "writes the new value into the cache instead of deleting it")
def aside_update_on_write(env) -> Adapter:
    def write(key, value):
        env.db.put(key, value)
        env.cache.set(key, value)

    return Adapter(read=cache_aside(env).read, write=write)


@broken("cache-aside", "fresh-read", "memoises reads in a process-local dict that no write clears")
def aside_local_memo(env) -> Adapter:
    inner = cache_aside(env)
    memo: dict = {}

    def read(key):
        if key not in memo:
            memo[key] = inner.read(key)
        return memo[key]

    return Adapter(read=read, write=inner.write)


@broken("cache-aside", "write-order", "invalidates a versioned cache key that reads never use")
def aside_wrong_key_invalidated(env) -> Adapter:
    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(f"{key}:v2")

    return Adapter(read=cache_aside(env).read, write=write)


@broken("cache-aside", "coherent-at-rest", "caches each value under its id and a slug, invalidates only the id")
def aside_second_key_left_stale(env) -> Adapter:
    def read(key):
        value = env.cache.get(key)
        if value is None:
            value = env.db.get(key)
            if value is not None:
                env.cache.set(key, value)
                env.cache.set(f"slug:{key}", value)  # for lookups by slug elsewhere in the app
        return value

    return Adapter(read=read, write=_write(env))


@broken("cache-aside", "write-order", "caches 'not found' under neg:<key>, and a write deletes only <key>")
def aside_negative_never_invalidated(env) -> Adapter:
    def read(key):
        if env.cache.get(f"neg:{key}") is not None:
            return None
        value = env.cache.get(key)
        if value is None:
            value = env.db.get(key)
            if value is None:
                env.cache.set(f"neg:{key}", "null")  # JSON null: the kit reads it as a negative entry
            else:
                env.cache.set(key, value)
        return value

    return Adapter(read=read, write=_write(env))


@broken("cache-aside", "write-order", "lets entries expire (TTL 60 s) instead of invalidating on write")
def aside_ttl_instead_of_invalidation(env) -> Adapter:
    def read(key):
        value = env.cache.get(key)
        if value is None:
            value = env.db.get(key)
            if value is not None:
                env.cache.set(key, value, ttl=60)
        return value

    def write(key, value):
        env.db.put(key, value)  # "the entry expires within a minute anyway"

    return Adapter(read=read, write=write)


@broken("cache-aside", "hit-after-fill", "re-reads the DB on every hit to 'validate' the entry")
def aside_validates_hits(env) -> Adapter:
    def read(key):
        cached = env.cache.get(key)
        value = env.db.get(key)
        if cached is None and value is not None:
            env.cache.set(key, value)
        return value

    return Adapter(read=read, write=_write(env))


@broken("cache-aside", "single-load", "reads the DB twice on a miss (an existence check, then the load)")
def aside_double_load(env) -> Adapter:
    def read(key):
        value = env.cache.get(key)
        if value is None:
            if env.db.get(key) is None:
                return None
            value = env.db.get(key)
            env.cache.set(key, value)
        return value

    return Adapter(read=read, write=_write(env))


@broken("cache-aside", "adapter-error", "raises on a key that was never written")
def aside_raises_on_absent(env) -> Adapter:
    inner = cache_aside(env)

    def read(key):
        value = inner.read(key)
        if value is None:
            raise KeyError(key)
        return value

    return Adapter(read=read, write=inner.write)


# -- read-through --------------------------------------------------------------------------------


class _StoreOnlyLibrary:
    """A 'read-through' library that loads but leaves storing to the app."""

    def __init__(self, store, loader):
        self.store, self.loader = store, loader

    def get(self, key):
        value = self.store.get(key)
        return (value, False) if value is not None else (self.loader(key), True)


@broken("read-through", "who-loads", "claims read-through but the app loads from the DB itself")
def through_app_loads(env) -> Adapter:
    return Adapter(read=cache_aside(env).read, write=_write(env))


@broken("read-through", "who-populates", "the library loads, but the app stores the entry")
def through_app_fills(env) -> Adapter:
    lib = _StoreOnlyLibrary(env.cache, env.db.get)

    def read(key):
        value, missed = lib.get(key)
        if missed and value is not None:
            env.cache.set(key, value)
        return value

    return Adapter(read=read, write=_write(env), cache_code=_StoreOnlyLibrary)


@broken("read-through", "write-order", "lets the library write the DB (write-through), then invalidates")
def through_library_writes(env) -> Adapter:
    cache = ReadThroughCache(env.cache, env.db.get)

    def write(key, value):
        _library_put(env, key, value)
        cache.invalidate(key)

    return Adapter(read=cache.get, write=write, cache_code=(ReadThroughCache, _library_put))


def _library_put(env, key, value):
    env.db.put(key, value)


@broken("read-through", "invalidate-not-update", "refreshes the entry with the new value on write")
def through_refresh_on_write(env) -> Adapter:
    cache = ReadThroughCache(env.cache, env.db.get)

    def write(key, value):
        env.db.put(key, value)
        env.cache.set(key, value)

    return Adapter(read=cache.get, write=write, cache_code=ReadThroughCache)


@broken("read-through", "fresh-read", "keeps a process-local copy in front of the library, never cleared")
def through_local_memo(env) -> Adapter:
    cache = ReadThroughCache(env.cache, env.db.get)
    memo: dict = {}

    def read(key):
        if key not in memo:
            memo[key] = cache.get(key)
        return memo[key]

    return Adapter(read=read, write=_write(env, cache), cache_code=ReadThroughCache)


@broken("read-through", "write-order", "invalidates through a different cache key than the library reads")
def through_wrong_key_invalidated(env) -> Adapter:
    cache = ReadThroughCache(env.cache, env.db.get)

    def write(key, value):
        env.db.put(key, value)
        cache.invalidate(f"{key}:v2")

    return Adapter(read=cache.get, write=write, cache_code=ReadThroughCache)


class _TwoKeyLibrary(ReadThroughCache):
    """Stores every entry twice, under the key and a hashed alias; invalidates the key only."""

    def get(self, key):
        value = super().get(key)
        if value is not None:
            self.store.set(f"alias:{hash(key) & 0xFFFF:x}", value)
        return value


@broken("read-through", "coherent-at-rest", "the library keeps an alias entry that invalidation misses")
def through_alias_left_stale(env) -> Adapter:
    cache = _TwoKeyLibrary(env.cache, env.db.get)
    return Adapter(read=cache.get, write=_write(env, cache), cache_code=_TwoKeyLibrary)


class _RevalidatingLibrary(ReadThroughCache):
    def get(self, key):
        cached = self.store.get(key)
        fresh = self.loader(key)
        if cached is None and fresh is not None:
            self.store.set(key, fresh)
        return fresh


@broken("read-through", "hit-after-fill", "the library revalidates every hit against the DB")
def through_revalidates(env) -> Adapter:
    cache = _RevalidatingLibrary(env.cache, env.db.get)
    return Adapter(read=cache.get, write=_write(env, cache), cache_code=_RevalidatingLibrary)


class _DoubleLoadLibrary(ReadThroughCache):
    def get(self, key):
        value = self.store.get(key)
        if value is None and self.loader(key) is not None:
            value = self.loader(key)
            self.store.set(key, value)
        return value


@broken("read-through", "single-load", "the library loads twice on a miss")
def through_double_load(env) -> Adapter:
    cache = _DoubleLoadLibrary(env.cache, env.db.get)
    return Adapter(read=cache.get, write=_write(env, cache), cache_code=_DoubleLoadLibrary)


@broken("read-through", "adapter-error", "the loader raises on a key that was never written")
def through_loader_raises(env) -> Adapter:
    def loader(key):
        value = env.db.get(key)
        if value is None:
            raise LookupError(f"no row for {key}")
        return value

    cache = ReadThroughCache(env.cache, loader)
    return Adapter(read=cache.get, write=_write(env, cache), cache_code=ReadThroughCache)


# -- concurrency: each is sequentially correct and fails only under some interleaving -------------


@broken("cache-aside", "coherent-at-rest", "the seed's cache-aside as written: the stale-set race", concurrent=True)
def seed_cache_aside(env) -> Adapter:
    return cache_aside(env)


@broken("read-through", "coherent-at-rest", "the seed's read-through as written: the stale-set race", concurrent=True)
def seed_read_through(env) -> Adapter:
    return read_through(env)


@broken("cache-aside", "coherent-at-rest", "deletes the entry before writing the DB, not after", concurrent=True)
def aside_delete_before_put(env) -> Adapter:
    def write(key, value):
        env.cache.delete(key)  # a read between here and the put refills what the DB still holds
        env.db.put(key, value)

    return Adapter(read=cache_aside(env).read, write=write)


@broken("cache-aside", "coherent-at-rest", "takes a lease but fills with a plain set", concurrent=True)
def aside_lease_then_set(env) -> Adapter:
    def read(key):
        value, _token = env.cache.lease_get(key)
        if value is None:
            value = env.db.get(key)
            if value is not None:
                env.cache.set(key, value)  # the token is never presented: nothing voids this fill
        return value

    return Adapter(read=read, write=_write(env))


@broken("cache-aside", "coherent-at-rest", "loads first and takes its lease afterwards", concurrent=True)
def aside_lease_after_load(env) -> Adapter:
    def read(key):
        value = env.cache.get(key)
        if value is None:
            value = env.db.get(key)
            _, token = env.cache.lease_get(key)  # too late: the delete it should guard against is past
            if token is not None:
                env.cache.lease_set(key, value, token)
        return value

    return Adapter(read=read, write=_write(env))


@broken(
    "cache-aside", "coherent-at-rest", "fills with add (set-if-absent) and believes that guards it", concurrent=True
)
def aside_fill_with_add(env) -> Adapter:
    def read(key):
        value = env.cache.get(key)
        if value is None:
            value = env.db.get(key)
            if value is not None:
                env.cache.add(key, value)  # the delete left the key absent, so add succeeds
        return value

    return Adapter(read=read, write=_write(env))


@broken(
    "cache-aside", "coherent-at-rest", "a dogpile-style mutex around load-and-fill, writes unlocked", concurrent=True
)
def aside_fill_mutex(env) -> Adapter:
    import collections
    import threading

    locks = collections.defaultdict(threading.Lock)

    def read(key):
        value = env.cache.get(key)
        if value is None:
            with locks[key]:  # only one loader per key, but the writer does not take the lock
                value = env.cache.get(key)
                if value is None:
                    value = env.db.get(key)
                    if value is not None:
                        env.cache.set(key, value)
        return value

    return Adapter(read=read, write=_write(env))


@broken("cache-aside", "deadlock", "read and write take two locks in opposite orders", concurrent=True)
def aside_lock_order_deadlock(env) -> Adapter:
    import threading

    first, second = threading.Lock(), threading.Lock()

    def read(key):
        with first:
            value = env.cache.get(key)
            with second:
                if value is None:
                    value = env.db.get(key)
                    if value is not None:
                        env.cache.set(key, value)
        return value

    def write(key, value):
        with second:
            env.db.put(key, value)
            with first:
                env.cache.delete(key)

    return Adapter(read=read, write=write)


@broken(
    "write-through", "coherent-at-rest", "write-through as the docs draw it: stores and fills cross", concurrent=True
)
def seed_write_through(env) -> Adapter:
    return write_through(env)


@broken(
    "cache-aside+write-through",
    "coherent-at-rest",
    "lazy loading plus write-through as AWS draws it: a stale fill lands after the write's store",
    concurrent=True,
)
def seed_cache_aside_write_through(env) -> Adapter:
    return cache_aside_write_through(env)


# -- write-through and cache-aside+write-through ---------------------------------------------------
# A read-side bug is the same bug whatever the write does: these take an entry above and give it the
# write-through write (DB put, then the new value into the cache); the write-side bugs are their own.


def _through(make: Callable, write: Callable | None = None) -> Callable:
    """``make``'s reads with a write-through write: the DB, then the value as the entry."""

    def made(env) -> Adapter:
        inner = make(env)

        def write_through(key, value):
            env.db.put(key, value)
            env.cache.set(key, value)

        return Adapter(read=inner.read, write=write or write_through, cache_code=inner.cache_code)

    return made


def _register_through(pattern: str, name: str, invariant: str, why: str, make: Callable) -> None:
    made = _through(make)
    made.__name__ = made.__qualname__ = name
    globals()[name] = broken(pattern, invariant, why, derived=True)(made)


for _pattern, _prefix, _entries in (
    (
        "write-through",
        "wt",
        (
            (
                "app_loads",
                "who-loads",
                "claims write-through's library loading, but the app reads the DB itself",
                through_app_loads,
            ),
            ("app_fills", "who-populates", "the library loads, but the app stores the entry", through_app_fills),
            (
                "local_memo",
                "fresh-read",
                "keeps a process-local copy in front of the library, never cleared",
                through_local_memo,
            ),
            (
                "alias_left_stale",
                "coherent-at-rest",
                "the library keeps an alias entry the write's store misses",
                through_alias_left_stale,
            ),
            ("revalidates", "hit-after-fill", "the library revalidates every hit against the DB", through_revalidates),
            ("double_load", "single-load", "the library loads twice on a miss", through_double_load),
            (
                "loader_raises",
                "adapter-error",
                "the loader raises on a key that was never written",
                through_loader_raises,
            ),
        ),
    ),
    (
        "cache-aside+write-through",
        "aside_wt",
        (
            (
                "library_loads",
                "who-loads",
                "claims cache-aside loading but hands it to a read-through library",
                aside_library_loads,
            ),
            ("never_fills", "who-populates", "loads on a miss but never fills the cache", aside_never_fills),
            (
                "local_memo",
                "fresh-read",
                "memoises reads in a process-local dict that no write clears",
                aside_local_memo,
            ),
            (
                "second_key_left_stale",
                "coherent-at-rest",
                "caches under its id and a slug, the write stores only the id",
                aside_second_key_left_stale,
            ),
            (
                "validates_hits",
                "hit-after-fill",
                "re-reads the DB on every hit to 'validate' the entry",
                aside_validates_hits,
            ),
            ("double_load", "single-load", "reads the DB twice on a miss", aside_double_load),
            ("raises_on_absent", "adapter-error", "raises on a key that was never written", aside_raises_on_absent),
        ),
    ),
):
    for _suffix, _invariant, _why, _make in _entries:
        _register_through(_pattern, f"{_prefix}_{_suffix}", _invariant, _why, _make)


@broken("write-through", "write-order", "stores the new value in the cache before writing the DB")
def wt_store_first(env) -> Adapter:
    cache = WriteThroughCache(env.cache, env.db.get, env.db.put)

    def write(key, value):
        env.cache.set(key, value)
        env.db.put(key, value)

    return Adapter(read=cache.get, write=write, cache_code=WriteThroughCache)


@broken(
    "write-through", "write-updates", "writes the DB, then deletes the entry: invalidates instead of writing through"
)
def wt_invalidates(env) -> Adapter:
    cache = WriteThroughCache(env.cache, env.db.get, env.db.put)

    def write(key, value):
        env.db.put(key, value)
        cache.invalidate(key)

    return Adapter(read=cache.get, write=write, cache_code=WriteThroughCache)


@broken("write-through", "write-updates", "stores the value it replaced, read back before the put, not the new one")
def wt_stores_previous(env) -> Adapter:
    cache = WriteThroughCache(env.cache, env.db.get, env.db.put)

    def write(key, value):
        previous = env.db.get(key)
        env.db.put(key, value)
        if previous is not None:
            env.cache.set(key, previous)
        else:
            env.cache.set(key, value)

    return Adapter(read=cache.get, write=write, cache_code=WriteThroughCache)


@broken("cache-aside+write-through", "write-order", "sets the new value in the cache before writing the DB")
def aside_wt_store_first(env) -> Adapter:
    def write(key, value):
        env.cache.set(key, value)
        env.db.put(key, value)

    return Adapter(read=cache_aside(env).read, write=write)


@broken(
    "cache-aside+write-through", "write-updates", "deletes the entry on a write: cache-aside's write, not write-through"
)
def aside_wt_deletes(env) -> Adapter:
    return cache_aside(env)


# -- refresh-ahead and write-behind, and the pairings with them -------------------------------------
# A read-through read is a refresh-ahead read that never refreshed (background work owes no step),
# so the read-through entries are refresh-ahead's read-side bugs as they stand; with a write-through
# or a write-behind write they are those pairings'. The background bugs are their own.


def _behind(make: Callable) -> Callable:
    """``make``'s reads with a correct write-behind write: the value as the entry, flushed (in write
    order, one process's buffer at a time) when the kit asks (``flush=``)."""

    def made(env) -> Adapter:
        inner = make(env)
        pending: dict = {}

        def write(key, value):
            env.cache.set(key, value)
            pending[key] = value

        def flush():
            while pending:
                key = next(iter(pending))
                env.db.put(key, pending.pop(key))

        return Adapter(read=inner.read, write=write, flush=flush, cache_code=inner.cache_code)

    return made


def _register(pattern: str, name: str, invariant: str, why: str, make: Callable, *, concurrent: bool = False) -> None:
    make.__name__ = make.__qualname__ = name
    globals()[name] = broken(pattern, invariant, why, concurrent=concurrent, derived=True)(make)


_READ_THROUGH_BUGS = tuple(
    (b.name.removeprefix("through_"), b.invariant, b.why, b.make)
    for b in list(CATALOGUE.values())
    if b.pattern == "read-through" and not b.concurrent
)
_INVALIDATE_BUGS = {"library_writes", "refresh_on_write", "wrong_key_invalidated"}
for _suffix, _invariant, _why, _make in _READ_THROUGH_BUGS:
    _register("refresh-ahead", f"ra_{_suffix}", _invariant, _why, _make)
    if _suffix not in _INVALIDATE_BUGS:  # the read side's bugs, with the other write halves
        _register("refresh-ahead+write-through", f"ra_wt_{_suffix}", _invariant, _why, _through(_make))
        _register("write-behind", f"wb_{_suffix}", _invariant, _why, _behind(_make))
        _register("refresh-ahead+write-behind", f"ra_wb_{_suffix}", _invariant, _why, _behind(_make))
for _entry in [b for b in list(CATALOGUE.values()) if b.pattern == "write-through" and not (b.derived or b.concurrent)]:
    _suffix = _entry.name.removeprefix("wt_")
    _register("refresh-ahead+write-through", f"ra_wt_{_suffix}", _entry.invariant, _entry.why, _entry.make)
for _entry in [b for b in list(CATALOGUE.values()) if b.pattern == "cache-aside+write-through" and b.derived]:
    _suffix = _entry.name.removeprefix("aside_wt_")
    _aside = CATALOGUE[f"aside_{_suffix}"].make
    _register("cache-aside+write-behind", f"aside_wb_{_suffix}", _entry.invariant, _entry.why, _behind(_aside))


def _stale_read_through(env) -> ReadThroughCache:
    return ReadThroughCache(env.cache, env.db.get)


def _wb_reads(env) -> Adapter:
    return read_through(env)


def _wb_write_side(pattern_reads: Callable) -> dict[str, Callable]:
    """The write-behind write's own bugs, over the reads ``pattern_reads(env)`` gives."""

    def puts_db_itself(env) -> Adapter:
        inner = pattern_reads(env)

        def write(key, value):
            env.cache.set(key, value)
            env.db.put(key, value)  # write-through, called write-behind

        return Adapter(read=inner.read, write=write, cache_code=inner.cache_code)

    def deletes(env) -> Adapter:
        inner = pattern_reads(env)
        pending: dict = {}

        def write(key, value):
            pending[key] = value
            env.cache.delete(key)  # the entry goes; the value waits in a process-local buffer

        def flush():
            while pending:
                key = next(iter(pending))
                env.db.put(key, pending.pop(key))

        return Adapter(read=inner.read, write=write, flush=flush, cache_code=inner.cache_code)

    def never_flushes(env) -> Adapter:
        inner = pattern_reads(env)
        return Adapter(read=inner.read, write=lambda key, value: env.cache.set(key, value), cache_code=inner.cache_code)

    def flushes_queued_values(env) -> Adapter:
        # The entry's set and the queue's put are two steps: two writes of a key queue in the other
        # order, and the flusher (one per process) puts the older value last.
        import queue
        import threading

        dirty: queue.Queue = queue.Queue()

        def flusher():
            while True:
                key, value = dirty.get()
                env.db.put(key, value)

        threading.Thread(target=flusher, daemon=True).start()

        def write(key, value):
            env.cache.set(key, value)
            dirty.put((key, value))

        # The reads fill only where no entry is (never over a dirty one): the order is the only bug.
        if pattern_reads is cache_aside:
            return Adapter(read=aside_read(env, fill_if_absent=True), write=write)
        fills = ReadThroughCache(env.cache, env.db.get, fill_if_absent=True)
        return Adapter(read=fills.get, write=write, cache_code=ReadThroughCache)

    return {
        "puts_db_itself": puts_db_itself,
        "deletes": deletes,
        "never_flushes": never_flushes,
        "flushes_queued_values": flushes_queued_values,
    }


_WB_WRITE_BUGS = (
    ("puts_db_itself", "write-order", "calls itself write-behind but the write puts the DB itself", False),
    ("deletes", "write-updates", "the write deletes the entry and buffers the value, instead of storing it", False),
    ("never_flushes", "no-lost-write", "stores each write as the entry and never puts it into the DB", False),
    (
        "flushes_queued_values",
        "flush-order",
        "queues (key, value) after the entry's set: two writes queue in the other order and the older is put last",
        True,
    ),
)
for _pattern, _prefix, _reads in (
    ("write-behind", "wb", read_through),
    ("cache-aside+write-behind", "aside_wb", cache_aside),
    ("refresh-ahead+write-behind", "ra_wb", read_through),
):
    _makers = _wb_write_side(_reads)
    for _suffix, _invariant, _why, _concurrent in _WB_WRITE_BUGS:
        _register(_pattern, f"{_prefix}_{_suffix}", _invariant, _why, _makers[_suffix], concurrent=_concurrent)


def _blind_refresh(write: str) -> Callable:
    def make(env) -> Adapter:
        # Miss fills through a lease (the write's delete voids it); the refresh stores what it
        # loaded whatever happened since.
        import threading
        import time

        stored_at: dict = {}

        def reload(key):
            value = env.db.get(key)
            if value is not None:
                env.cache.set(key, value)
                stored_at[key] = time.time()

        def read(key):
            value, token = env.cache.lease_get(key)
            if value is not None:
                if time.time() - stored_at.get(key, 0.0) > 60:
                    stored_at[key] = time.time()
                    threading.Thread(target=reload, args=(key,)).start()
                return value
            value = env.db.get(key)
            if token is not None:
                env.cache.lease_set(key, value, token)
                stored_at[key] = time.time()
            return value

        if write == "write-behind":
            # The safe write-behind (a dirty mark until the flush lands), but the refresh looks at the
            # mark before it loads and stores without the lock: a write and its flush fit in between.
            class BlindRefresh(RefreshingWriteBehindCache):
                def refresh(self, key):
                    if self.store.get(f"dirty:{key}") is None:
                        self.refreshing._load(key)

            cache = BlindRefresh(env.cache, env.db.get, env.db.put, lock=CacheLock(env.cache, ttl=None))
            return Adapter(read=cache.get, write=cache.put, cache_code=(BlindRefresh, RefreshAheadCache))
        if write == "write-through":
            # Miss fills and writes serialised by a lock (write-through's fix); the refresh is not.
            lock = CacheLock(env.cache, ttl=None)
            cache = RefreshAheadCache(env.cache, env.db.get)
            locked = RefreshAheadCache(env.cache, env.db.get, lock=lock)
            locked.refresh = cache.refresh  # type: ignore[method-assign]
            locked.stored_at = cache.stored_at

            def put_through(key, value):
                with lock.held(key):
                    env.db.put(key, value)
                    env.cache.set(key, value)
                    cache.stored_at[key] = time.time()

            return Adapter(read=locked.get, write=put_through, cache_code=RefreshAheadCache)

        def put(key, value):
            env.db.put(key, value)
            env.cache.delete(key)

        return Adapter(read=read, write=put, cache_code=(reload, read))

    return make


for _pattern, _prefix in (
    ("refresh-ahead", "ra"),
    ("refresh-ahead+write-through", "ra_wt"),
    ("refresh-ahead+write-behind", "ra_wb"),
):
    _register(
        _pattern,
        f"{_prefix}_blind_refresh",
        "no-stale-refresh",
        "the refresh stores what it loaded even after a write replaced it (Caffeine discards such a refresh)",
        _blind_refresh(pattern_named(_pattern).writes.name),
        concurrent=True,
    )
