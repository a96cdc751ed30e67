"""The refinement mapping for real code (spec/contract.md): which cache keys are a key's entry,
learned from every look, store and removal; tombstones; side records; bookkeeping; histories."""

from __future__ import annotations

import contextlib
import json

import pytest

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


def _versioned(env, version_of, bump, named):
    """Versioned keys: a write bumps the key's version instead of deleting; a read names its key once,
    before it loads; cache_key follows the version (reading Redis, when it lives there, is a peek)."""
    r = env.redis

    def entry_key(key):
        return named(version_of(key), key)

    def read(key):
        ck = entry_key(key)
        raw = r.get(ck)
        if raw is not None:
            return raw.decode()
        value = env.db.get(key)
        if value is not None:
            r.set(ck, value, ex=300)
        return value

    def write(key, value):
        env.db.put(key, value)
        bump(key)

    return cachepact.Adapter(read=read, write=write, cache_key=entry_key)


def _generations(env, counter, named):
    """The version is a counter in Redis, bumped with INCR."""
    r = env.redis
    return _versioned(env, lambda key: int(r.get(counter(key)) or 0), lambda key: r.incr(counter(key)), named)


def generation_in_redis(env):
    """A generation per key (gen:k1)."""
    return _generations(env, lambda key: f"gen:{key}", lambda gen, key: f"v{gen}:{key}")


def generation_in_make(env):
    """Versioned keys whose version lives in the factory's closure; cache_key follows it."""
    versions: dict[str, int] = {}

    def bump(key):
        versions[key] = versions.get(key, 0) + 1

    return _versioned(env, lambda key: versions.get(key, 0), bump, lambda version, key: f"v{version}:{key}")


@pytest.mark.parametrize("make", [generation_in_redis, generation_in_make])
@pytest.mark.parametrize("concurrency", [False, True])
def test_versioned_keys_pass_and_cache_key_may_peek_at_redis(make, concurrency):
    result = _check(make, concurrency=concurrency, instances=1)
    assert result.passed, result.report()
    steps = [s for s in result.steps if s.command is not None]
    assert not steps or all("gen:" not in str(s.command) or s.op != "-" for s in steps)


def test_cache_key_peeks_are_not_steps():
    from cachepact.conformance.drive.replay import Op
    from cachepact.conformance.drive.world import Setup, World
    from cachepact.conformance.record.servers import Servers
    from cachepact.model import CACHE_ASIDE

    servers = Servers()
    try:
        world = World(Setup(make=generation_in_redis, pattern=CACHE_ASIDE, servers=servers))
        assert world.steps == []  # the judge's first reading of cache_key, in make, recorded nothing
        del Op
    finally:
        servers.close()


def test_decode_calling_env_is_a_definition_error_and_exit_2(tmp_path, capsys):
    def make(env):
        base = prefixed(env)

        def decode(payload):
            env.redis.get("schema-version")
            return payload.decode()

        return cachepact.Adapter(read=base.read, write=base.write, decode=decode)

    with pytest.raises(cachepact.DefinitionError, match="decode called env") as e:
        _check(make)
    assert e.value.field == "decode" and "\n" not in str(e.value)
    target = tmp_path / "decodes.py"
    target.write_text(
        "import cachepact\n"
        "def make(env):\n"
        "    def read(key):\n"
        "        value = env.cache.get(key)\n"
        "        if value is None:\n"
        "            value = env.db.get(key)\n"
        "            env.cache.set(key, value)\n"
        "        return value\n"
        "    def write(key, value):\n"
        "        env.db.put(key, value)\n"
        "    return cachepact.Adapter(read=read, write=write, decode=lambda p: env.cache.get('x') or p)\n"
    )
    from cachepact.cli import main

    assert main(["check", f"{target}:make", "--pattern", "cache-aside", "--no-concurrency"]) == 2
    err = capsys.readouterr().err
    assert "decode called env" in err and "Traceback" not in err


def test_a_script_that_does_not_declare_its_keys_is_judged_by_effect_and_named_in_a_warning():
    def make(env):
        base = prefixed(env, invalidate=lambda k: env.redis.eval("return redis.call('DEL', 'user:'..ARGV[1])", 0, k))
        return base

    result = _check(make)
    assert result.passed, result.report()  # its undeclared DEL was seen: no false write-order
    warning = next(w for w in result.warnings if "EVAL" in w)
    assert "user:k1" in warning and "without naming them" in warning
    assert result.unobserved == ("EVAL",)
    strict = _check(make, strict=True)
    assert not strict.passed and "Strict:" in strict.report()


def test_two_concurrent_misses_on_prefixed_keys_without_cache_key_are_no_finding():
    replayed = cachepact.check(prefixed, "cache-aside", instances=1, replay="con/|r:k1,r:k1/0010")
    assert replayed.passed, replayed.report()
    proof = cachepact.prove(prefixed, "cache-aside", readers=2, writers=0)
    assert proof.holds, proof.report()


def test_a_command_whose_keys_cannot_be_named_is_warned_and_does_not_stall_a_concurrent_check():
    def make(env):
        base = prefixed(env)

        def read(key):
            env.redis.sort("stats")  # SORT may STORE into a key: the kit cannot name its keys
            return base.read(key)

        return cachepact.Adapter(read=read, write=base.write)

    result = _check(make, concurrency=True, max_examples=20)
    assert result.finding is None or result.finding.invariant == "coherent-at-rest", result.report()
    assert any("SORT" in w for w in result.warnings) and "SORT" in result.unobserved


def test_a_version_kept_in_each_process_is_judged_with_every_instances_cache_key():
    one = _check(generation_in_make, instances=1, concurrency=True)
    assert one.passed, one.report()
    two = _check(generation_in_make, instances=2, concurrency=False)
    assert two.finding is not None and two.finding.invariant == "write-order", two.report()
    assert "cache_key still names" in two.finding.message
    replayed = cachepact.check(generation_in_make, "cache-aside", replay="seq/w:k1,r:k1@2")
    assert replayed.passed, replayed.report()  # a fresh fill under the other instance's version is a fill


def test_nothing_under_a_key_known_only_by_its_name_does_not_undo_a_hit():
    def make(env):
        base = prefixed(env)

        def read(key):
            raw = env.redis.get(f"user:{key}")
            if env.redis.get(f"disabled:{key}") is not None:  # a kill switch nobody sets
                return env.db.get(key)
            return raw.decode() if raw is not None else base.read(key)

        return cachepact.Adapter(read=read, write=base.write)

    result = _check(make)
    assert result.passed, result.report()


def namespace_version(env):
    """One generation counter for every key of a namespace (INCR ns:users orphans them all at once):
    a fill of an orphaned key is harmless."""
    return _generations(env, lambda key: "ns:users", lambda gen, key: f"users:v{gen}:{key}")


def test_a_namespace_version_bumped_by_another_keys_write_makes_a_fill_harmless():
    result = _check(namespace_version, concurrency=True, max_examples=60)
    assert result.passed, result.report()
    assert "invalidate" in result.reached  # a version that moved away from an entry invalidated it


def watch_after_get(env):
    """GET, then on a miss WATCH the key, load, and fill in MULTI/EXEC (refused if it changed)."""
    import redis

    r = env.redis

    def read(key):
        raw = r.get(f"item:{key}")
        if raw is not None:
            return raw.decode()
        with r.pipeline() as pipe:
            try:
                pipe.watch(f"item:{key}")  # WATCH answers OK: the read sees no value in it
                value = env.db.get(key)
                pipe.multi()
                if value is not None:
                    pipe.set(f"item:{key}", value, ex=300)
                pipe.execute()
            except redis.WatchError:
                pass
        return value

    def write(key, value):
        env.db.put(key, value)
        r.delete(f"item:{key}")

    return cachepact.Adapter(read=read, write=write)


def test_a_watch_is_no_lookup_its_reply_holds_no_value():
    # Every schedule of two reads: one fills between the other's GET and its WATCH, which finds the
    # entry but answers OK; the read that loads then is no hit-after-fill.
    proof = cachepact.prove(watch_after_get, "cache-aside", readers=2, writers=0)
    assert proof.holds, proof.report()


def test_a_blocking_command_is_refused_in_one_line_not_a_hang(tmp_path, capsys):
    def make(env):
        base = prefixed(env)

        def read(key):
            with contextlib.suppress(Exception):  # swallowed: the check stops all the same
                env.redis.blpop([f"done:{key}"], timeout=1)
            return base.read(key)

        return cachepact.Adapter(read=read, write=base.write)

    with pytest.raises(cachepact.UsageError, match="BLPOP waits on the server"):
        _check(make, concurrency=True)


def test_cache_key_may_only_read_and_decode_calling_env_stops_the_check_even_if_caught():
    def writes_in_cache_key(env):
        base = generation_in_redis(env)

        def entry_key(key):
            env.redis.setnx(f"gen:{key}", 0)  # lazy set-up, in the wrong place
            return f"v{int(env.redis.get(f'gen:{key}') or 0)}:{key}"

        return cachepact.Adapter(read=base.read, write=base.write, cache_key=entry_key)

    with pytest.raises(cachepact.DefinitionError, match="cache_key sent SETNX"):
        _check(writes_in_cache_key)

    def catches(env):
        base = prefixed(env)

        def decode(payload):
            with contextlib.suppress(Exception):
                env.redis.get("schema")
            return payload.decode()

        return cachepact.Adapter(read=base.read, write=base.write, decode=decode)

    with pytest.raises(cachepact.DefinitionError, match="decode called env"):
        _check(catches)
