"""Exhaustive exploration of a scenario's reachable state graph, with shortest counterexamples.

A checking strategy over the model in ``system.py``; the model knows nothing of it.

Reductions (``reduce=True``), both sound for the properties checked here:

* **Key independence.** Every step touches exactly one key, and both properties are per key
  (a state at rest violates ``coherent-at-rest`` through one key's entry; a stale read is stale
  on its own key). So the reachable state space is a product of per-key spaces, and every
  per-key state of an N-key scenario is a reachable state of the *one-key* scenario with the
  same operations (the operations that went to other keys are simply never started there).
  Exploring that one-key scenario therefore decides the N-key one; it also keeps
  counterexamples shortest, because the steps on other keys never help a violation.
* **Reader symmetry.** Readers run one program, so states that differ only by a permutation of
  readers are merged.

``reduce=False`` explores the model as written; tests check that both agree.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from ..errors import StateSpaceTooLarge
from ._properties import INVARIANTS, invariant_names
from ._steps import Step, Trace
from ._system import Label, Scenario, State, System, event_names
from ._verdict import Verdict

# The invariants that are properties of model states, as declared (``_properties.py``).
PROPERTIES: dict[str, Callable[[State], bool]] = {
    inv.name: getattr(System, inv.state_check) for inv in INVARIANTS if inv.state_check
}

if TYPE_CHECKING:  # networkx is imported only when a graph is asked for
    import networkx as nx

DEFAULT_MAX_STATES = 2_000_000


@attrs.frozen(kw_only=True)
class PropertyResult:
    name: str
    holds: bool
    counterexample: Trace | None = None


@attrs.frozen(kw_only=True)
class Exploration:
    """What the explorer found: verdict, counts, counterexamples and the situations reached."""

    scenario: Scenario
    explored: Scenario  # the scenario actually searched (the one-key one when reduced)
    reduced: bool
    states: int
    transitions: int
    elapsed: float
    properties: tuple[PropertyResult, ...]
    reached: tuple[str, ...]
    graph: nx.DiGraph | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def holds(self) -> bool:
        return all(p.holds for p in self.properties)

    @property
    def verdict(self) -> str:
        return "holds" if self.holds else "violated"

    @property
    def not_reached(self) -> tuple[str, ...]:
        """Situations this scenario could reach but did not: a pass over them says little."""
        return tuple(e for e in System(self.explored).applicable_events() if e not in self.reached)

    def violations(self) -> tuple[PropertyResult, ...]:
        return tuple(p for p in self.properties if not p.holds)

    @property
    def outcome(self) -> Verdict:
        """The verdict in the shape ``check`` and ``prove`` give theirs."""
        bad = self.violations()
        return Verdict(
            holds=self.holds,
            checks=tuple((p.name, "pass" if p.holds else "fail") for p in self.properties),
            counterexample=bad[0].counterexample if bad else None,
        )


def explore(
    scenario: Scenario,
    *,
    reduce: bool = True,
    max_states: int = DEFAULT_MAX_STATES,
    graph: bool = False,
) -> Exploration:
    """Breadth-first search of every reachable state; BFS order makes each counterexample shortest.

    ``graph=True`` also returns the state graph as a networkx ``DiGraph`` (nodes are states, edges
    carry the step ``label``); it costs memory, so large runs leave it off.
    """
    # States are acyclic tuples; the cyclic garbage collector would rescan millions of them for
    # nothing (a third of the run time on large scenarios), so it is paused for the search.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _explore(scenario, reduce=reduce, max_states=max_states, graph=graph)
    finally:
        if gc_was_enabled:
            gc.enable()


def _explore(scenario: Scenario, *, reduce: bool, max_states: int, graph: bool) -> Exploration:
    started = time.perf_counter()
    explored = attrs.evolve(scenario, keys=1) if reduce else scenario
    system = System(explored)
    system.skip_stutter = True
    canon = system.canonical if reduce else _identity

    init = canon(system.initial())
    index: dict[State, int] = {init: 0}
    parents: list[tuple[int, Label] | None] = [None]
    states: list[State] = [init]
    edges: list[tuple[int, int, Label]] | None = [] if graph else None
    applies = invariant_names(scenario.pattern, faults=scenario.faults > 0)
    names = [name for name in PROPERTIES if name in applies]
    checks = [PROPERTIES[name] for name in names]
    found: dict[str, int] = {}
    _check(init, 0, names, checks, found)
    reached = 0
    transitions = 0
    queue = deque([0])
    successors = system.successors
    index_get = index.get
    pending = len(names) - len(found)
    while queue and pending:
        sid = queue.popleft()
        for label, nxt, event in successors(states[sid], symmetric=reduce):
            transitions += 1
            reached |= event
            if reduce:
                nxt = canon(nxt)
            nid = index_get(nxt)
            if nid is None:
                nid = len(states)
                if nid >= max_states:
                    raise StateSpaceTooLarge(scenario, max_states)
                index[nxt] = nid
                states.append(nxt)
                parents.append((sid, label))
                queue.append(nid)
                for name, check in zip(names, checks):
                    if not check(nxt) and name not in found:
                        found[name] = nid
                        pending -= 1
            if edges is not None:
                edges.append((sid, nid, label))

    results = tuple(
        PropertyResult(
            name=name,
            holds=name not in found,
            counterexample=_concrete_path(system, canon, states, parents, found[name]) if name in found else None,
        )
        for name in names
    )
    g = _graph(system, states, edges) if edges is not None else None
    return Exploration(
        scenario=scenario,
        explored=explored,
        reduced=reduce,
        states=len(states),
        transitions=transitions,
        elapsed=time.perf_counter() - started,
        properties=results,
        reached=event_names(reached),
        graph=g,
    )


def _identity(s: State) -> State:
    return s


def _check(s: State, sid: int, names: list[str], checks: list, found: dict[str, int]) -> None:
    for name, check in zip(names, checks):
        if name not in found and not check(s):
            found[name] = sid


def _concrete_path(
    system: System,
    canon: Callable[[State], State],
    states: list[State],
    parents: list[tuple[int, Label] | None],
    target: int,
) -> Trace:
    """Rebuild the path to ``target`` on concrete states so operation names stay consistent.

    Under symmetry reduction consecutive canonical states may order readers differently; replaying
    from the concrete initial state and picking the successor with the right canonical form gives a
    trace whose ``r1`` is the same reader throughout.
    """
    path: list[int] = []
    node: int | None = target
    while node is not None:
        path.append(node)
        parent = parents[node]
        node = parent[0] if parent else None
    path.reverse()
    concrete = system.initial()
    steps: list[Step] = []
    for sid in path[1:]:
        wanted = states[sid]
        for label, nxt, _ in system.successors(concrete):
            if canon(nxt) == wanted:
                steps.append(system.step_of(label))
                concrete = nxt
                break
        else:  # pragma: no cover - would mean canonical() is not a symmetry of successors()
            raise AssertionError("counterexample path cannot be replayed on concrete states")
    return Trace(steps=tuple(steps), title=system.scenario.name)


def _graph(system: System, states: list[State], edges: list[tuple[int, int, Label]]) -> nx.DiGraph:
    import networkx as nx

    g = nx.DiGraph()
    for sid, s in enumerate(states):
        g.add_node(sid, state=s, at_rest=System.at_rest(s))
    for src, dst, label in edges:
        g.add_edge(src, dst, label=label, step=system.step_of(label))
    return g
