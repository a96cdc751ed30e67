"""The kit judges what real caches do: serialised payloads, their own key names, evictions, TTLs,
negative caching, skipped calls. Correct ones pass one operation at a time and show the seed's race
under interleaving; broken counterparts fail with the invariant they break.

Seeds: 3 in the default profile, 20 under HYPOTHESIS_PROFILE=nightly.
"""

from __future__ import annotations

import json
import os

import pytest

import cachepact
from cachepact.adapters.broken import CATALOGUE
from cachepact.adapters.idioms import IDIOMS

SEEDS = range(20 if os.environ.get("HYPOTHESIS_PROFILE") == "nightly" else 3)
ENTRIES = list(IDIOMS.values())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_each_idiom_passes_one_operation_at_a_time(entry, seed):
    result = cachepact.check(entry.make, entry.pattern, seed=seed, concurrency=False)
    assert result.passed, result.report()
    assert all(status == "pass" for _, status in result.statuses), result.statuses


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_each_racy_idiom_shows_the_stale_set_race_under_interleaving(entry, seed):
    result = cachepact.check(entry.make, entry.pattern, seed=seed)
    if entry.racy:
        assert result.finding is not None and result.finding.invariant == "coherent-at-rest", result.report()
    else:
        assert result.passed, result.report()


@pytest.mark.parametrize(
    ("name", "situation"),
    [
        ("aside_lru_capacity_one", "eviction"),
        ("aside_ttl_entries", "expiry"),
        ("through_soft_expiry", "expiry"),
        ("aside_negative_caching", "negative-fill"),
        ("aside_negative_json", "negative-fill"),
    ],
)
def test_evictions_expiry_and_negative_entries_are_reached_situations(name, situation):
    result = cachepact.check(IDIOMS[name].make, IDIOMS[name].pattern, seed=0, concurrency=False)
    assert situation in result.reached


def test_a_prefixed_key_no_longer_hides_the_race():
    # The 5-step stale set, replayed: the stale entry sits under user:k1, and the kit says so.
    result = cachepact.check(IDIOMS["aside_prefixed_keys"].make, "cache-aside", replay="con/|r:k1,w:k1/00110")
    assert result.finding.invariant == "coherent-at-rest"
    assert "the cache holds user:k1 (for k1) = k1.v0 but the DB holds k1.v1" in result.finding.message


def test_a_hashed_key_is_reported_with_its_raw_entry():
    result = cachepact.check(IDIOMS["aside_hashed_keys"].make, "cache-aside", replay="con/|r:k1,w:k1/00110")
    [row] = [r for r in result.final_state if r[0] == "k1"]
    assert row[2].endswith("=k1.v0") and "'k1.v0'" in row[3]


def test_the_report_never_suggests_storing_none_for_a_key_the_db_lacks():
    # The who-populates report for a read that stored something undecodable for k3.
    def make(env):
        def read(key):
            value = env.cache.get(key)
            if value is None:
                value = env.db.get(key)
                env.cache.set(key, "<missing>" if value is None else value)
            return None if value == "<missing>" else value

        def write(key, value):
            env.db.put(key, value)
            env.cache.delete(key)

        return cachepact.Adapter(read=read, write=write)

    result = cachepact.check(make, "cache-aside", seed=0, concurrency=False)
    text = result.report()
    assert "None)" not in text.split("Model allowed at that point:")[1].splitlines()[0], text


def test_an_undecodable_payload_under_a_key_it_cannot_name_says_to_pass_decode():
    def make(env):
        def read(key):
            value = env.cache.get(f"obj:{key}")
            if value is None:
                value = env.db.get(key)
                if value is not None:
                    env.cache.set(f"obj:{key}", value.encode()[::-1])  # an encoding the kit cannot read
                return value
            return value[::-1].decode()

        def write(key, value):
            env.db.put(key, value)
            env.cache.delete(f"obj:{key}")

        return cachepact.Adapter(read=read, write=write)

    result = cachepact.check(make, "cache-aside", seed=0, concurrency=False)
    assert result.finding.invariant == "who-populates"
    assert "which cachepact cannot decode" in result.finding.message

    def with_decode(env):
        adapter = make(env)
        return cachepact.Adapter(read=adapter.read, write=adapter.write, decode=lambda p: p[::-1].decode())

    assert cachepact.check(with_decode, "cache-aside", seed=0, concurrency=False).passed


def test_cache_key_maps_keys_nothing_else_names():
    # The entry holds a bare version number, no value of the run: only cache_key= can say whose it is.
    def make(env):
        versions: dict = {}

        def read(key):
            got = env.cache.get(f"v/{key}")
            if got is not None:
                return f"{key}.v{got}"
            value = env.db.get(key)
            if value is not None:
                versions[key] = value.rpartition("v")[2]
                env.cache.set(f"v/{key}", versions[key])
            return value

        def write(key, value):
            env.db.put(key, value)
            env.cache.delete(f"v/{key}")

        return cachepact.Adapter(read=read, write=write, cache_key=lambda key: f"v/{key}", decode=lambda n: f"k?.v{n}")

    # decode here gives a value of no key; with cache_key the kit still knows the entry's key and
    # says the entry stands for a value the DB never held, rather than staying silent.
    result = cachepact.check(make, "cache-aside", seed=0, concurrency=False)
    assert result.finding is not None and result.finding.invariant == "who-populates", result.report()


@pytest.mark.parametrize(
    ("name", "invariant"),
    [
        ("aside_negative_never_invalidated", "write-order"),
        ("aside_ttl_instead_of_invalidation", "write-order"),
        ("aside_wrong_key_invalidated", "write-order"),
        ("aside_second_key_left_stale", "coherent-at-rest"),
    ],
)
@pytest.mark.parametrize("seed", SEEDS)
def test_broken_counterparts_fail_with_the_invariant_they_break(name, invariant, seed):
    result = cachepact.check(CATALOGUE[name].make, "cache-aside", seed=seed, concurrency=False)
    assert result.finding is not None and result.finding.invariant == invariant, result.report()


def test_an_invariant_nothing_exercised_is_not_run_in_text_json_and_junit():
    from cachepact.adapters.reference import cache_aside

    result = cachepact.check(cache_aside, "cache-aside", replay="seq/r:k1,r:k1,r:k2")
    assert result.passed
    statuses = dict(result.statuses)
    assert statuses["write-order"] == statuses["coherent-at-rest"] == statuses["fresh-read"] == "not-run"
    assert statuses["hit-after-fill"] == statuses["who-loads"] == "pass"
    text = result.report()
    assert "PASS: 4 invariants held" in text
    assert "Invariants: 4 pass, 4 not run (write-order, invalidate-not-update, fresh-read, coherent-at-rest" in text
    checks = {c["invariant"]: c["status"] for c in json.loads(result.to_json())["checks"]}
    assert checks["write-order"] == "not-run"
    junit = result.to_junit()
    assert junit.count("<skipped ") == 4 and 'skipped="4"' in junit


def test_ttl_is_seconds_on_the_virtual_clock_and_must_be_a_number():
    def make(env):
        def read(key):
            value = env.cache.get(key)
            if value is None:
                value = env.db.get(key)
                if value is not None:
                    env.cache.set(key, value, ttl="5 minutes")
            return value

        return cachepact.Adapter(read=read, write=lambda k, v: (env.db.put(k, v), env.cache.delete(k)))

    result = cachepact.check(make, "cache-aside", seed=0, concurrency=False)
    assert result.finding.invariant == "adapter-error"
    assert "ttl must be a number of seconds" in result.finding.message


def test_an_expired_entry_is_reloaded_and_the_replay_moves_the_clock():
    from cachepact.conformance.drive.world import Setup, World
    from cachepact.conformance.runtime.clock import VirtualClock
    from cachepact.model import CACHE_ASIDE

    make = IDIOMS["aside_ttl_entries"].make
    with VirtualClock() as clock:
        world = World(Setup(make=make, pattern=CACHE_ASIDE, clock=clock))
        for op in (("r", "k1"), ("r", "k1"), ("t", 301), ("r", "k1")):
            assert world.run(*op) is None
    calls = [s.describe() for s in world.steps if s.target != "app"]
    assert calls == [
        "cache.get(k1)",
        "db.get(k1)",
        "cache.set(k1, k1.v0, ttl=300)",
        "cache.get(k1)",  # a hit, 0 s later
        "clock +301 s",
        "k1 expired",
        "cache.get(k1)",  # a miss now: loaded and filled again
        "db.get(k1)",
        "cache.set(k1, k1.v0, ttl=300)",
    ]
    assert {"expiry", "hit", "miss"} <= world.reached
    assert world.as_run().replay == "seq/r:k1,r:k1,t:301,r:k1"


# -- cases a new user wrote against the contract alone (tests/ reproduce them) ---------------------


def _versioned(env, *, declare: bool):
    """Invalidates by bumping a version instead of deleting: old entries become unreachable."""
    version: dict = {}

    def ck(key):
        return f"{key}@{version.get(key, 0)}"

    def read(key):
        value = env.cache.get(ck(key))
        if value is None:
            value = env.db.get(key)
            if value is not None:
                env.cache.set(ck(key), value, ttl=3600)
        return value

    def write(key, value):
        env.db.put(key, value)
        version[key] = version.get(key, 0) + 1

    return cachepact.Adapter(read=read, write=write, cache_key=ck if declare else None)


def test_a_versioned_key_declared_with_cache_key_is_followed_as_the_run_goes():
    result = cachepact.check(lambda env: _versioned(env, declare=True), "cache-aside", seed=0, concurrency=False)
    assert result.passed, result.report()


def test_a_versioned_key_not_declared_fails_and_the_report_names_cache_key():
    result = cachepact.check(lambda env: _versioned(env, declare=False), "cache-aside", seed=0, concurrency=False)
    assert result.finding.invariant == "write-order"
    assert "under k1@0; if reads no longer reach it, a versioned key, say so with cache_key=" in result.finding.message


def test_a_write_keeping_the_old_value_under_a_key_of_its_own_is_not_the_entry():
    def make(env):
        def read(key):
            value = env.cache.get(f"u:{key}")
            if value is None:
                value = env.db.get(key)
                if value is not None:
                    env.cache.set(f"u:{key}", value)
                env.cache.get(f"prev:{key}")  # shown beside the value in the UI
            return value

        def write(key, value):
            old = env.db.get(key)
            env.db.put(key, value)
            env.cache.delete(f"u:{key}")
            if old is not None:
                env.cache.set(f"prev:{key}", old)  # for "undo"

        return cachepact.Adapter(read=read, write=write)

    result = cachepact.check(make, "cache-aside", seed=0, concurrency=False)
    assert result.passed, result.report()


def test_a_failing_run_whose_final_state_is_incoherent_says_coherent_at_rest_failed_too():
    result = cachepact.check(
        CATALOGUE["aside_ttl_instead_of_invalidation"].make, "cache-aside", seed=0, concurrency=False
    )
    assert result.finding.invariant == "write-order"
    assert result.status("coherent-at-rest") == "fail"
    assert "2 fail (write-order, coherent-at-rest)" in result.report()


def test_an_undecodable_fill_under_a_declared_cache_key_says_to_pass_decode():
    def make(env):
        def read(key):
            raw = env.cache.get(f"u:{key}")
            if raw is not None:
                return json.loads(raw)["current"]
            value = env.db.get(key)
            if value is not None:
                env.cache.set(f"u:{key}", json.dumps({"current": value, "previous": "k9.v9"}))
            return value

        def write(key, value):
            env.db.put(key, value)
            env.cache.delete(f"u:{key}")

        return cachepact.Adapter(read=read, write=write, cache_key=lambda key: f"u:{key}")

    result = cachepact.check(make, "cache-aside", seed=0, concurrency=False)
    assert result.finding.invariant == "who-populates"
    assert "cannot decode (pass decode=" in result.finding.message


def test_a_plain_set_after_a_lease_gets_a_hint_about_lease_set():
    def make(env):
        def read(key):
            value, token = env.cache.lease_get(key)
            if value is None:
                value = env.db.get(key)
                if token is not None and value is not None:
                    env.cache.set(key, value)  # the token is never presented
            return value

        def write(key, value):
            env.db.put(key, value)
            env.cache.delete(key)

        return cachepact.Adapter(read=read, write=write)

    result = cachepact.check(make, "cache-aside", replay="con/|r:k1,w:k1/00110")
    assert result.finding.invariant == "coherent-at-rest"
    assert result.finding.hint.startswith("the fill used set after taking a lease: fill with lease_set(k1")


def _second_look(env):
    """A library's double-checked lookup on leases: it looks, and looks again (under a lock of its
    own) before loading; the second look may find what another reader filled."""

    def read(key):
        value, token = env.cache.lease_get(key)
        if value is not None:
            return value
        again, token_again = env.cache.lease_get(key)
        if again is not None:
            return again
        token = token_again or token  # a write voided the first lease: the second one guards the load
        value = env.db.get(key)
        if token is not None:
            env.cache.lease_set(key, value, token)
        return value

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return cachepact.Adapter(read=read, write=write)


def test_a_second_look_after_a_lease_grant_that_finds_the_entry_is_a_hit():
    """dogpile's get_or_create looks twice before loading. A read granted a lease whose second look
    hits (its lease was voided, and another reader filled) returns a fresh value: not who-loads."""
    result = cachepact.check(_second_look, "cache-aside", seed=0, target="t:second_look")
    assert result.passed, result.report()
    assert "fill-refused" in result.reached and "lease-wait" in result.reached
