"""How the drivers run Hypothesis: a failure of the kit's own inside a run is never a pass."""

from __future__ import annotations

import pytest
from hypothesis.errors import FlakyFailure

import cachepact
from cachepact.adapters.reference import cache_aside_leased as REFERENCE_LEASED
from cachepact.conformance.drive.hypothesis import run_seeded
from cachepact.conformance.runtime.signals import Violation


def test_a_kit_crash_hypothesis_calls_flaky_is_raised_not_taken_for_a_pass():
    def crashing():
        raise FlakyFailure("failed once, not on the rerun", [RuntimeError("dictionary changed size")])

    with pytest.raises(RuntimeError, match="dictionary changed size"):
        run_seeded(crashing, 0)


def test_a_violation_that_did_not_happen_again_ends_the_test_quietly():
    def flaky_violation():
        finding = type("F", (), {"invariant": "fresh-read", "message": "stale"})()
        raise FlakyFailure("failed once, not on the rerun", [Violation(finding)])

    run_seeded(flaky_violation, 0)  # the test kept its failing run


def early_refresh(env):
    """A hit sometimes reloads early (a probabilistic refresh with no lease): hit-after-fill, at a
    moment ``random`` decides."""
    import random

    import cachepact

    def read(key):
        value = env.cache.get(key)
        if value is not None and random.random() > 0.3:
            return value
        value = env.db.get(key)
        if value is not None:
            env.cache.set(key, value)
        return value

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return cachepact.Adapter(read=read, write=write)


def test_a_replay_of_an_adapter_that_draws_from_random_is_the_run_it_names():
    import random

    import cachepact

    random.seed(1234)
    before = random.getstate()
    found = cachepact.check(early_refresh, "cache-aside", seed=0, concurrency=False)
    assert found.finding is not None and found.finding.invariant == "hit-after-fill"
    assert random.getstate() == before  # the process's random is left as it was
    for _ in range(3):
        again = cachepact.check(early_refresh, "cache-aside", replay=found.replay, instances=1)
        assert again.finding is not None and again.finding.culprit == found.finding.culprit, again.report()


def test_a_seed_draws_the_same_examples_whatever_literals_the_loaded_modules_hold(tmp_path, monkeypatch):
    # Hypothesis draws now and then from the integer literals of local modules (the user's, the
    # kit's own when installed editable): one seed drew other examples from a checkout than from a
    # wheel. Loading a module full of literals must not change what a seed draws.
    from cachepact import Adapter, check
    from cachepact.adapters.reference import cache_aside

    def drawn() -> list[tuple[str, object]]:
        calls: list[tuple[str, object]] = []

        def make(env):
            inner = cache_aside(env)

            def read(key):
                calls.append(("r", key))
                return inner.read(key)

            def write(key, value):
                calls.append(("w", key))
                inner.write(key, value)

            return Adapter(read=read, write=write)

        check(make, "cache-aside", seed=3, concurrency=False, max_examples=40, steps=20)
        return calls

    before = drawn()
    assert drawn() == before
    (tmp_path / "literals_galore.py").write_text("TABLE = [" + ", ".join(str(i) for i in range(100, 1000)) + "]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("literals_galore")
    assert drawn() == before


# -- whole sequences drawn at once, budgets run in batches ---------------------------------------------


def test_a_drawn_sequence_is_a_byte_a_step_zero_no_step_and_faults_numbered_by_operation():
    from cachepact.conformance.drive.replay import TICKS, Fault, Op
    from cachepact.conformance.drive.sequences import FAULT_TABLE, TICKED, decode, step_table

    table = step_table(instances=2)
    assert len(table) == 256 and table[0] is None
    assert table[1] == ("r", "k1", 0, 0)  # the shrinker's goal: a read of k1 on the first instance
    assert {step[3] for step in table[1 : 256 - TICKED]} == {0, 1}
    assert {step[2] for step in table[256 - TICKED :]} == set(TICKS)
    first_fault = FAULT_TABLE.index(Fault(1, False))
    ticked = 256 - TICKED  # a read of k1 with the clock moved on first
    ops, faults = decode(bytes([1, 0, ticked, 4]), bytes([0, first_fault, first_fault, 0]), table, budget=3)
    assert ops == [("r", "k1", 0), Op("t", TICKS[0]), ("r", "k1", 0), ("w", "k1", 0)]
    # The second byte is no step, so its fault is nobody's; the clock move is not an operation.
    assert faults == {1: Fault(1, False)}
    assert decode(bytes(4), bytes(4), table, budget=3) == ([], {})


def test_a_budget_past_a_batch_runs_as_fresh_runs_under_seeds_of_their_own(monkeypatch):
    from cachepact.conformance.drive import hypothesis as driver

    monkeypatch.setattr(driver, "BATCH", 5)
    ran: list[tuple[int, object]] = []
    monkeypatch.setattr(driver, "run_seeded", lambda test, seed: ran.append((test(), seed)))
    driver.run_batches(lambda n: lambda: n, 12, 7, done=lambda: False)
    assert ran == [(5, 7), (5, "7/1"), (2, "7/2")]  # the first batch under the seed itself
    ran.clear()
    driver.run_batches(lambda n: lambda: n, 12, None, done=lambda: len(ran) == 2)
    assert ran == [(5, 0), (5, "0/1")]  # a failing run kept ends it


def test_a_large_budget_is_judged_in_batches_and_still_finds_and_shrinks(monkeypatch):
    from cachepact.adapters.broken import CATALOGUE
    from cachepact.conformance.drive import hypothesis as driver

    monkeypatch.setattr(driver, "BATCH", 7)
    entry = next(e for e in CATALOGUE.values() if e.invariant == "fresh-read")
    result = cachepact.check(entry.make, entry.pattern, concurrency=False, max_examples=40, seed=3)
    assert result.finding is not None and result.finding.invariant == "fresh-read"
    assert len(result.replay.split(",")) <= 3, result.replay
    passing = cachepact.check(REFERENCE_LEASED, "cache-aside", concurrency=False, max_examples=30)
    assert passing.passed and passing.examples >= 30
