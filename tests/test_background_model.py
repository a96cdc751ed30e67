"""Background work and time in the model: refresh-ahead and write-behind race as their sources say,
their fixes are proven, and time passing inside a race breaks a lock but not a lease."""

from __future__ import annotations

import pytest

from cachepact.model import PATTERNS, Kind, Scenario, System, explore, flow
from cachepact.model._system import AGED, DIRTY

BACKGROUND = [name for name, p in PATTERNS.items() if p.background]


def violated(scenario: Scenario) -> set[str]:
    return {p.name for p in explore(scenario).violations()}


def last_steps(scenario: Scenario, invariant: str) -> list[str]:
    cex = next(p for p in explore(scenario).properties if p.name == invariant).counterexample
    assert cex is not None
    return [f"{s.op} {s.call}({s.key}{', ' + str(s.value) if s.value else ''})" for s in cex]


def test_a_refresh_that_loaded_before_a_write_and_stores_after_it_is_a_stale_refresh():
    ra = PATTERNS["refresh-ahead"]
    assert last_steps(Scenario(pattern=ra, readers=2), "no-stale-refresh") == [
        "r1 cache.get(k1)",
        "r1 db.get(k1)",
        "r1 cache.set(k1, v0)",
        "- clock.tick(None)",  # the entry ages
        "r2 cache.get(k1)",  # the hit serves it and starts the refresh
        "rf1 db.get(k1)",
        "w1 db.put(k1, v1)",
        "w1 cache.delete(k1)",
        "rf1 cache.set(k1, v0)",
    ]
    # Caffeine's answer, a refresh discarded when its entry changed since, is the model's fix.
    assert violated(Scenario(pattern=ra, readers=2, writers=2, leases=True)) == set()
    assert "refresh-discarded" in explore(Scenario(pattern=ra, readers=2, leases=True)).reached


def test_write_behind_loses_a_write_three_ways_and_the_safe_design_closes_all_of_them():
    wb = PATTERNS["write-behind"]
    # A dirty entry dropped before its flush.
    assert last_steps(Scenario(pattern=wb, readers=0, evictions=True), "no-lost-write") == [
        "w1 cache.set(k1, v1)",
        "- cache.evict(k1)",
    ]
    # A miss's fill of the DB's older value over the dirty entry a write stored meanwhile.
    assert last_steps(Scenario(pattern=wb), "no-lost-write")[-2:] == ["w1 cache.set(k1, v1)", "r1 cache.set(k1, v0)"]
    # ... but not one a flush has taken already: that flush still delivers it.
    # Two flushes of one key, taken in write order and put in the other: the DB goes back in time.
    assert last_steps(Scenario(pattern=wb, readers=0, writers=2), "flush-order")[-2:] == [
        "fl2 db.put(k1, v2)",
        "fl1 db.put(k1, v1)",
    ]
    # One flusher cannot cross itself: the order race needs two flushes at once.
    assert "flush-order" not in violated(Scenario(pattern=wb, readers=0, writers=2, workers=1))
    for readers, writers in ((1, 1), (2, 2), (1, 2)):
        safe = Scenario(pattern=wb, readers=readers, writers=writers, locks=True, evictions=True)
        assert violated(safe) == set(), (readers, writers)


@pytest.mark.parametrize("name", BACKGROUND)
def test_every_pattern_with_background_work_races_as_textbooks_state_it_and_its_fix_holds(name):
    p = PATTERNS[name]
    for readers, writers in ((2, 1), (1, 2), (2, 2)):
        assert violated(Scenario(pattern=p, readers=readers, writers=writers)), (readers, writers)
        fixed = Scenario(pattern=p, readers=readers, writers=writers, evictions=True, **{p.fix: True})
        assert violated(fixed) == set(), (readers, writers)
        # The situations the invariants rest on are reached, so the proof is not vacuous.
        reached = set(explore(fixed).reached)
        if p.has(Kind.REFRESH) and readers > 1:  # a refresh needs a hit: a second read
            assert "refresh" in reached
        assert ("flush" in reached) == p.has(Kind.TAKE)


def test_time_passing_inside_a_race_breaks_the_lock_fix_but_not_the_lease_fix():
    for name in ("cache-aside", "read-through", "refresh-ahead"):
        p = PATTERNS[name]
        leased = Scenario(pattern=p, readers=2, writers=2, leases=True, clock=True)
        assert violated(leased) == set(), name
        assert "time-out" in explore(leased).reached  # a lease did time out while held
    for name in ("cache-aside", "write-through"):
        assert "coherent-at-rest" in violated(Scenario(pattern=PATTERNS[name], locks=True, clock=True)), name
    # A flusher paused past its lock's timeout puts after the next flush of its key.
    locked = Scenario(pattern=PATTERNS["write-behind"], readers=0, writers=2, locks=True, clock=True)
    assert "flush-order" in violated(locked)
    steps = last_steps(Scenario(pattern=PATTERNS["cache-aside"], locks=True, clock=True), "coherent-at-rest")
    # The holder, paused past its lock's timeout, fills after the writer took the lock and wrote.
    assert steps.index("- clock.tick(None)") < steps.index("w1 cache.lock(k1)") < steps.index("r1 cache.set(k1, v0)")


@pytest.mark.parametrize("name", BACKGROUND)
@pytest.mark.parametrize("fix", ["", "leases", "locks"])
def test_reduction_decides_background_patterns_as_the_unreduced_model_does(name, fix):
    scenario = Scenario(pattern=PATTERNS[name], readers=2, writers=1, keys=2, **({fix: True} if fix else {}))
    full, reduced = explore(scenario, reduce=False), explore(scenario)
    summary = lambda r: {p.name: (p.holds, p.counterexample and len(p.counterexample)) for p in r.properties}  # noqa: E731
    assert summary(reduced) == summary(full)
    assert set(reduced.reached) == set(full.reached)


def test_at_rest_waits_for_dirty_values_and_background_work():
    wb = System(Scenario(pattern=PATTERNS["write-behind"], readers=0))
    s = wb.initial()
    assert System.at_rest(s)
    _, stored, _ = wb.successors(s)[0]  # the write stores its dirty value and returns
    assert stored.marks == (DIRTY,) and System.idle(stored) and not System.at_rest(stored)
    flushed = stored
    while not System.at_rest(flushed):
        flushed = wb.successors(flushed)[0][1]
    assert flushed.db == (1,) and flushed.cache == (1,)


def test_a_refresh_flow_serves_the_aged_entry_and_reloads_it_behind_the_read():
    trace = flow(PATTERNS["refresh-ahead"], "refresh")
    assert [(s.op, s.call) for s in trace] == [("r1", "cache.get"), ("rf1", "db.get"), ("rf1", "cache.set")]
    # A hit on an entry that has not aged starts nothing.
    assert [s.op for s in flow(PATTERNS["refresh-ahead"], "read-hit")] == ["r1"]
    ra = System(Scenario(pattern=PATTERNS["refresh-ahead"], readers=1, writers=0))
    fresh = ra.initial()._replace(cache=(0,))
    aged = fresh._replace(marks=(AGED,))
    started = lambda s: [t[1].ops[1].pc for t in ra.successors(s) if t[0][0] == 0]  # noqa: E731
    assert started(fresh) == [0] and started(aged) == [1]
