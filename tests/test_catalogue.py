"""Every broken adapter is caught with the invariant it declares; every correct one passes."""

from __future__ import annotations

import pytest

from cachepact import check
from cachepact.adapters.broken import CATALOGUE
from cachepact.adapters.reference import ONE_PROCESS, RACE_FREE, REFERENCE
from cachepact.model import PATTERNS, Actor, compose, invariant_names, pattern_named

REFERENCES = [(pattern, name, make) for pattern, d in REFERENCE.items() for name, make in d.items()]


SEQUENTIAL = [b for b in CATALOGUE.values() if not b.concurrent]
CONCURRENT = [b for b in CATALOGUE.values() if b.concurrent]


# Three seeds each; one for a derived entry (another entry's read-side code with another write half).
SEEDED = [(entry, seed) for entry in SEQUENTIAL for seed in ((0,) if entry.derived else (0, 1, 2))]


@pytest.mark.parametrize(("entry", "seed"), SEEDED, ids=[f"{seed}-{b.name}" for b, seed in SEEDED])
def test_each_broken_adapter_is_caught_by_its_declared_invariant(entry, seed):
    result = check(entry.make, entry.pattern, seed=seed, target=entry.name, concurrency=False)
    assert not result.passed, f"{entry.name} ({entry.why}) passed"
    assert result.finding.invariant == entry.invariant, result.report()
    # Minimal means one key, the first one, unless the bug needs the key the DB does not hold.
    keys = {step.split(":")[1] for step in result.replay.removeprefix("seq/").split(",")}
    assert keys in ({"k1"}, {"k3"}), result.replay


# Invariants only a race can break: a refresh stale across a write, two flushes crossing. (Background
# work runs one unit at a time between operations when nothing else is in flight.)
RACE_ONLY = {"no-stale-refresh", "flush-order"}


def test_the_catalogue_covers_every_invariant_of_every_pattern():
    assert set(REFERENCE) == set(PATTERNS)
    for pattern in REFERENCE:
        declared = {b.invariant for b in CATALOGUE.values() if b.pattern == pattern and not b.concurrent}
        raced = {b.invariant for b in CATALOGUE.values() if b.pattern == pattern and b.concurrent}
        needed = set(invariant_names(pattern_named(pattern))) | {"adapter-error"}
        assert needed - RACE_ONLY <= declared, pattern
        assert needed & RACE_ONLY <= raced, pattern
        # ... and the race every textbook pattern has, caught only concurrently
        assert any(b.pattern == pattern and b.concurrent for b in CATALOGUE.values()), pattern


@pytest.mark.parametrize("entry", CONCURRENT, ids=[b.name for b in CONCURRENT])
def test_each_race_is_missed_sequentially_and_caught_concurrently_with_its_invariant(entry):
    assert check(entry.make, entry.pattern, seed=0, concurrency=False).passed
    result = check(entry.make, entry.pattern, seed=0, target=entry.name)
    assert result.finding is not None and result.finding.invariant == entry.invariant, result.report()


@pytest.mark.parametrize(("pattern", "name", "make"), REFERENCES, ids=[n for _, n, _ in REFERENCES])
@pytest.mark.parametrize("seed", range(5))
def test_every_reference_adapter_passes_sequentially_over_many_seeds(pattern, name, make, seed):
    result = check(make, pattern, seed=seed, target=name, concurrency=False)
    assert result.passed, result.report()
    assert result.not_reached == (), "a pass that never reached a hit/miss/fill says little"


# Two seeds each; one for the lock-serialised write-through ones, whose polled lock makes every wait a
# scheduling point (about 8 s a check).
RACE_FREE_REFS = [
    (pattern, name, make, seed)
    for pattern, name, make in REFERENCES
    if name in RACE_FREE
    for seed in range(1 if "locked" in name else 2)
]


@pytest.mark.parametrize(
    ("pattern", "name", "make", "seed"), RACE_FREE_REFS, ids=[f"{n}-{s}" for _, n, _, s in RACE_FREE_REFS]
)
def test_race_free_adapters_pass_every_concurrent_check(pattern, name, make, seed):
    result = check(make, pattern, seed=seed, target=name)
    assert result.passed, result.report()
    if name.endswith("_locked"):
        # Serialised, a read that waited out a write loads the value the write stored, and its fill
        # changes nothing: there is no fill during a write to reach. That the schedules that matter
        # ran is shown by the same check catching the unlocked adapter's race.
        textbook = REFERENCE[pattern][name.removesuffix("_locked")]
        raced = check(textbook, pattern, seed=seed)
        # A textbook write-behind (a flusher per process) shows its crossed flushes first.
        first_race = "flush-order" if pattern_named(pattern).background_named("flush") else "coherent-at-rest"
        assert raced.finding is not None and raced.finding.invariant == first_race, raced.report()
    else:
        assert "fill-during-write" in result.reached


ONE_PROCESS_REFS = [r for r in REFERENCES if r[1] in ONE_PROCESS]


@pytest.mark.parametrize(("pattern", "name", "make"), ONE_PROCESS_REFS, ids=[n for _, n, _ in ONE_PROCESS_REFS])
@pytest.mark.parametrize("seed", range(2))
def test_a_process_local_lock_holds_in_one_instance_and_not_across_two(pattern, name, make, seed):
    alone = check(make, pattern, seed=seed, target=name, instances=1)
    assert alone.passed, alone.report()
    assert "fill-during-write" in alone.reached
    shared = check(make, pattern, seed=seed, target=name)  # the default: two app instances
    assert shared.finding is not None and shared.finding.invariant == "coherent-at-rest", shared.report()
    # The race needs the reader and the writer on different instances: one of them holds the lock.
    assert len({i for _, i in shared.placement}) == 2, shared.report()


@pytest.mark.parametrize(("pattern", "name", "make"), REFERENCES, ids=[n for _, n, _ in REFERENCES])
def test_a_reference_adapter_checked_against_the_other_pattern_fails_who_loads(pattern, name, make):
    # The same write half, the other read half: only who loads differs.
    p = pattern_named(pattern)
    other = compose("cache-aside" if p.load_by is Actor.CACHE else "read-through", p.writes.name).composed_name
    result = check(make, other, seed=0, concurrency=False)
    assert result.finding is not None and result.finding.invariant == "who-loads"
