"""Time inside races: the clock may jump at a scheduling point of a concurrent run.

A lock or lease holder paused past its timeout, and a TTL running out between two calls of one
operation, happen only when time passes while operations are in flight. The drivers (exhaustive and
Hypothesis) may move the virtual clock there, at most ``RACE_JUMPS`` times a run, just past the
soonest expiry in the stores; the jump is part of the schedule, in the replay string as ``t<seconds>``.
"""

from __future__ import annotations

import contextlib

import pytest
from redis.exceptions import LockNotOwnedError

from cachepact import Adapter, check, prove
from cachepact.adapters import redis_py, reference
from cachepact.conformance.drive import replay as replay_format
from cachepact.conformance.drive.exhaustive import _rename_tokens, explore_schedules
from cachepact.conformance.drive.replay import ConcurrentScenario as Scenario
from cachepact.conformance.drive.replay import parse_concurrent
from cachepact.conformance.drive.world import Setup
from cachepact.conformance.record.servers import Servers
from cachepact.conformance.runtime.clock import VirtualClock
from cachepact.errors import InvalidArgument
from cachepact.leases import Leases
from cachepact.model import CACHE_ASIDE

R1, W1 = ("r", "k1", 0), ("w", "k1", 1)

# redis-py's Lock stores with SET NX PX, which these are: not the library's deprecation to test here.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@contextlib.contextmanager
def held(lock):
    """A redis-py lock held around a block, released quietly when it already ran out (a common way to
    silence ``LockNotOwnedError``: the lock expired, nothing is left to release)."""
    lock.acquire()
    try:
        yield
    finally:
        with contextlib.suppress(LockNotOwnedError):
            lock.release()


def lock_guarded(env):
    """Cache-aside with one redis-py ``Lock(timeout=10)`` per key around a miss's look, load and fill,
    and around the write's put and delete: correct while no holder outlasts the timeout."""
    r = env.redis

    def lock(key):
        return r.lock(f"lock:{key}", timeout=10, blocking_timeout=10)

    def read(key):
        value = r.get(key)
        if value is not None:
            return value.decode()
        with held(lock(key)):
            value = r.get(key)
            if value is not None:
                return value.decode()
            value = env.db.get(key)
            if value is not None:
                r.set(key, value)
        return value

    def write(key, value):
        with held(lock(key)):
            env.db.put(key, value)
            r.delete(key)

    return Adapter(read=read, write=write)


@pytest.fixture
def no_jumps(monkeypatch):
    """Time standing still inside races, as before: what the jumps add is what differs."""
    monkeypatch.setattr(replay_format, "RACE_JUMPS", 0)


def _explore(make, scenario, **kw):
    servers = Servers()
    jumped = []
    try:
        with VirtualClock() as clock:
            setup = Setup(make=make, pattern=CACHE_ASIDE, instances=2, servers=servers, clock=clock)
            ex = explore_schedules(setup, scenario, on_run=lambda run: jumped.append(bool(run.jumps)), **kw)
    finally:
        servers.close()
    return ex, jumped


# -- a lock's holder stalls past its timeout --------------------------------------------------------


def test_a_fill_guarded_by_a_redis_lock_fails_when_its_holder_stalls_past_the_timeout():
    result = check(lock_guarded, "cache-aside", seed=0, target="t:lock_guarded")
    assert result.finding is not None and result.finding.invariant == "coherent-at-rest", result.report()
    shown = [s.describe() for s in result.steps]
    # r1 holds the lock and has loaded; 11 s pass (just past PX 10000): the lock is gone, w1 takes it,
    # puts and deletes; r1 fills what it loaded before the write.
    jump = shown.index("clock +11 s")
    assert shown[jump + 1] == "lock:k1 expired"
    assert "db.get(k1)" in shown[:jump] and "db.put(k1, k1.v1)" in shown[jump:]
    assert result.steps[result.finding.culprit].describe() == "SET k1 k1.v0"
    assert ".t11." in result.replay
    # The race table shows the jump as rows of their own.
    table = result.report()
    assert "Kit: clock +11 s" in table and "Cache: lock:k1 expired" in table
    again = check(lock_guarded, "cache-aside", replay=result.replay)
    assert again.finding == result.finding and shown_alike(again) == shown_alike(result)


def shown_alike(result):
    """The steps as shown, each lock's random token named by first appearance (a rerun draws new ones)."""
    return _rename_tokens(repr([s.describe() for s in result.steps]))


def test_the_exhaustive_driver_finds_the_stall_and_without_time_proves_the_lock(monkeypatch):
    ex, jumped = _explore(lock_guarded, Scenario(ops=(R1, W1)))
    assert ex.failing is not None and ex.failing.finding.invariant == "coherent-at-rest"
    assert ex.failing.jumps and ex.failing.jumps[0][1] == 11
    monkeypatch.setattr(replay_format, "RACE_JUMPS", 0)
    still, jumped = _explore(lock_guarded, Scenario(ops=(R1, W1)))
    assert still.complete and still.failing is None and not any(jumped)


def test_hypothesis_alone_finds_the_stall_and_shrinks_it_to_one_jump():
    from cachepact.conformance.drive.schedules import search_schedules
    from cachepact.conformance.report.progress import Progress

    found = []
    for seed in range(4):
        servers = Servers()
        try:
            with VirtualClock() as clock:
                setup = Setup(make=lock_guarded, pattern=CACHE_ASIDE, instances=2, servers=servers, clock=clock)
                setup.session.expiring = True  # as the check's earlier phases note it
                run = search_schedules(setup, max_examples=200, max_ops=3, seed=seed, progress=Progress())
        finally:
            servers.close()
        if run is not None:
            found.append(run)
    # The driver alone (a check runs the exhaustive phase before it). Each run found is the stall: the
    # lock ran out under its holder (time moved inside the race), and the stale fill landed; or, with
    # three operations, a waiter's blocking_timeout passed too, its acquire() returned False, which
    # held() does not look at, and its release raised (redis-py's LockError: an adapter-error).
    stalls = [run for run in found if run.finding.invariant == "coherent-at-rest"]
    assert len(stalls) >= 2
    for run in found:
        assert "t11" in run.replay, run.replay
        assert run in stalls or "Cannot release" in run.finding.message, run.finding.message


def test_a_lock_whose_release_raises_is_an_adapter_error_once_its_holder_stalls():
    def make(env):  # the plain `with lock:`: redis-py raises when it releases a lock that ran out
        r = env.redis

        def read(key):
            value = r.get(key)
            if value is not None:
                return value.decode()
            with r.lock(f"lock:{key}", timeout=10, blocking_timeout=10):
                value = env.db.get(key)
                if value is not None:
                    r.set(key, value)
            return value

        def write(key, value):
            with r.lock(f"lock:{key}", timeout=10, blocking_timeout=10):
                env.db.put(key, value)
                r.delete(key)

        return Adapter(read=read, write=write)

    result = check(make, "cache-aside", seed=0)
    assert result.finding.invariant == "adapter-error"
    assert "LockNotOwnedError" in result.finding.message
    assert "t11" in result.replay


def test_djangos_lock_recipe_passes_only_while_time_stands_still_inside_races(monkeypatch):
    from cachepact.adapters.libraries.django import get_set_locked

    result = check(get_set_locked, "cache-aside", seed=0)
    assert result.finding.invariant == "adapter-error" and "LockNotOwnedError" in result.finding.message
    assert "t11" in result.replay  # the findings page's verdict, with the clock moved on past the lock
    # Every schedule of that very race: with time moving the lock runs out under its holder; with time
    # standing still every schedule holds (the verdict the page gave before, for this race).
    scenario = parse_concurrent(result.replay)[0]

    def every_schedule():
        servers = Servers()
        try:
            with VirtualClock() as clock:
                setup = Setup(make=get_set_locked, pattern=CACHE_ASIDE, instances=2, servers=servers, clock=clock)
                return explore_schedules(setup, scenario)
        finally:
            servers.close()

    moving = every_schedule()
    assert moving.failing is not None and "LockNotOwnedError" in moving.failing.finding.message
    monkeypatch.setattr(replay_format, "RACE_JUMPS", 0)
    still = every_schedule()
    assert still.complete and still.failing is None, still.failing and still.failing.as_run().replay
    assert still.runs > 1


# -- leases stay correct with time moving -------------------------------------------------------------


def _env_leased_with_ttl(env):
    """env.cache's memcache-style leases, the fill stored with a TTL: time has something to expire."""

    def read(key):
        for _ in range(3):
            value, token = env.cache.lease_get(key)
            if value is not None:
                return value
            if token is not None:
                value = env.db.get(key)
                env.cache.lease_set(key, value, token, ttl=30)
                return value
        return env.db.get(key)

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return Adapter(read=read, write=write)


@pytest.mark.parametrize("make", [redis_py.cache_aside_leased, _env_leased_with_ttl], ids=["Leases", "env.cache"])
def test_leases_stay_correct_with_the_clock_moving_inside_races(make):
    # cachepact.leases' lease lives 10 s (PX) and its fill 300 s; env.cache's fill here 30 s: a
    # holder paused past its lease loses it, and a delete still voids the token it holds.
    ex, jumped = _explore(make, Scenario(ops=(R1, ("r", "k1", 1), ("w", "k1", 0))))
    assert ex.complete and ex.failing is None
    assert sum(jumped) > 10  # not vacuous: schedules moved the clock
    assert check(make, "cache-aside", seed=0).passed


def test_the_lease_proof_still_holds_with_time_moving():
    proof = prove(redis_py.cache_aside_leased, "cache-aside", readers=2, writers=1)
    assert proof.holds and proof.complete, proof.report()


def test_the_kits_own_lease_references_pass_with_time_moving():
    assert check(reference.cache_aside_leased, "cache-aside", seed=0).passed
    assert check(redis_py.read_through_leased, "read-through", seed=0).passed


# -- a TTL running out inside one operation ------------------------------------------------------------


def test_a_lease_running_out_inside_its_readers_operation_is_explored_and_refuses_the_fill():
    # r1 is granted cachepact.leases' lease (PX 10000) and loads; 11 s pass inside r1: the lease is
    # gone, and its fill is refused, as it should be (nothing stale lands; no false alarm).
    runs = []
    servers = Servers()
    try:
        with VirtualClock() as clock:
            setup = Setup(make=redis_py.cache_aside_leased, pattern=CACHE_ASIDE, servers=servers, clock=clock)
            ex = explore_schedules(
                setup, Scenario(ops=(("r", "k1", 0), ("w", "k2", 0))), on_run=lambda run: runs.append(run)
            )
    finally:
        servers.close()
    assert ex.complete and ex.failing is None
    inside = []
    for run in runs:
        shown = [(s.op, s.describe(), s.result) for s in run.world.steps]
        calls = [n for n, (op, _, _) in enumerate(shown) if op == "r1"]
        gone = [n for n, (_, text, _) in enumerate(shown) if text == "lease:k1 expired"]
        if gone and calls[0] < gone[0] < calls[-1]:
            inside.append(shown)
    assert inside, "no schedule let the lease run out while its reader was in flight"
    assert any(("r1", "Leases.set(k1)", False) in shown for shown in inside)


def test_a_ttl_running_out_between_two_calls_of_one_operation_is_a_step_of_the_schedule():
    # A read that looks (EXISTS) and then reads (GET): its entry (EX 30) may expire in between. A
    # write's delete can land there too, so it fails either way; the clock is one more way, shown and
    # replayed as a row of its own.
    result = check(check_then_get, "cache-aside", seed=0)
    assert result.finding.invariant == "adapter-error" and "AttributeError" in result.finding.message
    runs = []
    servers = Servers()
    try:
        with VirtualClock() as clock:
            setup = Setup(make=check_then_get, pattern=CACHE_ASIDE, servers=servers, clock=clock)
            scenario = Scenario(prefix=(("r", "k1", 0),), ops=(("r", "k1", 0), ("w", "k2", 0)))
            ex = explore_schedules(setup, scenario, on_run=runs.append)
    finally:
        servers.close()
    failing = ex.failing  # no write of k1 in flight: only time takes the entry away
    assert failing is not None and "AttributeError" in failing.finding.message
    shown = [(s.op, s.describe()) for s in failing.world.steps]
    jump = shown.index(("-", "clock +31 s"))  # just past EX 30
    assert shown[jump + 1] == ("-", "k1 expired")
    read = failing.names[0]  # the read in flight (r1 filled the entry before, alone)
    calls = [n for n, (op, _) in enumerate(shown) if op == read]
    assert shown[calls[0]] == (read, "EXISTS k1") and calls[0] < jump < calls[1] and shown[calls[1]] == (read, "GET k1")
    assert ".t31" in failing.replay


def check_then_get(env):
    """Looks whether the entry is there, then reads it: between the two it may be gone. A miss fills
    through a lease (``cachepact.leases``)."""
    r = env.redis
    leases = Leases(r)

    def read(key):
        if r.exists(key):
            return r.get(key).decode()  # None.decode() when the entry went in between
        raw, token = leases.get(key)
        if raw is not None:
            return raw.decode()
        value = env.db.get(key)
        if token is not None:
            leases.set(key, value, token, ttl=30)
        return value

    def write(key, value):
        env.db.put(key, value)
        leases.delete(key)

    return Adapter(read=read, write=write)


# -- the replay string -----------------------------------------------------------------------------------


def test_a_jump_is_a_token_of_the_schedule_and_old_strings_parse_as_before():
    scenario = Scenario(ops=(("r", "k1", 0), ("w", "k1", 0)))
    text = scenario.replay([0, 1, 1, 0], [(1, 11)])
    assert text == "con/|r:k1,w:k1/0.t11.1.1.0"
    assert parse_concurrent(text) == (scenario, [0, 1, 1, 0], [(1, 11)])
    assert parse_concurrent("con/|r:k1,w:k1/0011") == (scenario, [0, 0, 1, 1], [])
    assert scenario.replay([0, 0, 1, 1]) == "con/|r:k1,w:k1/0011"
    assert scenario.replay([0], [(1, 31)]) == "con/|r:k1,w:k1/0.t31"  # a jump after the last choice
    for bad in ("con/|r:k1,w:k1/0.t0.1", "con/|r:k1,w:k1/0.tx.1", "con/|r:k1,w:k1/0.t.1"):
        with pytest.raises(InvalidArgument):
            parse_concurrent(bad)


def test_a_replay_naming_a_jump_where_nothing_expires_is_refused():
    with pytest.raises(InvalidArgument, match="does not match this run"):
        check(reference.cache_aside, "cache-aside", replay="con/|r:k1,w:k1/0.t11.0.1.1")
