"""Controlled interleavings: the stale-set race every time, leases proven, locks neither hang nor crawl."""

from __future__ import annotations

import inspect
import json
import sys
import threading

import pytest

import cachepact
from cachepact import check
from cachepact.adapters.broken import CATALOGUE
from cachepact.adapters.reference import (
    cache_aside,
    cache_aside_leased,
    cache_aside_locked,
    read_through,
    under_one_lock,
)
from cachepact.conformance.drive.exhaustive import explore_schedules
from cachepact.conformance.drive.interleaved import replaying, run_interleaved
from cachepact.conformance.drive.replay import ConcurrentScenario as Scenario
from cachepact.conformance.drive.world import Setup
from cachepact.model import CACHE_ASIDE, READ_THROUGH

R, W = ("r", "k1", 0), ("w", "k1", 0)


def setup(make, **kw):
    return Setup(make=make, pattern=CACHE_ASIDE, **kw)


@pytest.mark.parametrize(("make", "pattern"), [(cache_aside, "cache-aside"), (read_through, "read-through")])
@pytest.mark.parametrize("seed", [0, 7])
def test_the_seed_patterns_fail_coherent_at_rest_with_the_five_step_stale_set(make, pattern, seed):
    result = check(make, pattern, seed=seed, target="t:make")
    assert result.finding.invariant == "coherent-at-rest"
    calls = [s for s in result.steps if s.target != "app"]
    who = "App" if pattern == "cache-aside" else "Cache"
    assert [(s.op, str(s.actor), s.describe()) for s in calls] == [
        ("r1", who if pattern == "read-through" else "App", "cache.get(k1)"),
        ("r1", who, "db.get(k1)"),
        ("w1", "App", "db.put(k1, k1.v1)"),
        ("w1", who if pattern == "read-through" else "App", "cache.delete(k1)"),
        ("r1", who, "cache.set(k1, k1.v0)"),
    ]
    assert result.replay == "con/|r:k1,w:k1/0011"  # the last step is forced: no choice left to record


def test_the_race_report_has_one_column_per_operation_with_the_switches_marked():
    result = check(cache_aside, "cache-aside", seed=0, target="t:make")
    assert (
        result.report()
        == f"""\
cachepact check t:make --pattern cache-aside --seed 0
App instances: 2, sharing the DB and cache as processes do; --instances 1 checks one process.
FAIL coherent-at-rest: after r1, with nothing in flight, the cache holds k1 = k1.v0 but the DB holds k1.v1

Minimal failing sequence: 2 operations, 5 DB or cache calls, 2 in flight, 2 context switches
#  switch  r1                          w1                         note
-  ------  --------------------------  -------------------------  -----------
1          App: cache.get(k1) -> None
2          App: db.get(k1) -> k1.v0
3  switch                              App: db.put(k1, k1.v1)
4                                      App: cache.delete(k1)
5                                      write(k1, k1.v1) returned
6  switch  App: cache.set(k1, k1.v0)                              <-- culprit
7          read(k1) returned -> k1.v0
Model allowed at that point: this very fill: the pattern as textbooks state it has this race
How to close it: fill through a lease (lease_get before reading the DB, then lease_set(k1, k1.v0, \
token)): the write's delete voids the lease, and the cache refuses the stale fill

Final state:
key  db     cache
---  -----  -----
k1   k1.v1  k1.v0
k2   k2.v0  None
k3   None   None

Invariants: 0 pass, 1 fail (coherent-at-rest), 7 not run (who-loads, who-populates, write-order, \
invalidate-not-update, fresh-read, hit-after-fill, single-load: the check stopped at the first failure after \
{result.examples} examples)
Reached: miss, hit, load, fill, write, invalidate, absent-read, read-after-write, fill-during-write
Replay: cachepact check t:make --pattern cache-aside --replay 'con/|r:k1,w:k1/0011'"""
    )


def test_a_write_that_deletes_only_before_its_put_is_told_to_delete_after_it_not_to_take_a_lease():
    from cachepact.adapters.redis_shapes import broken_invalidate_before_put

    result = check(broken_invalidate_before_put, "cache-aside", seed=0)
    f = result.finding
    assert f is not None and f.invariant == "write-order", result.report()  # it returns with the entry stale
    assert f.message.endswith(
        "(it deleted the entry before its DB put, where a read can refill the old value: delete after it)"
    )
    # ... and a stale fill after it returned is coherent-at-rest, told the same, not to take a lease
    from cachepact.adapters.broken import aside_delete_before_put as make

    result = check(make, "cache-aside", seed=0)
    f = result.finding
    assert f is not None and f.invariant == "coherent-at-rest", result.report()
    assert f.hint.startswith("the write w1 deleted k1 before its DB put and not after"), result.report()


@pytest.mark.parametrize("name", ["seed_cache_aside", "aside_fill_with_add", "aside_fill_mutex"])
def test_replaying_a_race_reproduces_it_exactly(name):
    entry = CATALOGUE[name]
    first = check(entry.make, entry.pattern, seed=3)
    again = check(entry.make, entry.pattern, replay=first.replay)
    assert again.finding == first.finding and again.steps == first.steps


def test_hypothesis_alone_finds_and_shrinks_the_race():
    from cachepact.conformance.drive.schedules import search_schedules
    from cachepact.conformance.report.progress import Progress
    from cachepact.conformance.runtime.clock import VirtualClock

    found = []
    with VirtualClock() as clock:
        for seed in range(4):
            setup = Setup(
                make=cache_aside, pattern=CACHE_ASIDE, label="t", clock=clock
            )  # one instance: the draw as before
            run = search_schedules(setup, max_examples=200, max_ops=3, seed=seed, progress=Progress())
            if run is not None:
                found.append(run)
    assert len(found) >= 2  # the driver alone; a check runs the exhaustive phase before it
    for run in found:  # and every race it finds is shrunk to the 5-step stale set
        assert run.finding.invariant == "coherent-at-rest"
        assert sum(1 for s in run.steps if s.target != "app" and s.op in run.columns) == 5
        assert run.switches == 2


def test_a_lease_based_adapter_is_proven_for_two_readers_and_two_writers_of_one_key():
    ex = explore_schedules(setup(cache_aside_leased), Scenario(ops=(R, R, W, W)))
    assert ex.complete and ex.failing is None
    assert ex.runs > 100 and ex.pruned > 100  # it really branched, and the state cache really cut


def test_exhaustive_exploration_is_not_vacuous_it_reaches_the_overlap():
    overlaps = []
    explore_schedules(setup(cache_aside_leased), Scenario(ops=(R, W)), on_run=lambda r: overlaps.append(r.overlapped))
    assert any(overlaps) and not all(overlaps)


def test_a_mutex_inside_an_adapter_is_a_scheduling_point_not_a_timeout():
    ex = explore_schedules(setup(cache_aside_locked), Scenario(ops=(R, W, W)))
    assert ex.complete and ex.failing is None
    run = run_interleaved(setup(cache_aside_locked), Scenario(ops=(R, W)), replaying([0, 1, 1, 0]))
    assert run.uncontrolled == 0 and run.finding is None


def test_a_genuine_deadlock_is_a_finding_with_its_steps():
    entry = CATALOGUE["aside_lock_order_deadlock"]
    result = check(entry.make, entry.pattern, seed=0)
    assert result.finding.invariant == "deadlock"
    source = inspect.getsource(sys.modules[entry.make.__module__]).splitlines()
    line = next(n for n, text in enumerate(source, 1) if "first, second = threading.Lock(), threading.Lock()" in text)
    assert result.finding.message == (
        f"r1 and w1 cannot take a next step: r1 waits for the Lock made at broken.py:{line}:39, held by w1; "
        f"w1 waits for the Lock made at broken.py:{line}:21, held by r1"
    )
    assert [s.describe() for s in result.steps] == [
        "cache.get(k1)",
        "db.put(k1, k1.v1)",
        "read(k1) did not return",  # a row for each operation caught in it
        "write(k1, k1.v1) did not return",
    ]
    assert result.steps[result.finding.culprit].describe() == "read(k1) did not return"
    assert "Invariants: " in result.report() and "(deadlock)" not in result.report()  # not an invariant


# Made at import, before any run: the kit cannot see it.
_real_lock_adapter = under_one_lock(cache_aside, threading.Lock())


def test_blocking_the_kit_cannot_see_falls_back_to_a_timeout_and_still_completes():
    run = run_interleaved(
        setup(_real_lock_adapter, step_timeout=0.05), Scenario(ops=(R, W)), replaying([0, 1, 0, 0, 1])
    )
    assert run.uncontrolled >= 1 and run.finding is None


def test_a_thread_an_operation_starts_works_for_that_operation():
    from test_real_code import joined_helper  # the write's delete on a thread it starts and joins

    run = run_interleaved(setup(joined_helper), Scenario(ops=(W, R)), replaying([0, 0, 1, 1, 1]))
    assert run.finding is None
    calls = [(s.op, s.describe()) for s in run.world.steps if s.target != "app"]
    assert ("w1", "cache.delete(k1)") in calls  # made on the helper thread, credited to the write


def _background_adapter(env):
    """A library's worker thread, started in make(env), that deletes whatever a write hands it."""
    import queue

    from cachepact.adapters.reference import cache_aside as inner_factory

    inner = inner_factory(env)
    todo: queue.Queue = queue.Queue()

    def worker():
        while True:
            key, done = todo.get()
            env.cache.delete(key)
            done.set()

    threading.Thread(target=worker, daemon=True).start()

    def write(key, value):
        env.db.put(key, value)
        done = threading.Event()
        todo.put((key, done))
        done.wait()

    return cachepact.Adapter(read=inner.read, write=write)


def test_a_thread_started_in_make_touching_env_during_an_operation_is_a_finding_not_a_hang():
    run = run_interleaved(setup(_background_adapter, step_timeout=0.5), Scenario(ops=(W, R)), replaying([0, 0, 1, 1]))
    assert run.finding.invariant == "adapter-error"
    assert "a thread the kit does not run called env (one started in make(env)" in run.finding.message


def test_read_through_leases_pass_the_default_check():
    from cachepact.adapters.reference import read_through_leased

    assert check(read_through_leased, READ_THROUGH, seed=0).passed


def test_a_replay_naming_a_choice_the_run_does_not_offer_is_refused():
    """A replay string printed for another version of the adapter or of the kit must not quietly
    rerun some other schedule (and pass)."""
    with pytest.raises(cachepact.errors.InvalidArgument, match="replay does not match this run"):
        check(cache_aside, "cache-aside", replay="con/|r:k1,w:k1/07")


def test_an_operation_handed_the_baton_whose_thread_has_not_started_is_not_taken_over():
    """Operations one at a time rotate over their instance's threads, so the next one is often handed
    to a thread the OS has yet to run; on a loaded machine that can take longer than the idle
    window, and it must not count as a wait out of the kit's control (nor be scheduled around)."""
    from types import SimpleNamespace

    from cachepact.conformance.runtime.scheduler import Scheduler
    from cachepact.conformance.runtime.session import Session

    scheduler = Scheduler(lambda d, options, default: default, session=Session(), contexts={}, helper_context=id)
    waiting = scheduler.add(0, lambda: None, thread=None, context=SimpleNamespace(op="r1"))
    scheduler.add(1, lambda: None, thread=None, context=SimpleNamespace(op="r1"))  # a helper: many live
    waiting.state = "running"
    scheduler.current = scheduler.baton = waiting
    scheduler._take_over(quiet_for=1.0)  # idle far past the window, with no thread yet (ident None)
    assert (scheduler.uncontrolled, waiting.state, scheduler.baton) == (0, "running", waiting)


def test_a_slow_store_call_is_no_wait_out_of_the_kits_control(monkeypatch):
    # Before: a recorded call waiting on a slow server (a real Redis on a loaded machine) used no CPU
    # for two polls and was taken over as "blocked out of the kit's control": --strict then failed.
    from cachepact.adapters.reference import cache_aside_leased
    from cachepact.backends._memory import MemoryDB
    from cachepact.conformance.runtime.primitives import real_sleep

    plain_get = MemoryDB.get

    def slow_get(self, key):
        real_sleep(0.05)  # a round trip to a slow server: the thread sleeps in I/O
        return plain_get(self, key)

    monkeypatch.setattr(MemoryDB, "get", slow_get)
    for schedule in ("0011", "0101", "0110"):  # a read and a write in flight, three interleavings
        result = cachepact.check(cache_aside_leased, "cache-aside", replay=f"con/|r:k1,w:k1/{schedule}")
        assert result.passed and result.uncontrolled == 0, result.report()


# -- how far the exhaustive phase goes ---------------------------------------------------------------


def test_the_schedules_a_race_gets_grow_with_the_checks_budget_within_bounds():
    from cachepact.conformance.drive.exhaustive import schedule_limit

    assert schedule_limit(100) == 5_000  # Hypothesis' default budget: what a check always explored
    assert schedule_limit(60) == 3_000
    assert schedule_limit(3) == 1_000  # a quick check still proves the small races most bugs show in
    assert schedule_limit(2_000) == 20_000  # deeper is a proof's job


def test_a_pass_names_each_race_it_stopped_short_of_the_end_with_its_schedules(monkeypatch):
    from cachepact.adapters.reference import write_through_locked
    from cachepact.conformance.drive import exhaustive

    # The lock-serialised write-through: its races of three have 280 to 570 schedules each, its
    # races of two 5 to 25. At a limit of 50 (one example, with the floor lowered), the threes stop.
    monkeypatch.setattr(exhaustive, "MIN_SCHEDULES", 10)
    result = check(write_through_locked, "write-through", max_examples=1, seed=0)
    assert result.passed, result.report()
    three = [race for race in (s.describe() for s in exhaustive.scenarios_for(2)) if race.count("|") == 2]
    assert len(three) == 4 and result.races == len(exhaustive.scenarios_for(2)) == 7
    assert [u.race for u in result.unfinished] == three
    assert {(u.schedules, u.faulted) for u in result.unfinished} == {(50, False)}
    line = next(x for x in result.report().splitlines() if x.startswith("Exhaustive:"))
    # Its writes poll the lock: loops cut past 64 lone rounds, named by a warning, so no "to the end" alone.
    assert result.spun_out > 0 and any("polled alone" in w for w in result.warnings)
    assert line == (
        "Exhaustive: 3 of 7 small races explored to the end but for the cuts named below; stopped at the "
        "check's limit: "
        f"{three[0]} (50 schedules); {three[1]} (50 schedules); {three[2]} (50 schedules); and 1 more. "
        "A larger max_examples (--max-examples) explores further: 50 schedules a race an example, up to 20,000."
    )
    report = json.loads(result.to_json())["exhaustive"]
    assert report == {
        "races": 7,
        "fault_races": 0,
        "unfinished": [{"race": race, "schedules": 50, "faulted": False} for race in three],
    }


def test_races_with_a_fault_are_counted_apart_and_named_with_their_fault(monkeypatch):
    from cachepact.adapters.faults import leased_retries_with_ttl
    from cachepact.conformance.drive import exhaustive

    # A leased read, a write that retries its delete: it passes with faults. A tenth of the limit
    # for each race with a fault: at 5 (one example, floors lowered), the larger ones stop.
    monkeypatch.setattr(exhaustive, "MIN_SCHEDULES", 10)
    monkeypatch.setattr(exhaustive, "FAULT_MIN", 1)
    result = check(leased_retries_with_ttl, "cache-aside", max_examples=1, seed=0, faults=True)
    assert result.passed, result.report()
    faulted = [u for u in result.unfinished if u.faulted]
    assert result.fault_races > len(faulted) > 0
    assert all("!" in u.race and u.schedules == 5 for u in faulted)  # w:k1!3b: the write's third call fails
    line = next(x for x in result.report().splitlines() if x.startswith("Exhaustive:"))
    assert line.startswith(
        f"Exhaustive: 3 of 7 small races and {result.fault_races - len(faulted)} of {result.fault_races} races "
        "with a fault explored to the end; stopped at the check's limit: "
    )


def test_a_pass_that_explored_every_race_to_the_end_says_so_and_a_failure_does_not():
    passed = check(cache_aside_leased, "cache-aside", seed=0)
    assert passed.passed and passed.races == 7 and passed.unfinished == ()
    assert "Exhaustive: all 7 small races explored to the end." in passed.report().splitlines()
    failed = check(cache_aside, "cache-aside", seed=0)
    assert not failed.passed and "Exhaustive:" not in failed.report()
    sequential = check(cache_aside_leased, "cache-aside", seed=0, concurrency=False)
    assert sequential.races == 0 and "Exhaustive:" not in sequential.report()
    assert json.loads(sequential.to_json())["exhaustive"] == {"races": 0, "fault_races": 0, "unfinished": []}
