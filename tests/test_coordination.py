"""Coordination a team writes itself, recognised by effect (spec/contract.md): a read that finds
another operation's claim (a lease, a lock, a marker it could not take) may serve what it loads
without filling; a conditional fill refused for no reason the run shows is still owed (fail closed)."""

from __future__ import annotations

import uuid

import pytest

import cachepact

GRANT = """
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', 10000) then return {2, ARGV[1]} end
return {0, false}
"""
FILL = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', 300)
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""
INVERTED_FILL = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', 300)
  return 1
end
return 0
"""
INVALIDATE = "redis.call('DEL', KEYS[1]); redis.call('DEL', KEYS[2]); return 1"


def lua_lease(env, fill_source=FILL):
    """A team's own lease in Lua on e:{k} and lease:{k}: a reader that finds another's lease reads
    the DB and returns without filling; the write's script removes the entry and voids the lease."""
    r = env.redis
    grant, fill, invalidate = (r.register_script(s) for s in (GRANT, fill_source, INVALIDATE))

    def read(key):
        keys = [f"e:{key}", f"lease:{key}"]
        token = uuid.uuid4().hex
        status, value = grant(keys=keys, args=[token])
        if status == 1:
            return value.decode()
        value = env.db.get(key)
        if status == 2 and value is not None:
            fill(keys=keys, args=[token, value])
        return value

    def write(key, value):
        env.db.put(key, value)
        invalidate(keys=[f"e:{key}", f"lease:{key}"])

    return cachepact.Adapter(read=read, write=write)


def inverted_guard(env):
    return lua_lease(env, INVERTED_FILL)


def _marked_fill(env, take):
    """A reader that takes a marker before loading (``take(key)`` says whether it did) fills and
    releases it; one that cannot take it serves the DB's value without filling."""
    r = env.redis

    def read(key):
        raw = r.get(f"c:{key}")
        if raw is not None:
            return raw.decode()
        if not take(key):
            return env.db.get(key)
        try:
            value = env.db.get(key)
            if value is not None:
                r.set(f"c:{key}", value, ex=300)
            return value
        finally:
            r.delete(f"fill:{key}")

    def write(key, value):
        env.db.put(key, value)
        r.delete(f"c:{key}")

    return cachepact.Adapter(read=read, write=write)


def fill_marker(env):
    """SET NX on fill:{k} before loading; a reader that cannot take it serves the DB's value."""
    return _marked_fill(env, lambda key: env.redis.set(f"fill:{key}", "1", nx=True, px=5000))


@pytest.mark.parametrize("concurrency", [False, True])
def test_a_teams_own_lua_lease_passes_and_its_waiters_do_not_fill(concurrency):
    result = cachepact.check(lua_lease, "cache-aside", seed=0, concurrency=concurrency)
    assert result.passed, result.report()
    if concurrency:
        assert "lease-wait" in result.reached  # a reader found the other's lease and served the DB


@pytest.mark.parametrize("concurrency", [False, True])
def test_a_lua_fill_whose_guard_is_inverted_never_fills_and_is_who_populates(concurrency):
    result = cachepact.check(inverted_guard, "cache-aside", seed=0, concurrency=concurrency)
    assert result.finding is not None and result.finding.invariant == "who-populates", result.report()
    assert "guard the right way round" in result.finding.message


def test_a_reader_that_cannot_take_a_fill_marker_may_serve_the_db_without_filling():
    result = cachepact.check(fill_marker, "cache-aside", seed=0, concurrency=False)
    assert result.passed, result.report()
    two = cachepact.prove(fill_marker, "cache-aside", readers=2, writers=0)
    assert two.holds, two.report()


def cooling_marker(env):
    """A write leaves recent:{k} for a few seconds; a read that finds it serves the DB without
    filling (so a read that loaded before the write cannot refill what the write just removed)."""
    r = env.redis

    def read(key):
        raw = r.get(f"c:{key}")
        if raw is not None:
            return raw.decode()
        value = env.db.get(key)
        if value is not None and not r.exists(f"recent:{key}"):
            r.set(f"c:{key}", value, ex=300)
        return value

    def write(key, value):
        env.db.put(key, value)
        r.set(f"recent:{key}", "1", ex=5)
        r.delete(f"c:{key}")

    return cachepact.Adapter(read=read, write=write)


def versioned_never_fills(env):
    """A generation counter bumped by writes, and a read that reads it but never fills: a counter is
    no claim, so the missing fill is still who-populates."""
    r = env.redis

    def read(key):
        r.get(f"gen:{key}")
        raw = r.get(f"c:{key}")
        return raw.decode() if raw is not None else env.db.get(key)

    def write(key, value):
        env.db.put(key, value)
        r.incr(f"gen:{key}")
        r.delete(f"c:{key}")

    return cachepact.Adapter(read=read, write=write)


def test_a_read_that_finds_a_writes_cooling_marker_may_skip_its_fill():
    result = cachepact.check(cooling_marker, "cache-aside", seed=0, concurrency=False)
    assert result.passed, result.report()


def test_a_version_counter_is_no_claim_and_a_read_that_never_fills_is_who_populates():
    result = cachepact.check(versioned_never_fills, "cache-aside", seed=0, concurrency=False)
    assert result.finding is not None and result.finding.invariant == "who-populates", result.report()


def busy_reader_fills_anyway(env):
    """A lease holder fills through a token check; a reader that finds the lease busy fills anyway."""
    r = env.redis
    fill = r.register_script(FILL)

    def read(key):
        raw = r.get(f"c:{key}")
        if raw is not None:
            return raw.decode()
        token = uuid.uuid4().hex
        mine = r.set(f"lease:{key}", token, nx=True, px=10000)
        value = env.db.get(key)
        if value is None:
            return value
        if mine:
            fill(keys=[f"c:{key}", f"lease:{key}"], args=[token, value])
        else:
            r.set(f"c:{key}", value, ex=300)
        return value

    def write(key, value):
        env.db.put(key, value)
        r.delete(f"c:{key}", f"lease:{key}")

    return cachepact.Adapter(read=read, write=write)


def test_a_read_that_finds_the_lease_busy_and_fills_anyway_is_told_the_stale_value_it_leaves():
    result = cachepact.check(busy_reader_fills_anyway, "cache-aside", seed=0)
    assert result.finding is not None and result.finding.invariant == "coherent-at-rest", result.report()
    hint = result.finding.hint
    assert "claim on lease:k1 and filled anyway, leaving k1.v0" in hint, result.report()


def claim_holding_a_value(env, *, declared=True):
    """A fill marker, left to expire, that holds the value its taker filled (to compare later): it
    holds a value of the key, so only claim_key= says it is a claim, not a second entry a write must
    invalidate."""
    r = env.redis

    def read(key):
        raw = r.get(f"c:{key}")
        if raw is not None:
            return raw.decode()
        value = env.db.get(key)
        if value is None:
            return value
        if r.set(f"pending:{key}", value, nx=True, px=5000):  # left to expire
            r.set(f"c:{key}", value, ex=300)
        return value

    def write(key, value):
        env.db.put(key, value)
        r.delete(f"c:{key}")

    return cachepact.Adapter(read=read, write=write, claim_key=(lambda key: f"pending:{key}") if declared else None)


def test_claim_key_declares_a_claim_inference_cannot_see():
    declared = cachepact.check(claim_holding_a_value, "cache-aside", seed=0, concurrency=False)
    assert declared.passed, declared.report()

    def undeclared(env):
        return claim_holding_a_value(env, declared=False)

    guessed = cachepact.check(undeclared, "cache-aside", seed=0, concurrency=False)
    assert not guessed.passed  # the marker holds k1.v0: without the declaration it is taken for an entry


def test_claim_key_that_raises_is_a_definition_error():
    def make(env):
        adapter = claim_holding_a_value(env)
        return cachepact.Adapter(read=adapter.read, write=adapter.write, claim_key=lambda key: 1 / 0)

    with pytest.raises(cachepact.DefinitionError, match=r"Adapter.claim_key\('k1'\) raised ZeroDivisionError"):
        cachepact.check(make, "cache-aside", seed=0, concurrency=False)


def leased_retrying_and_publishing(env):
    """cachepact.leases with a reader that looks again after being told to wait, and a write that
    PUBLISHes the key so other services drop their copies."""
    from cachepact.leases import Leases

    r = env.redis
    leases = Leases(r)

    def read(key):
        for _ in range(20):
            value, token = leases.get(f"c:{key}")
            if value is not None:
                return value.decode()
            if token is not None:
                value = env.db.get(key)
                leases.set(f"c:{key}", value, token, ttl=300)
                return value
        return env.db.get(key)

    def write(key, value):
        env.db.put(key, value)
        leases.delete(f"c:{key}")
        r.publish("cache-invalidations", key)

    return cachepact.Adapter(read=read, write=write)


def test_a_leased_reader_that_waits_then_is_granted_fills_once_and_publish_is_no_step():
    result = cachepact.check(leased_retrying_and_publishing, "cache-aside", seed=0, strict=True, concurrency=False)
    assert result.passed, result.report()
    assert not result.warnings  # a channel is no key: nothing to warn about
    replayed = cachepact.check(leased_retrying_and_publishing, "cache-aside", replay="con/w:k1|w:k1,r:k1,r:k1/2100111")
    assert replayed.passed and "lease-wait" in replayed.reached, replayed.report()


def leaked_lock(env):
    """A SET NX lock around the load and fill that is never released and has no TTL: after the first
    reader, nobody ever fills again. A claim left for good excuses no read from filling."""
    r = env.redis

    def read(key):
        raw = r.get(f"c:{key}")
        if raw is not None:
            return raw.decode()
        if not r.set(f"lock:{key}", "held", nx=True):
            return env.db.get(key)
        value = env.db.get(key)
        if value is not None:
            r.set(f"c:{key}", value, ex=300)
        return value  # the bug: lock:{key} is never deleted

    def write(key, value):
        env.db.put(key, value)
        r.delete(f"c:{key}")

    return cachepact.Adapter(read=read, write=write)


def incr_lock(env):
    """A lock taken with INCR (1: taken), released with DEL; a reader that finds it held serves the DB."""
    return _marked_fill(env, lambda key: env.redis.incr(f"fill:{key}") == 1)


def watch_shared_version(env):
    """A fill in MULTI/EXEC under a WATCH of a namespace version every write bumps: refused by the
    server whenever any write came, which is a reason the run shows."""
    import redis

    r = env.redis

    def read(key):
        raw = r.get(f"c:{key}")
        if raw is not None:
            return raw.decode()
        with r.pipeline() as pipe:
            pipe.watch("ns:version")
            value = env.db.get(key)
            try:
                pipe.multi()
                if value is not None:
                    pipe.set(f"c:{key}", value, ex=300)
                pipe.execute()
            except redis.WatchError:
                pass
        return value

    def write(key, value):
        env.db.put(key, value)
        r.incr("ns:version")
        r.delete(f"c:{key}")

    return cachepact.Adapter(read=read, write=write)


def test_a_lock_left_behind_for_good_excuses_no_read_from_filling():
    result = cachepact.check(leaked_lock, "cache-aside", seed=1, concurrency=False)
    assert result.finding is not None and result.finding.invariant == "who-populates", result.report()


def test_an_incr_lock_keeps_two_concurrent_misses_apart():
    proof = cachepact.prove(incr_lock, "cache-aside", readers=2, writers=0)
    assert proof.holds, proof.report()


def test_a_fill_refused_by_a_watch_on_another_keys_version_is_explained():
    replayed = cachepact.check(watch_shared_version, "cache-aside", replay="con/|r:k1,w:k2/001")
    assert replayed.passed, replayed.report()
