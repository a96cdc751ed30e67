"""The refinement mapping for real code (spec/contract.md): which cache keys are a key's entry,
learned from every look, store and removal; tombstones; side records; bookkeeping; histories."""

from __future__ import annotations

import json

import cachepact


def _check(make, **options):
    options.setdefault("seed", 0)
    options.setdefault("concurrency", False)
    return cachepact.check(make, "cache-aside", **options)


def prefixed(env, *, write_extra=None, decode=None, invalidate=None):
    r = env.redis

    def read(key):
        raw = r.get(f"user:{key}")
        if raw is not None and raw != b"__invalidated__":
            return raw.decode()
        value = env.db.get(key)
        if value is not None:
            r.set(f"user:{key}", value, ex=300)
        return value

    def write(key, value):
        env.db.put(key, value)
        (invalidate or (lambda k: r.delete(f"user:{k}")))(key)
        if write_extra is not None:
            write_extra(key, value)

    return cachepact.Adapter(read=read, write=write, decode=decode)


def test_a_tombstone_decoded_as_no_entry_invalidates():
    def make(env):
        return prefixed(
            env,
            invalidate=lambda k: env.redis.set(f"user:{k}", "__invalidated__", ex=300),
            decode=lambda p: cachepact.NO_ENTRY if p == b"__invalidated__" else p.decode(),
        )

    result = _check(make)
    assert result.passed, result.report()
    assert "invalidate" in result.reached  # the tombstone is the write's invalidation


def test_without_no_entry_a_tombstone_is_an_entry_that_stands_for_nothing_the_db_holds():
    def make(env):
        return prefixed(
            env,
            invalidate=lambda k: env.redis.set(f"user:{k}", "__invalidated__", ex=300),
            decode=lambda p: p.decode(),
        )

    result = _check(make)
    assert not result.passed


def test_an_outbox_record_holding_the_written_value_is_a_side_record_not_the_entry():
    def make(env):
        def outbox(key, value):
            env.redis.rpush("outbox", json.dumps({"key": key, "value": value}))

        return prefixed(env, write_extra=outbox)

    result = _check(make)
    assert result.passed, result.report()


def test_a_hash_filled_in_a_pipeline_with_expire_is_judged_per_field():
    def make(env):
        r = env.redis

        def read(key):
            raw = r.hget("products", key)
            if raw is not None:
                return raw.decode()
            value = env.db.get(key)
            if value is not None:
                with r.pipeline() as p:
                    p.hset("products", key, value)
                    p.expire("products", 300)
                    p.execute()
            return value

        def write(key, value):
            env.db.put(key, value)
            r.hdel("products", key)

        return cachepact.Adapter(read=read, write=write)

    result = _check(make)
    assert result.passed, result.report()


def test_a_key_named_by_a_look_is_the_entry_until_it_holds_bookkeeping():
    from cachepact.conformance.judge.judge import _named_key

    assert _named_key("user:k1") == 0 and _named_key(b"app:1:k2") == 1
    assert _named_key("k1-and-k2") is None and _named_key("k10") is None and _named_key("kk1") is None

    def make(env):
        r = env.redis
        base = prefixed(env)

        def read(key):
            r.get(f"lock:{key}")  # looked up first, before any store names it: learned by its name
            token = "3f2a9c1e7b5d4a60"
            if r.set(f"lock:{key}", token, nx=True, px=1000):  # ... and found to hold a token
                try:
                    return base.read(key)
                finally:
                    r.delete(f"lock:{key}")
            return base.read(key)

        return cachepact.Adapter(read=read, write=base.write)

    result = _check(make)
    assert result.passed, result.report()
    assert "lock:k1" not in str(result.final_state)
