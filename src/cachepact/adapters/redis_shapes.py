"""A catalogue of cache shapes real application code writes over redis-py, with the verdict each should get.

Each function is a factory ``make(env) -> cachepact.Adapter`` written the way an application team
writes its cache, against the public contract only (``spec/contract.md``): ``env.redis`` is a
genuine redis-py client, ``env.db`` the system of record. The shapes are the ones teams reach for
beyond the textbook ``GET``/``SET``/``DEL``: prefixed keys, batch helpers used for one key, a hash
per entity, pipelines with and without ``MULTI``, ``KEEPTTL`` and ``GETDEL``, compressed payloads,
versioned keys, tombstones, double deletes, an outbox, home-made Lua leases, undeclared script
keys, redis-py's ``Lock``, write-through, a fill marker, and three mistakes teams make.

Each docstring states the verdict the contract predicts, per mode: *sequential* (one operation at a
time, one app instance), *one process* (concurrent, ``--instances 1``) and *concurrent* (the
default: two app instances). "Racy" means the textbook stale-set race the pattern itself has: the
shape passes sequentially and fails ``coherent-at-rest`` once a read and a write are in flight
together. ``tests/test_redis_shapes.py`` pins every verdict in a table.

Check one from the command line::

    cachepact check src/cachepact/adapters/redis_shapes.py:prefixed --pattern cache-aside
"""

from __future__ import annotations

import json
import time
import uuid
import zlib

import cachepact
from cachepact.leases import Leases

TTL = 300  # seconds, as production entries carry one
LEASE_MS = 10_000  # how long a lease or fill marker lives if its holder dies


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode()


# -- 1. the textbook, with prefixed keys ---------------------------------------------------------------


def prefixed(env) -> cachepact.Adapter:
    """GET / SETEX / DEL on ``user:{key}``, no ``cache_key=`` (the kit learns the prefix from the fills).

    Expected: sequential pass; two reads missing together are no finding (``prove`` with two readers
    holds); one process and concurrent: ``coherent-at-rest`` (the stale-set race).
    """
    r = env.redis

    def read(key):
        value = _text(r.get(f"user:{key}"))
        if value is None:
            value = env.db.get(key)
            if value is not None:
                r.setex(f"user:{key}", TTL, value)
        return value

    def write(key, value):
        env.db.put(key, value)
        r.delete(f"user:{key}")

    return cachepact.Adapter(read=read, write=write)


# -- 2. batch helpers used for one key -----------------------------------------------------------------


def _batch_helpers(r, prefix):
    """The module of helpers a codebase grows: everything takes lists, single keys go through too."""

    def get_many(keys):
        return [_text(raw) for raw in r.mget([f"{prefix}{k}" for k in keys])]

    def delete_many(keys):
        r.delete(*[f"{prefix}{k}" for k in keys])

    return get_many, delete_many


def batch_mset(env) -> cachepact.Adapter:
    """Reads via ``MGET [key]``, fills via ``MSET {key: value}`` (no TTL), invalidates via ``DEL *keys``.

    Expected: sequential pass; concurrent ``coherent-at-rest`` (racy).
    """
    r = env.redis
    get_many, delete_many = _batch_helpers(r, "user:")

    def set_many(mapping):
        r.mset({f"user:{k}": v for k, v in mapping.items()})

    def read(key):
        [value] = get_many([key])
        if value is None:
            value = env.db.get(key)
            if value is not None:
                set_many({key: value})
        return value

    def write(key, value):
        env.db.put(key, value)
        delete_many([key])

    return cachepact.Adapter(read=read, write=write)


def batch_pipeline(env) -> cachepact.Adapter:
    """Reads via ``MGET [key]``, fills via a pipeline (``MULTI``) of ``SET`` + ``EXPIRE`` per key.

    Expected: sequential pass; concurrent ``coherent-at-rest`` (racy).
    """
    r = env.redis
    get_many, delete_many = _batch_helpers(r, "user:")

    def set_many(mapping, ttl=TTL):
        pipe = r.pipeline()
        for k, v in mapping.items():
            pipe.set(f"user:{k}", v)
            pipe.expire(f"user:{k}", ttl)
        pipe.execute()

    def read(key):
        [value] = get_many([key])
        if value is None:
            value = env.db.get(key)
            if value is not None:
                set_many({key: value})
        return value

    def write(key, value):
        env.db.put(key, value)
        delete_many([key])

    return cachepact.Adapter(read=read, write=write)


# -- 3, 4. a hash per entity ---------------------------------------------------------------------------


def _hash_per_entity(env, *, transaction: bool) -> cachepact.Adapter:
    r = env.redis

    def read(key):
        value = _text(r.hget(f"entity:{key}", "v"))
        if value is None:
            value = env.db.get(key)
            if value is not None:
                pipe = r.pipeline(transaction=transaction)
                pipe.hset(f"entity:{key}", "v", value)
                pipe.expire(f"entity:{key}", TTL)
                pipe.execute()
        return value

    def write(key, value):
        env.db.put(key, value)
        r.delete(f"entity:{key}")  # the whole hash: every field the run named

    return cachepact.Adapter(read=read, write=write)


def hash_pipeline_tx(env) -> cachepact.Adapter:
    """A hash per entity: ``HSET entity:{key} v value`` + ``EXPIRE`` in one ``MULTI``/``EXEC``; ``HGET``; ``DEL``.

    Expected: sequential pass; concurrent ``coherent-at-rest`` (racy).
    """
    return _hash_per_entity(env, transaction=True)


def hash_pipeline_no_tx(env) -> cachepact.Adapter:
    """The same hash per entity, filled by a non-transactional pipeline (``transaction=False``).

    A pipeline is one step either way (the contract), so the verdict is the same: sequential pass;
    concurrent ``coherent-at-rest`` (racy).
    """
    return _hash_per_entity(env, transaction=False)


# -- 5. KEEPTTL and GETDEL -----------------------------------------------------------------------------


def keepttl_getdel(env) -> cachepact.Adapter:
    """Fill with ``SET key value KEEPTTL`` then ``EXPIRE key 300 NX`` (keep a TTL an entry already has);
    invalidate with ``GETDEL`` (the old value is logged).

    Expected: sequential pass; concurrent ``coherent-at-rest`` (racy).
    """
    r = env.redis
    evicted = []  # what the write's GETDEL returned, as code that logs it keeps

    def read(key):
        value = _text(r.get(f"user:{key}"))
        if value is None:
            value = env.db.get(key)
            if value is not None:
                r.set(f"user:{key}", value, keepttl=True)
                r.expire(f"user:{key}", TTL, nx=True)
        return value

    def write(key, value):
        env.db.put(key, value)
        evicted.append(r.getdel(f"user:{key}"))

    return cachepact.Adapter(read=read, write=write)


# -- 6. compressed payloads ----------------------------------------------------------------------------


def compressed(env) -> cachepact.Adapter:
    """``zlib.compress`` of a JSON wrapper ``{"v": value, "at": time}`` under ``z:{key}``, ``decode=`` decompresses.

    Expected: sequential pass; concurrent ``coherent-at-rest`` (racy).
    """
    r = env.redis

    def pack(value):
        return zlib.compress(json.dumps({"v": value, "at": time.time()}).encode())

    def unpack(payload):
        return json.loads(zlib.decompress(payload))["v"]

    def read(key):
        raw = r.get(f"z:{key}")
        if raw is not None:
            return unpack(raw)
        value = env.db.get(key)
        if value is not None:
            r.set(f"z:{key}", pack(value), ex=TTL)
        return value

    def write(key, value):
        env.db.put(key, value)
        r.delete(f"z:{key}")

    return cachepact.Adapter(read=read, write=write, decode=unpack)


# -- 7, 8. versioned keys ------------------------------------------------------------------------------


def versioned_in_redis(env) -> cachepact.Adapter:
    """A generation counter in Redis: the write does ``INCR gen:{key}``; the read uses ``v{gen}:{key}``.

    No delete at all: a write moves the key's entry to a new cache key, and whatever a racing read
    fills under the old generation is unreachable. ``cache_key=`` reads the counter from
    ``env.redis`` (the design allows it: those are the kit's peeks).

    Expected: pass in every mode (the generation closes the stale-set race, across processes too,
    since the counter is shared).
    """
    r = env.redis

    def entry_key(key):
        return f"v{int(r.get(f'gen:{key}') or 0)}:{key}"

    def read(key):
        cache_key = entry_key(key)
        value = _text(r.get(cache_key))
        if value is None:
            value = env.db.get(key)
            if value is not None:
                r.set(cache_key, value, ex=TTL)
        return value

    def write(key, value):
        env.db.put(key, value)
        r.incr(f"gen:{key}")

    return cachepact.Adapter(
        read=read,
        write=write,
        cache_key=lambda key: f"v{int(env.redis.get(f'gen:{key}') or 0)}:{key}",
    )


def versioned_in_process(env) -> cachepact.Adapter:
    """Versioned keys, the version kept in a dict in ``make``'s closure; ``cache_key=`` follows the dict.

    Within one process the version closes the race as the Redis counter does; a second process
    keeps its own dict, never sees the bump and keeps serving (and judging) its old cache key.

    Expected: sequential pass; one process pass; concurrent (two instances) ``coherent-at-rest``: a
    write on one instance leaves the other's entry ``v0:k1`` holding the old value.
    """
    r = env.redis
    versions: dict[str, int] = {}

    def entry_key(key):
        return f"v{versions.get(key, 0)}:{key}"

    def read(key):
        cache_key = entry_key(key)
        value = _text(r.get(cache_key))
        if value is None:
            value = env.db.get(key)
            if value is not None:
                r.set(cache_key, value, ex=TTL)
        return value

    def write(key, value):
        env.db.put(key, value)
        versions[key] = versions.get(key, 0) + 1

    return cachepact.Adapter(read=read, write=write, cache_key=entry_key)


# -- 9. tombstones -------------------------------------------------------------------------------------

TOMBSTONE = b"__invalidated__"


def tombstones(env) -> cachepact.Adapter:
    """The write stores ``__invalidated__`` instead of deleting; the read takes it for a miss;
    ``decode`` says it is no entry (``cachepact.NO_ENTRY``, being built: the design's refinement mapping).

    Expected (once ``NO_ENTRY`` exists): sequential pass; concurrent ``coherent-at-rest`` (racy: a
    stale fill overwrites the tombstone).
    """
    r = env.redis

    def read(key):
        raw = r.get(f"user:{key}")
        if raw is not None and raw != TOMBSTONE:
            return raw.decode()
        value = env.db.get(key)
        if value is not None:
            r.set(f"user:{key}", value, ex=TTL)
        return value

    def write(key, value):
        env.db.put(key, value)
        r.set(f"user:{key}", TOMBSTONE, ex=TTL)

    return cachepact.Adapter(
        read=read,
        write=write,
        decode=lambda p: cachepact.NO_ENTRY if p == TOMBSTONE else p.decode(),
    )


# -- 10. double delete ---------------------------------------------------------------------------------


def double_delete(env) -> cachepact.Adapter:
    """The write does ``DEL``, ``db.put``, ``DEL`` (the "double delete", without the delay).

    The first delete removes nothing a reader could not have had evicted anyway; the second is the
    pattern's invalidation. Expected: sequential pass; concurrent ``coherent-at-rest`` (a reader that
    loaded before the put still fills after the second delete: double delete narrows nothing here).
    """
    r = env.redis

    def read(key):
        value = _text(r.get(f"user:{key}"))
        if value is None:
            value = env.db.get(key)
            if value is not None:
                r.set(f"user:{key}", value, ex=TTL)
        return value

    def write(key, value):
        r.delete(f"user:{key}")
        env.db.put(key, value)
        r.delete(f"user:{key}")

    return cachepact.Adapter(read=read, write=write)


# -- 11. outbox / CDC ----------------------------------------------------------------------------------


def outbox(env) -> cachepact.Adapter:
    """The write does ``db.put``, ``DEL user:{key}`` and ``RPUSH outbox {"key": key, "value": value}``
    (the change event a CDC consumer reads). The outbox is a list, no cache entry.

    Expected: sequential pass (the list holding the written value is not the key's entry: the write
    did not update the cache); concurrent ``coherent-at-rest`` (racy).
    """
    r = env.redis

    def read(key):
        value = _text(r.get(f"user:{key}"))
        if value is None:
            value = env.db.get(key)
            if value is not None:
                r.set(f"user:{key}", value, ex=TTL)
        return value

    def write(key, value):
        env.db.put(key, value)
        r.delete(f"user:{key}")
        r.rpush("outbox", json.dumps({"key": key, "value": value}))

    return cachepact.Adapter(read=read, write=write)


# -- 12, 13. a team's own Lua lease --------------------------------------------------------------------

_GRANT = """
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {0}
"""

_FILL = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

# The bug: the guard asks whether the entry exists, where it meant the lease. On a miss it never does.
_FILL_INVERTED = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[2]) == ARGV[1] then return redis.call('DEL', KEYS[2]) end
return 0
"""

_INVALIDATE = "return redis.call('DEL', KEYS[1], KEYS[2])"


def _lua_lease(env, fill_script: str) -> cachepact.Adapter:
    r = env.redis
    grant, fill, release, invalidate = (r.register_script(s) for s in (_GRANT, fill_script, _RELEASE, _INVALIDATE))

    def read(key):
        keys = [f"e:{key}", f"lease:{key}"]
        token = uuid.uuid4().hex
        status, *rest = grant(keys=keys, args=[token, LEASE_MS])
        if status == 1:
            return rest[0].decode()
        value = env.db.get(key)
        if status == 2:  # the lease is mine: fill (or give it back when there is nothing to cache)
            if value is None:
                release(keys=keys, args=[token])
            else:
                fill(keys=keys, args=[token, value, TTL])
        # status 0: someone else holds the lease; serve the DB's value without filling
        return value

    def write(key, value):
        env.db.put(key, value)
        invalidate(keys=[f"e:{key}", f"lease:{key}"])

    return cachepact.Adapter(read=read, write=write)


def lua_lease(env) -> cachepact.Adapter:
    """A team's own lease in Lua on ``e:{k}`` and ``lease:{k}``: grant (the entry if there is one, else
    ``SET lease NX PX`` with a token), fill (store only while the lease holds my token, then drop the
    lease), invalidate (``DEL`` entry and lease). A reader that finds another's lease reads the DB and
    returns without filling.

    Expected: pass in every mode (the write's ``DEL`` of the lease refuses the racing reader's fill).
    """
    return _lua_lease(env, _FILL)


def lua_lease_inverted_guard(env) -> cachepact.Adapter:
    """The same Lua lease with the fill's guard inverted (``if EXISTS entry then SET``): it never fills.

    Expected: ``who-populates`` in every mode (a fill refused with no write to void the lease).
    """
    return _lua_lease(env, _FILL_INVERTED)


# -- 12b. the same lease over one hash of every entity, written only inside the scripts ----------------

_GRANT_HASH = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then return {1, v} end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return {2} end
return {0}
"""

_FILL_HASH = """
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

# The mistake: the fill stores whether or not the lease is still this reader's.
_FILL_HASH_UNGUARDED = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""

_INVALIDATE_HASH = "redis.call('HDEL', KEYS[1], ARGV[1]) return redis.call('DEL', KEYS[2])"


def _lua_lease_hash(env, fill_script: str) -> cachepact.Adapter:
    r = env.redis
    grant, fill, invalidate = (r.register_script(s) for s in (_GRANT_HASH, fill_script, _INVALIDATE_HASH))

    def read(key):
        keys = ["users", f"lease:{key}"]  # one hash for every user: the field is the key
        token = uuid.uuid4().hex
        status, *rest = grant(keys=keys, args=[key, token, LEASE_MS])
        if status == 1:
            return json.loads(rest[0])
        value = env.db.get(key)
        if status == 2:
            if value is None:
                r.delete(f"lease:{key}")  # nothing to cache: give the lease back
            else:
                fill(keys=keys, args=[key, token, json.dumps(value), TTL])
        return value

    def write(key, value):
        env.db.put(key, value)
        invalidate(keys=["users", f"lease:{key}"], args=[key])

    return cachepact.Adapter(read=read, write=write)


def lua_lease_hash(env) -> cachepact.Adapter:
    """The Lua lease over one hash ``users`` whose fields are the entries (``HGET``/``HSET``/``HDEL``
    only inside the scripts, the kit never sees a field named by a command of its own).

    Expected: pass in every mode (each field is an entry, as when ``HSET`` is sent itself).
    """
    return _lua_lease_hash(env, _FILL_HASH)


def lua_lease_hash_unguarded(env) -> cachepact.Adapter:
    """The same with a fill that does not ask whether the lease is still the reader's.

    Expected: the stale-set race (``coherent-at-rest``) with operations in flight together.
    """
    return _lua_lease_hash(env, _FILL_HASH_UNGUARDED)


# -- 12c. an entry built under a staging key, then renamed into place ------------------------------------


def _staged(env, *, watched: bool) -> cachepact.Adapter:
    import redis

    r = env.redis

    def read(key):
        with r.pipeline() as p:
            if watched:
                p.watch(f"ver:{key}")  # a write bumps it: the publish below is refused after one
            raw = (p if watched else r).get(f"catalog:{key}")  # a WATCHing pipeline runs commands at once
            if raw is not None:
                p.reset()
                return raw.decode()
            value = env.db.get(key)
            if value is None:
                p.reset()
                return None
            staging = f"catalog:tmp:{uuid.uuid4().hex}"  # built aside, published in one step
            r.set(staging, value, ex=TTL)
            try:
                p.multi()
                p.rename(staging, f"catalog:{key}")
                p.expire(f"catalog:{key}", TTL)
                p.execute()
            except redis.WatchError:
                pass  # a write came: leave the staging key to expire, serve what was read
            return value

    def write(key, value):
        env.db.put(key, value)
        with r.pipeline() as p:
            p.incr(f"ver:{key}")
            p.delete(f"catalog:{key}")
            p.execute()

    return cachepact.Adapter(read=read, write=write)


def staged_rename(env) -> cachepact.Adapter:
    """A fill built under a random staging key, then ``RENAME``d onto ``catalog:{k}`` in a transaction.

    Expected: the stale-set race concurrently (the rename publishes what was loaded before a write);
    the staging key is no entry (no read looks there), so the culprit is the rename, not the write.
    """
    return _staged(env, watched=False)


def staged_rename_watched(env) -> cachepact.Adapter:
    """The same, with ``WATCH`` on a version the write bumps: the publish is refused after a write.

    Expected: pass in every mode (a staging key an aborted publish leaves behind is no stale entry).
    """
    return _staged(env, watched=True)


# -- 14. a script with undeclared keys -----------------------------------------------------------------


def undeclared_eval(env) -> cachepact.Adapter:
    """Invalidation by ``EVAL "return redis.call('DEL', 'u:'..ARGV[1])" 0 key``: the key is not in ``KEYS``.

    The kit cannot name what the script touched. Expected: a ``Warning:`` naming the command (not a
    false ``write-order``, nor a false staleness from a delete it did not see): sequential pass with
    that warning; concurrent ``coherent-at-rest`` (racy).
    """
    r = env.redis

    def read(key):
        value = _text(r.get(f"u:{key}"))
        if value is None:
            value = env.db.get(key)
            if value is not None:
                r.set(f"u:{key}", value, ex=TTL)
        return value

    def write(key, value):
        env.db.put(key, value)
        r.eval("return redis.call('DEL', 'u:'..ARGV[1])", 0, key)

    return cachepact.Adapter(read=read, write=write)


# -- 15. redis-py's Lock -------------------------------------------------------------------------------


def redis_lock(env) -> cachepact.Adapter:
    """A redis-py ``Lock`` on ``lock:user:{key}``, held around load + fill in the read (after a missed
    lookup) and around put + delete in the write. The lock lives in Redis, so it holds across processes.

    Expected: pass one at a time (a fill and a write never overlap); in flight, adapter-error: a
    reader paused past the lock's 10 s timeout loses it (the clock moves inside races), and its
    release raises ``LockNotOwnedError``.
    """
    r = env.redis

    def lock(key):
        return r.lock(f"lock:user:{key}", timeout=10, sleep=0.05)

    def read(key):
        value = _text(r.get(f"user:{key}"))
        if value is not None:
            return value
        with lock(key):
            value = env.db.get(key)
            if value is not None:
                r.set(f"user:{key}", value, ex=TTL)
        return value

    def write(key, value):
        with lock(key):
            env.db.put(key, value)
            r.delete(f"user:{key}")

    return cachepact.Adapter(read=read, write=write)


# -- 16. write-through ---------------------------------------------------------------------------------


class HashUserCache:
    """The team's cache layer for write-through: one hash ``users``, a field per key; it loads and stores."""

    def __init__(self, r, db):
        self.r, self.db = r, db

    def get(self, key):
        raw = self.r.hget("users", key)
        if raw is not None:
            return raw.decode()
        value = self.db.get(key)
        if value is not None:
            self.r.hset("users", key, value)
        return value

    def put(self, key, value):
        self.db.put(key, value)
        self.r.hset("users", key, value)


def write_through_hash(env) -> cachepact.Adapter:
    """Write-through over a hash (``HashUserCache``, named in ``cache_code``): ``HGET``/``HSET users key``.

    Expected (pattern write-through): sequential pass; concurrent ``coherent-at-rest`` (crossed writes,
    the race write-through has without its per-key lock).
    """
    cache = HashUserCache(env.redis, env.db)
    return cachepact.Adapter(read=cache.get, write=cache.put, cache_code=(HashUserCache,))


class StringUserCache:
    """The team's cache layer for write-through on strings: ``SET wt:{key} value EX 300`` after ``db.put``."""

    def __init__(self, r, db):
        self.r, self.db = r, db

    def get(self, key):
        raw = self.r.get(f"wt:{key}")
        if raw is not None:
            return raw.decode()
        value = self.db.get(key)
        if value is not None:
            self.r.set(f"wt:{key}", value, ex=TTL)
        return value

    def put(self, key, value):
        self.db.put(key, value)
        self.r.set(f"wt:{key}", value, ex=TTL)


def write_through_set(env) -> cachepact.Adapter:
    """Write-through with a ``SET`` after ``db.put`` (``StringUserCache``, named in ``cache_code``).

    Expected (pattern write-through): sequential pass; concurrent ``coherent-at-rest`` (racy).
    """
    cache = StringUserCache(env.redis, env.db)
    return cachepact.Adapter(read=cache.get, write=cache.put, cache_code=(StringUserCache,))


# -- 17. a fill marker ---------------------------------------------------------------------------------


def fill_marker(env) -> cachepact.Adapter:
    """``SET fill:{key} token NX PX`` as a fill marker: the reader that takes it loads and fills; one that
    cannot reads the DB and returns without filling. The write does not touch the marker.

    A marker only keeps two readers from loading together; the fill is unconditional, so a write
    between the marker holder's load and its fill still loses. Expected: sequential pass; concurrent
    ``coherent-at-rest`` (racy; the reader that found the marker and did not fill is no finding).
    """
    r = env.redis

    def read(key):
        value = _text(r.get(f"user:{key}"))
        if value is not None:
            return value
        if not r.set(f"fill:{key}", uuid.uuid4().hex, nx=True, px=LEASE_MS):
            return env.db.get(key)  # someone else is filling
        try:
            value = env.db.get(key)
            if value is not None:
                r.set(f"user:{key}", value, ex=TTL)
            return value
        finally:
            r.delete(f"fill:{key}")

    def write(key, value):
        env.db.put(key, value)
        r.delete(f"user:{key}")

    return cachepact.Adapter(read=read, write=write)


# -- broken: what teams write by mistake ---------------------------------------------------------------


def broken_recheck_before_fill(env) -> cachepact.Adapter:
    """After loading, look the entry up again and fill only if it is still missing ("don't clobber a
    fresher entry"). The second lookup only delays the fill past the write's delete, which it then
    sees as a miss.

    Expected: sequential pass; concurrent ``coherent-at-rest`` (the stale-set race, not closed).
    """
    r = env.redis

    def read(key):
        value = _text(r.get(f"user:{key}"))
        if value is None:
            value = env.db.get(key)
            if value is not None and r.get(f"user:{key}") is None:
                r.set(f"user:{key}", value, ex=TTL)
        return value

    def write(key, value):
        env.db.put(key, value)
        r.delete(f"user:{key}")

    return cachepact.Adapter(read=read, write=write)


def broken_update_in_write(env) -> cachepact.Adapter:
    """Update instead of invalidate: the write ``SET``s the new value under ``user:{key}``.

    Expected (cache-aside): ``invalidate-not-update`` sequentially.
    """
    r = env.redis

    def read(key):
        value = _text(r.get(f"user:{key}"))
        if value is None:
            value = env.db.get(key)
            if value is not None:
                r.set(f"user:{key}", value, ex=TTL)
        return value

    def write(key, value):
        env.db.put(key, value)
        r.set(f"user:{key}", value, ex=TTL)

    return cachepact.Adapter(read=read, write=write)


def broken_invalidate_before_put(env) -> cachepact.Adapter:
    """Leased reads (``cachepact.leases``), but the write invalidates *before* ``db.put``.

    One at a time this is coherent (the entry is gone, the DB holds the new value). In flight, a reader
    takes a fresh lease after the delete, loads the old value and fills it before the put: the lease
    cannot help, since nothing voids it after the put. Expected: sequential pass; concurrent
    ``coherent-at-rest``, where the correctly ordered leased adapter passes.
    """
    leases = Leases(env.redis)

    def read(key):
        raw, token = leases.get(key)
        if raw is not None:
            return raw.decode()
        value = env.db.get(key)
        if token is not None:
            leases.set(key, value, token, ttl=TTL)  # None just releases the lease
        return value

    def write(key, value):
        leases.delete(key)
        env.db.put(key, value)

    return cachepact.Adapter(read=read, write=write)
