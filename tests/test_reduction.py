"""Symmetry reduction in the exhaustive search, against the search without it: at a decision, of
operations interchangeable there (two reads at the same point with the same results, two writes up
to which value is whose) only the first is stepped. Same verdicts, same first counterexample, same
states, never more schedules."""

from __future__ import annotations

import pytest

from cachepact.adapters import broken, reference
from cachepact.conformance.drive.exhaustive import explore_schedules, scenarios_for
from cachepact.conformance.drive.replay import ConcurrentScenario, Op
from cachepact.conformance.drive.world import Setup
from cachepact.conformance.runtime.clock import VirtualClock
from cachepact.model import pattern_named

R, W = Op("r", "k1"), Op("w", "k1")
TWO_AND_TWO = ConcurrentScenario(ops=(R, R, W, W))  # for the lease references: about 1,300 schedules
CASES = [
    # (factory, pattern, instances): correct ones, where every schedule runs, and broken ones
    (reference.cache_aside_leased, "cache-aside", 1),
    (reference.read_through_leased, "read-through", 1),
    (reference.cache_aside_locked, "cache-aside", 1),
    (reference.write_through_locked, "write-through", 1),
    (reference.cache_aside, "cache-aside", 2),
    (broken.CATALOGUE["aside_lease_after_load"].make, "cache-aside", 1),
    (broken.CATALOGUE["ra_blind_refresh"].make, "refresh-ahead", 1),
]


def _explore(make, pattern, instances, scenario, *, symmetry):
    with VirtualClock() as clock:
        setup = Setup(make=make, pattern=pattern_named(pattern), clock=clock, instances=instances)
        return explore_schedules(setup, scenario, limit=5000, symmetry=symmetry)


@pytest.mark.parametrize(("make", "pattern", "instances"), CASES, ids=lambda c: getattr(c, "__name__", c))
def test_the_reduced_search_finds_what_the_full_one_does_in_fewer_schedules(make, pattern, instances):
    # A check's scenarios: a read and a write, two reads and a write, a read and two writes, ...
    scenarios = list(scenarios_for(instances))
    if make in (reference.cache_aside_leased, reference.read_through_leased):
        scenarios.append(TWO_AND_TWO)
    saved = 0
    for scenario in scenarios:
        full = _explore(make, pattern, instances, scenario, symmetry=False)
        reduced = _explore(make, pattern, instances, scenario, symmetry=True)
        assert full.complete and reduced.complete, scenario
        assert reduced.failing_schedule == full.failing_schedule, scenario
        assert (reduced.failing is None) == (full.failing is None), scenario
        if full.failing is not None:
            assert reduced.failing.finding.invariant == full.failing.finding.invariant
            assert reduced.failing.replay == full.failing.replay
        # The same states are reached: only runs that would have been cut at their next decision (or
        # that had none left, and ended as their twin did) are not made.
        assert reduced.states == full.states, scenario
        assert reduced.runs <= full.runs and reduced.pruned <= full.pruned, scenario
        saved += full.runs + full.pruned - reduced.runs - reduced.pruned
    if make is reference.cache_aside_leased:
        assert saved > 0  # two identical readers or writers at the start: the reduction is not idle
