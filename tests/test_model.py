"""The model's facts, named as the spec states them."""

from __future__ import annotations

import networkx as nx
import pytest

from cachepact.errors import StateSpaceTooLarge
from cachepact.model import (
    CACHE_ASIDE,
    PATTERNS,
    READ_THROUGH,
    Actor,
    Kind,
    Scenario,
    System,
    explore,
    flow,
)

BOTH = [CACHE_ASIDE, READ_THROUGH]
ids = [p.name for p in BOTH]


def calls(trace):
    return [(s.op, str(s.actor), s.describe(), s.shown_result) for s in trace]


@pytest.mark.parametrize("pattern", BOTH, ids=ids)
@pytest.mark.parametrize("leases", [False, True], ids=["plain", "leases"])
def test_sequentially_both_patterns_are_consistent(pattern, leases):
    result = explore(Scenario(pattern=pattern, leases=leases, readers=2, writers=2, keys=2, sequential=True))
    assert result.holds
    assert {"miss", "hit", "fill", "write", "invalidate"} <= set(result.reached)


@pytest.mark.parametrize("pattern", BOTH, ids=ids)
def test_interleaved_the_seed_patterns_lose_coherence_by_the_five_step_stale_set(pattern):
    result = explore(Scenario(pattern=pattern, readers=1, writers=1))
    assert not result.holds
    [violation] = result.violations()
    assert violation.name == "coherent-at-rest"
    loader = str(pattern.load_by)
    assert calls(violation.counterexample) == [
        ("r1", "App", "cache.get(k1)", "None"),
        ("r1", loader, "db.get(k1)", "v0"),
        ("w1", "App", "db.put(k1, v1)", ""),
        ("w1", "App", "cache.delete(k1)", ""),
        ("r1", loader, "cache.set(k1, v0)", ""),
    ]


@pytest.mark.parametrize("pattern", BOTH, ids=ids)
def test_with_two_readers_the_stale_entry_is_served_to_a_later_read(pattern):
    result = explore(Scenario(pattern=pattern, readers=2, writers=1))
    fresh = {p.name: p for p in result.properties}["fresh-read"]
    assert not fresh.holds
    steps = calls(fresh.counterexample)
    assert len(steps) == 6
    assert steps[-1][2:] == ("cache.get(k1)", "v0")  # a read begun after the write still sees v0


@pytest.mark.parametrize("pattern", BOTH, ids=ids)
@pytest.mark.parametrize(("readers", "writers", "keys"), [(2, 2, 1), (1, 1, 2)])
def test_with_leases_the_race_is_gone_within_the_bounds(pattern, readers, writers, keys):
    result = explore(Scenario(pattern=pattern, leases=True, readers=readers, writers=writers, keys=keys))
    assert result.holds, result.violations()


@pytest.mark.parametrize("pattern", BOTH, ids=ids)
def test_the_lease_scenarios_reach_a_fill_that_overlaps_a_write(pattern):
    result = explore(Scenario(pattern=pattern, leases=True, readers=2, writers=2))
    assert {"fill-during-write", "fill-refused", "lease-wait", "hit", "miss"} <= set(result.reached)
    assert result.not_reached == ()


@pytest.mark.parametrize("pattern", BOTH, ids=ids)
@pytest.mark.parametrize("leases", [False, True], ids=["plain", "leases"])
@pytest.mark.parametrize("sequential", [False, True], ids=["interleaved", "sequential"])
@pytest.mark.parametrize(("readers", "writers", "keys"), [(1, 1, 2), (2, 1, 2), (2, 2, 2), (1, 2, 3)])
def test_reduction_decides_exactly_what_the_unreduced_model_decides(
    pattern, leases, sequential, readers, writers, keys
):
    scenario = Scenario(
        pattern=pattern, leases=leases, readers=readers, writers=writers, keys=keys, sequential=sequential
    )
    full = explore(scenario, reduce=False)
    reduced = explore(scenario)
    summary = lambda r: {p.name: (p.holds, p.counterexample and len(p.counterexample)) for p in r.properties}  # noqa: E731
    assert summary(reduced) == summary(full)
    assert set(reduced.reached) == set(full.reached)
    assert reduced.states <= full.states


@pytest.mark.parametrize("pattern", BOTH, ids=ids)
def test_a_reduced_counterexample_replays_step_by_step_on_the_unreduced_model(pattern):
    scenario = Scenario(pattern=pattern, readers=3, writers=2, keys=2)
    cex = explore(scenario).violations()[0].counterexample
    system = System(scenario)
    state = system.initial()
    for step in cex:
        matches = [nxt for label, nxt, _ in system.successors(state) if system.step_of(label) == step]
        assert matches, f"{step} is not a step the model allows here"
        state = matches[0]
    assert System.at_rest(state) and not System.coherent_at_rest(state)


def test_the_state_graph_is_a_networkx_digraph_whose_shortest_path_is_the_counterexample():
    result = explore(Scenario(pattern=CACHE_ASIDE, readers=1, writers=1), reduce=False, graph=True)
    g = result.graph
    assert isinstance(g, nx.DiGraph) and g.number_of_nodes() == result.states
    bad = [n for n, s in g.nodes(data="state") if not System.coherent_at_rest(s)]
    shortest = min(nx.shortest_path_length(g, 0, n) for n in bad)
    assert shortest == len(result.violations()[0].counterexample) == 5


def test_a_state_space_over_the_bound_is_refused_with_the_fix_named():
    with pytest.raises(StateSpaceTooLarge, match="raise max_states or lower"):
        explore(Scenario(pattern=CACHE_ASIDE, leases=True, readers=3, writers=3), max_states=100)


@pytest.mark.parametrize("pattern", BOTH, ids=ids)
def test_each_flow_follows_the_seed_table(pattern):
    who = str(pattern.load_by)
    assert calls(flow(pattern, "read-hit")) == [("r1", "App", "cache.get(k1)", "v0")]
    assert calls(flow(pattern, "read-miss")) == [
        ("r1", "App", "cache.get(k1)", "None"),
        ("r1", who, "db.get(k1)", "v0"),
        ("r1", who, "cache.set(k1, v0)", ""),
    ]
    assert calls(flow(pattern, "write")) == [
        ("w1", "App", "db.put(k1, v1)", ""),
        ("w1", "App", "cache.delete(k1)", ""),
    ]


def test_the_seeds_two_patterns_differ_only_in_who_loads_and_populates():
    assert CACHE_ASIDE.load_by is CACHE_ASIDE.fill_by is Actor.APP
    assert READ_THROUGH.load_by is READ_THROUGH.fill_by is Actor.CACHE
    assert {"cache-aside", "read-through"} <= set(PATTERNS)
    assert CACHE_ASIDE.write == READ_THROUGH.write  # the seed: writes are identical
    assert (CACHE_ASIDE.by(Kind.PUT), CACHE_ASIDE.by(Kind.INVALIDATE)) == (Actor.APP, Actor.APP)
    assert [i.kind for i in CACHE_ASIDE.read] == [i.kind for i in READ_THROUGH.read]


def test_a_lease_fill_presents_its_token_and_a_delete_voids_it():
    cex_free = flow(CACHE_ASIDE, "read-miss", leases=True)
    assert calls(cex_free)[-1] == ("r1", "App", "cache.lease_set(k1, v0, tok(r1))", "True")
    # the race with leases: the writer's delete voids r1's token, so its stale fill is refused
    system = System(Scenario(pattern=CACHE_ASIDE, leases=True, readers=1, writers=1))
    state = system.initial()
    order = ["r1", "r1", "w1", "w1", "r1"]
    taken = []
    for op in order:
        label, state, _ = next(t for t in system.successors(state) if system.op_names[t[0][0]] == op)
        taken.append(system.step_of(label))
    assert taken[-1].describe() == "cache.lease_set(k1, v0, tok(r1))" and taken[-1].result is False
    assert System.coherent_at_rest(state)
