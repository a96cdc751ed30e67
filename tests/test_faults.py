"""Stores that fail (``--faults``): injected failures, indeterminate writes, the fault invariants."""

from __future__ import annotations

import contextlib
import json

import pytest

import cachepact
from cachepact import Adapter, CacheError, DBError, check
from cachepact.adapters.faults import FAULT_CATALOGUE, FAULT_TOLERANT, TTL
from cachepact.adapters.reference import cache_aside
from cachepact.cli import main

BUGS = [(b, seed) for b in FAULT_CATALOGUE.values() for seed in (0, 1, 2)]
FAULT_INVARIANTS = ("no-phantom-read", "no-stale-after-failed-invalidate", "no-poisoned-fill")


@pytest.mark.parametrize(("bug", "seed"), BUGS, ids=[f"{seed}-{b.name}" for b, seed in BUGS])
def test_each_fault_bug_is_caught_by_its_invariant_with_a_minimal_replay(bug, seed):
    result = check(bug.make, bug.pattern, seed=seed, concurrency=False, faults=True, target=bug.name)
    assert result.finding is not None and result.finding.invariant == bug.invariant, result.report()
    assert result.replay.count(",") <= 2 and "!" in result.replay, result.replay  # at most 3 operations
    rerun = check(bug.make, bug.pattern, replay=result.replay, target=bug.name)
    assert rerun.finding is not None and rerun.finding.invariant == bug.invariant, rerun.report()


def test_the_fault_catalogue_covers_each_fault_invariant():
    assert {b.invariant for b in FAULT_CATALOGUE.values()} >= set(FAULT_INVARIANTS)


@pytest.mark.parametrize("bug", FAULT_CATALOGUE.values(), ids=list(FAULT_CATALOGUE))
def test_without_faults_the_same_adapters_pass_and_the_fault_invariants_are_not_listed(bug):
    result = check(bug.make, bug.pattern, seed=0, concurrency=False, max_examples=30)
    assert result.passed, result.report()
    assert not set(dict(result.statuses)) & set(FAULT_INVARIANTS)


@pytest.mark.parametrize("name", FAULT_TOLERANT)
@pytest.mark.parametrize("seed", (0, 1, 2))
def test_fault_tolerant_adapters_pass_with_faults_and_the_staleness_bound_is_stated(name, seed):
    result = check(FAULT_TOLERANT[name], "cache-aside", seed=seed, concurrency=False, faults=True, target=name)
    assert result.passed, result.report()
    statuses = dict(result.statuses)
    assert all(statuses[inv] == "pass" for inv in FAULT_INVARIANTS), statuses
    assert any(f"k1: at most {TTL} s more" in note for note in result.bounds), result.bounds
    lines = result.report().splitlines()
    passed = next(n for n, line in enumerate(lines) if line.startswith("PASS:"))
    assert lines[passed + 1] == result.bounds[0]  # the bound belongs to the verdict, right under it
    assert json.loads(result.to_json())["staleness_bounds"] == list(result.bounds)


def test_a_failed_call_and_an_operation_that_raised_are_rows_of_their_own():
    result = check(FAULT_CATALOGUE["raises_before_invalidating"].make, "cache-aside", replay="seq/r:k1,w:k1!1l")
    text = result.report()
    assert "db.put(k1, k1.v1)" in text and "DBError (lost reply: it took effect)" in text
    assert "write(k1, k1.v1) raised DBError" in text
    assert "--faults" not in result.command or "--replay" in result.command
    [failed] = [s for s in result.steps if s.fault == "lost"]
    assert (failed.call, failed.error) == ("db.put", "DBError")


def test_a_write_that_raised_is_not_acknowledged_and_one_that_returned_is():
    tolerant = FAULT_TOLERANT["delete_in_finally_with_ttl"]
    # The put's reply is lost after it landed, the finally still deletes, and the write raises: the
    # read after it loads the new value, as it may (and the old one would do too: nothing was
    # acknowledged).
    assert check(tolerant, "cache-aside", replay="seq/r:k1,w:k1!1l,r:k1").passed
    # The put failed before taking effect, and the write swallows that and returns: acknowledged, yet
    # the DB never got it, so the read after it is stale.
    result = check(cache_aside_swallowing_put, "cache-aside", replay="seq/w:k1!1b,r:k1")
    assert result.finding is not None and result.finding.invariant == "fresh-read", result.report()


def cache_aside_swallowing_put(env) -> Adapter:
    inner = cache_aside(env)

    def write(key, value):
        try:
            env.db.put(key, value)
        except DBError:
            return  # "we'll catch up later"
        env.cache.delete(key)

    return Adapter(read=inner.read, write=write)


def test_an_operation_no_fault_reached_that_raises_is_still_an_adapter_error():
    def make(env):
        def read(key):
            raise RuntimeError("a bug of its own")

        return Adapter(read=read, write=lambda key, value: env.db.put(key, value))

    result = check(make, "cache-aside", concurrency=False, faults=True, seed=0)
    assert result.finding is not None and result.finding.invariant == "adapter-error", result.report()


def test_the_errors_are_connection_errors_with_the_call_and_whether_it_took_effect():
    seen: list[BaseException] = []

    def make(env):
        def read(key):
            try:
                return env.cache.get(key)
            except CacheError as e:
                seen.append(e)
                raise

        return Adapter(read=read, write=lambda key, value: env.db.put(key, value))

    check(make, "cache-aside", replay="seq/r:k1!1b")
    [e] = seen
    assert isinstance(e, ConnectionError) and isinstance(e, cachepact.StoreError)
    assert (e.call, e.took_effect) == ("cache.get(k1)", False)


def test_faults_reach_concurrent_runs_and_their_replays():
    bug = FAULT_CATALOGUE["swallows_failed_delete"]
    result = check(bug.make, bug.pattern, seed=0, faults=True, target=bug.name)
    assert result.finding is not None and result.finding.invariant == bug.invariant, result.report()
    # The failed delete is swallowed, so the write is acknowledged: a read that begins after it and
    # hits the stale entry fails fresh-read, in flight as in a sequence.
    raced = check(bug.make, bug.pattern, replay="con/r:k1|w:k1!2b,r:k1/0011")
    assert raced.finding is not None and raced.finding.invariant == "fresh-read", raced.report()


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["--faults", "0"], "--faults"),
        (["--faults", "11"], "--faults"),
        (["--replay", "seq/r:k1!0b"], "bad fault"),
        (["--replay", "seq/r:k1!2x"], "bad fault"),
        (["--replay", "seq/t:31!1b"], "clock move"),
    ],
)
def test_bad_fault_input_exits_2_with_one_line(capsys, argv, fix):
    code = main(["check", "cachepact.adapters.reference:cache_aside", "--pattern", "cache-aside", *argv])
    err = capsys.readouterr().err
    assert code == 2 and fix in err and len(err.strip().splitlines()) == 1, err


def test_faults_must_be_a_small_number_or_a_bool():
    with pytest.raises(cachepact.InvalidArgument, match="faults"):
        check(cache_aside, "cache-aside", faults=11)
    with pytest.raises(cachepact.InvalidArgument, match="faults"):
        check(cache_aside, "cache-aside", faults="many")


def test_the_report_command_line_reruns_with_faults(capsys):
    bug = FAULT_CATALOGUE["returns_none_on_db_error"]
    result = check(bug.make, bug.pattern, concurrency=False, faults=2, seed=0, target="x:y")
    assert "--no-concurrency" in result.command and result.command.endswith("--faults 2")
    assert (
        main(
            [
                "check",
                "cachepact.adapters.faults:returns_none_on_db_error",
                "--pattern",
                "cache-aside",
                "--no-concurrency",
                "--faults",
            ]
        )
        == 1
    )
    assert "FAIL no-phantom-read" in capsys.readouterr().out


def orders_over_redis(*, swallow: bool):
    """Cache-aside over redis-py as a team writes it: JSON entries with a TTL; the write logs and gives
    up on a failed DEL (``swallow``), or lets the error reach its caller."""
    import json

    import redis

    def make(env) -> Adapter:
        r = env.redis

        def read(key):
            raw = r.get(f"order:{key}")
            if raw is not None:
                return json.loads(raw)
            value = env.db.get(key)
            if value is not None:
                r.set(f"order:{key}", json.dumps(value), ex=300)
            return value

        def write(key, value):
            try:
                env.db.put(key, value)
            finally:
                try:
                    r.delete(f"order:{key}")
                except redis.exceptions.RedisError:
                    if not swallow:
                        raise

        return Adapter(read=read, write=write, cache_key=lambda key: f"order:{key}")

    return make


def test_redis_py_code_sees_redis_errors_and_is_judged_the_same():
    import redis

    swallowing = check(orders_over_redis(swallow=True), "cache-aside", concurrency=False, faults=True, seed=0)
    assert swallowing.finding is not None and swallowing.finding.invariant == "fresh-read", swallowing.report()
    failed = [s for s in swallowing.steps if s.fault == "before"]
    assert [(s.describe(), s.error) for s in failed] == [("DEL order:k1", "ConnectionError")]
    raising = check(orders_over_redis(swallow=False), "cache-aside", concurrency=False, faults=True, seed=0)
    assert raising.passed, raising.report()
    assert any("order:k1: at most 300 s more" in note for note in raising.bounds), raising.bounds
    # A reply lost after the command took effect is a TimeoutError, as a client times out.
    seen: list[BaseException] = []

    def make(env) -> Adapter:
        def read(key):
            try:
                return env.redis.get(key)
            except redis.exceptions.RedisError as e:
                seen.append(e)
                raise

        return Adapter(read=read, write=lambda key, value: env.db.put(key, value))

    check(make, "cache-aside", replay="seq/r:k1!1l")
    assert [type(e) for e in seen] == [redis.exceptions.TimeoutError]


def test_a_replay_line_reruns_an_outage_and_a_mark_the_run_never_reaches_is_refused():
    def make(env) -> Adapter:
        inner = FAULT_TOLERANT["retries_with_ttl"](env)

        def write(key, value):  # retries the delete three times, then only logs: acknowledged
            with contextlib.suppress(CacheError):
                inner.write(key, value)

        return Adapter(read=inner.read, write=write)

    result = check(make, "cache-aside", concurrency=False, faults=True, seed=0, target="m:make")
    assert result.finding is not None and result.finding.invariant == "fresh-read", result.report()
    assert "+" in result.replay and "--faults --replay" in result.replay_command, result.replay_command
    again = check(make, "cache-aside", replay=result.replay, faults=True, instances=1)
    assert again.finding is not None and again.finding.invariant == "fresh-read"
    assert check(make, "cache-aside", replay=result.replay, instances=1).finding is not None  # "+": budget 3
    with pytest.raises(cachepact.InvalidArgument, match="never made"):
        check(make, "cache-aside", replay="seq/r:k1!99b")


def test_a_poisoned_fill_is_no_poisoned_fills_alone():
    result = check(FAULT_CATALOGUE["caches_missing_on_db_error"].make, "cache-aside", replay="seq/r:k1!2b")
    assert [name for name, status in result.statuses if status == "fail"] == ["no-poisoned-fill"]


def test_releasing_a_lease_after_a_failed_load_is_no_fill():
    """lease_set(key, None, token) releases the lease and stores nothing: what a reader whose load
    failed should do (it was reported as a poisoned fill)."""

    def make(env):
        def read(key):
            value, token = env.cache.lease_get(key)
            if value is not None:
                return value
            try:
                value = env.db.get(key)
            except DBError:
                env.cache.lease_set(key, None, token)
                raise
            env.cache.lease_set(key, value, token)
            return value

        def write(key, value):
            env.db.put(key, value)
            env.cache.delete(key)

        return Adapter(read=read, write=write)

    assert check(make, "cache-aside", faults=True, replay="seq/r:k1!2b").passed


def test_a_time_to_live_on_a_real_server_bounds_a_failed_invalidation(redis_server_url):
    # Before: on a real server the kit knew no entry's time to live (it cannot move that server's
    # clock), so every adapter with one failed no-stale-after-failed-invalidate "with no time to live".
    from cachepact.adapters.redis_py import cache_aside_leased
    from test_refusals import empty_db

    url = empty_db(redis_server_url)
    result = check(
        cache_aside_leased, "cache-aside", seed=0, concurrency=False, faults=True, redis=url, max_examples=40
    )
    assert result.passed, result.report()
    assert "at most 300 s more" in result.report()


def test_a_failed_lease_delete_is_a_failed_invalidation():
    # Before: a cachepact.leases delete script that failed was recorded as a failed store ("EVALSHA
    # 5f5a..."), so a write that swallowed it got write-order "never invalidated", not fresh-read.
    from cachepact.leases import Leases

    def make(env):
        leases = Leases(env.redis)

        def read(key):
            value, token = leases.get(key)
            if value is not None:
                return value.decode()
            value = env.db.get(key)
            if token is not None:
                leases.set(key, value, token, ttl=300)
            return value

        def write(key, value):
            env.db.put(key, value)
            with contextlib.suppress(Exception):  # "the cache is best effort"
                leases.delete(key)

        return Adapter(read=read, write=write)

    result = check(make, "cache-aside", seed=0, concurrency=False, faults=True)
    assert result.finding.invariant == "fresh-read", result.report()
    assert "Leases.delete(k1)" in result.report() and "EVALSHA" not in result.report()


def test_the_replay_of_a_fault_in_a_leased_read_reproduces_it():
    # Before: the replay's fresh server lacked the lease scripts, so its first EVALSHA (refused with
    # NOSCRIPT, then sent again by redis-py) took a call number, and the fault landed on another call:
    # the replay passed.
    from cachepact.leases import Leases

    def make(env):
        leases = Leases(env.redis)

        def read(key):
            value, token = leases.get(f"user:{key}")
            if value is not None:
                return value.decode()
            try:
                value = env.db.get(key)
            except ConnectionError:
                return None  # "not found" when the DB is down: a phantom
            if token is not None:
                leases.set(f"user:{key}", value, token, ttl=300)
            return value

        def write(key, value):
            env.db.put(key, value)
            leases.delete(f"user:{key}")

        return Adapter(read=read, write=write)

    result = check(make, "cache-aside", seed=0, concurrency=False, faults=True)
    assert result.finding.invariant == "no-phantom-read", result.report()
    again = check(make, "cache-aside", replay=result.replay, faults=True, instances=1)
    assert again.finding is not None and again.finding.invariant == "no-phantom-read", again.report()
