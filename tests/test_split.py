"""A proof split over processes (``workers``) or over the jobs of a CI matrix (``shard``): the verdict
and the counterexample of one process, checked against it on small bounds."""

from __future__ import annotations

import pytest

import cachepact
from cachepact.adapters import broken, reference

CASES = [
    # (factory, pattern, readers, writers): two that hold, two that fail
    (reference.cache_aside_leased, "cache-aside", 2, 2),
    (reference.refresh_ahead_locked, "refresh-ahead", 1, 1),
    (reference.cache_aside, "cache-aside", 2, 1),
    (broken.CATALOGUE["ra_blind_refresh"].make, "refresh-ahead", 1, 1),
    # fails on the 7th schedule of 2r+2w: below the cut, in a subtree a process finds it in
    (broken.CATALOGUE["aside_lease_after_load"].make, "cache-aside", 2, 2),
]


def _outcome(proof: cachepact.Proof) -> tuple:
    replay = proof.counterexample.replay if proof.counterexample is not None else None
    return proof.holds, proof.complete, replay


@pytest.mark.parametrize(("make", "pattern", "readers", "writers"), CASES, ids=lambda c: getattr(c, "__name__", c))
def test_workers_give_the_verdict_and_counterexample_of_one_process(make, pattern, readers, writers):
    one = cachepact.prove(make, pattern, readers=readers, writers=writers)
    split = cachepact.prove(make, pattern, readers=readers, writers=writers, workers=2)
    assert _outcome(split) == _outcome(one), (one.report(), split.report())


@pytest.mark.parametrize(("make", "pattern", "readers", "writers"), CASES, ids=lambda c: getattr(c, "__name__", c))
def test_the_shards_of_a_matrix_hold_exactly_when_the_whole_does(make, pattern, readers, writers):
    """Each shard explores its share (and the tree above the cut, every shard's); a failing shard's
    counterexample is the first in its share, a failure of the whole."""
    one = cachepact.prove(make, pattern, readers=readers, writers=writers)
    shards = [cachepact.prove(make, pattern, readers=readers, writers=writers, shard=f"{i}/3") for i in (1, 2, 3)]
    assert all(s.complete for s in shards)
    assert all(s.holds for s in shards) == one.holds
    for s in shards:
        if not s.holds:
            again = cachepact.check(make, pattern, replay=s.counterexample.replay)
            assert again.finding is not None and again.finding.invariant == s.counterexample.finding.invariant


def test_a_split_needs_a_factory_a_new_process_can_import():
    def closure(env):
        return reference.cache_aside(env)

    with pytest.raises(cachepact.InvalidArgument, match="module-level function"):
        cachepact.prove(closure, readers=1, writers=1, workers=2)
    assert not cachepact.prove(closure, readers=1, writers=1, shard="1/2").holds  # a shard needs none


@pytest.mark.parametrize("shard", ["0/2", "3/2", "1", "one/two", "1/0"])
def test_a_shard_is_i_of_n(shard):
    with pytest.raises(cachepact.InvalidArgument, match="'i/n'"):
        cachepact.prove(reference.cache_aside, readers=1, writers=1, shard=shard)


@pytest.mark.parametrize("workers", [0, -1, True, 1.5, 65])
def test_workers_is_a_count_of_processes(workers):
    with pytest.raises(cachepact.InvalidArgument, match="workers"):
        cachepact.prove(reference.cache_aside, readers=1, writers=1, workers=workers)


def test_workers_over_one_real_server_are_refused_naming_the_fix():
    with pytest.raises(cachepact.InvalidArgument, match="workers=1"):
        cachepact.prove(reference.cache_aside, readers=1, writers=1, workers=2, redis="redis://127.0.0.1:6379/15")


def test_a_shards_report_says_it_is_one_share():
    proof = cachepact.prove(reference.cache_aside_leased, readers=2, writers=1, shard="2/3")
    assert proof.holds and proof.shard == "2/3"
    assert "in shard 2/3 (the whole holds when every shard does)" in proof.report()


def test_a_report_says_on_how_many_processes_it_ran():
    split = cachepact.prove(reference.cache_aside_leased, readers=2, writers=2, workers=2)
    assert split.processes == 2 and "on 2 processes" in split.report()
    small = cachepact.prove(reference.cache_aside_leased, readers=1, writers=1, workers=2)
    assert small.processes == 1 and "processes" not in small.report()  # all of it above the cut


def test_a_limit_that_stops_the_search_above_the_cut_leaves_the_proof_incomplete():
    proof = cachepact.prove(reference.cache_aside_leased, readers=2, writers=2, shard="1/2", limit=5)
    assert not proof.complete and not proof.holds


# -- a check's exhaustive phase over processes (check(workers=N)) ---------------------------------

CHECKS = [
    # (factory, pattern, instances): where its exhaustive phase ends
    (reference.cache_aside, "cache-aside", 2),  # fails in the first scenario: explored here, no processes
    (reference.cache_aside_locked, "cache-aside", 2),  # its lock is per process: fails in a later scenario
    (reference.cache_aside_leased, "cache-aside", 2),  # passes every scenario
    (reference.refresh_ahead_locked, "refresh-ahead", 2),  # passes, and its TTLs teach the later phases
]


def _shown(result: cachepact.Result) -> tuple:
    """Everything a report says, but how long it took."""
    return (
        result.verdict,
        result.replay,
        result.finding.invariant if result.finding else None,
        result.examples,
        result.operations,
        result.statuses,
        sorted(result.reached),
        result.warnings,
        [str(s) for s in result.steps],
        result.races,
        result.fault_races,
        result.unfinished,
        result.spun_out,
    )


@pytest.mark.parametrize(("make", "pattern", "instances"), CHECKS, ids=lambda c: getattr(c, "__name__", c))
def test_a_check_over_processes_reports_what_one_process_does(make, pattern, instances):
    one = cachepact.check(make, pattern, instances=instances)
    two = cachepact.check(make, pattern, instances=instances, workers=2)
    assert _shown(two) == _shown(one), (one.report(), two.report())


def test_races_stopped_at_the_limit_are_the_same_over_processes(monkeypatch):
    from cachepact.conformance.drive import exhaustive

    # The limit travels to the processes with the scenarios: at 50 (one example, the floor lowered),
    # the lock-serialised write-through's races of three stop there, in every process.
    monkeypatch.setattr(exhaustive, "MIN_SCHEDULES", 10)
    one = cachepact.check(reference.write_through_locked, "write-through", max_examples=1)
    two = cachepact.check(reference.write_through_locked, "write-through", max_examples=1, workers=2)
    assert len(one.unfinished) == 4
    assert _shown(two) == _shown(one), (one.report(), two.report())


def test_a_check_over_processes_needs_an_importable_factory_and_stores_of_its_own():
    def closure(env):
        return reference.cache_aside(env)

    with pytest.raises(cachepact.InvalidArgument, match="module-level function"):
        cachepact.check(closure, workers=2)
    with pytest.raises(cachepact.InvalidArgument, match="pass workers=1"):
        cachepact.check(reference.cache_aside, workers=2, db="sqlite:///unused.db")
    for bad in (0, 65, 1.5, True, "2"):
        with pytest.raises(cachepact.InvalidArgument, match="between 1 and 64"):
            cachepact.check(reference.cache_aside, workers=bad)


def test_the_pytest_option_leaves_a_test_it_cannot_spread_in_one_process():
    """--cachepact-workers applies to the conformance tests it can: a closure factory, or a test on a
    database of its own, runs in one process rather than failing."""
    from cachepact.conformance._testcase import RUN

    def closure(env):
        return reference.cache_aside_leased(env)

    run = getattr(cachepact.conformance_test(closure, max_examples=5, concurrency=False), RUN)
    assert run({"workers": 2}).passed
    with pytest.raises(cachepact.InvalidArgument, match="module-level function"):
        getattr(cachepact.conformance_test(closure, max_examples=5, workers=2), RUN)({})  # asked for by the test


def test_the_kits_errors_cross_processes_as_they_are():
    import pickle

    from cachepact.errors import BackendError, DefinitionError, InvalidArgument

    for error in (
        InvalidArgument("workers", 0, "must be between 1 and 64"),
        BackendError("redis", "redis://127.0.0.1:1/0", "cannot reach it"),
        DefinitionError("make returned None", target="m:make", field="read"),
    ):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error) and vars(again) == vars(error)
