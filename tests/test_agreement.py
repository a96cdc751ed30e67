"""One model: the judge that checks recorded runs reaches the explorer's verdicts on the explorer's traces.

Every path of the explorer's state graph, for small scenarios of every pattern (plain and with its
own fix, leases or the lock; with and without evictions and keys absent at the start), is played as a recorded
run: each step is made on the kit's real in-memory stores, with its effect observed as a run's is,
and handed to the conformance judge. The judge must accept every step (they are the pattern's own),
and find ``coherent-at-rest``, and ``fresh-read``, exactly when the explorer's properties say a
state on that path violates each.
"""

from __future__ import annotations

import itertools

import pytest

import cachepact
from cachepact.backends._memory import MemoryCache, MemoryDB
from cachepact.conformance.judge.judge import Judge
from cachepact.conformance.record.env import Effect
from cachepact.model import PATTERNS, Scenario, Step, System, explore
from cachepact.model._explorer import PROPERTIES
from cachepact.model._participants import BACKGROUND
from cachepact.model._properties import invariant_names
from cachepact.model._system import IDLE, NOBODY, NONE

MAX_PATHS = 4000


def paths(scenario: Scenario):
    """Every complete path (all operations finished) of the unreduced state graph, as label lists."""
    g = explore(scenario, reduce=False, graph=True).graph
    stack = [(0, [], [0])]
    done = 0
    while stack and done < MAX_PATHS:
        node, labels, nodes = stack.pop()
        out = list(g.out_edges(node, data="label"))
        state = g.nodes[node]["state"]
        kinds = System(scenario).kinds
        ops_done = System.at_rest(state) and all(
            o.pc == (IDLE if kind in BACKGROUND else 99) for o, kind in zip(state.ops, kinds)
        )
        if ops_done or not out:
            done += 1
            yield labels, [g.nodes[n]["state"] for n in nodes]
            continue
        for _, nxt, label in out:
            if nxt in nodes and label[3] == "evict":
                continue  # an eviction loop adds nothing
            stack.append((nxt, [*labels, label], [*nodes, nxt]))


class Player:
    """Plays model steps on real stores, as a recorded run would make them, through the judge."""

    def __init__(self, scenario: Scenario) -> None:
        self.system = System(scenario)
        self.absent = scenario.absent
        # The judge's universe has k1 in the DB at the start and k3 not: play on the key that fits.
        self.key = "k3" if scenario.absent else "k1"
        self.db = MemoryDB({} if scenario.absent else {"k1": "k1.v0"})
        self.cache = MemoryCache()
        adapter = cachepact.Adapter(read=lambda k: None, write=lambda k, v: None)
        self.judge = Judge(scenario.pattern, adapter, peek=self.cache.peek)
        self.tokens: dict[int, str] = {}  # op index -> the store's lease token
        self.result: dict[int, object] = {}  # op index -> what the read returns
        self.begun: set[int] = set()
        self.steps: list[Step] = []
        for name, kind in zip(self.system.op_names, self.system.kinds):
            if kind in BACKGROUND:  # refreshes and flushes: the judge begins their units itself
                self.judge.worker(name, kind)

    def value(self, v: int, *, entry: bool = False) -> object:
        if v == NONE:
            return None
        if v == 0:
            return ("null" if entry else None) if self.absent else "k1.v0"
        return f"{self.key}.v{v}"

    def play(self, label: tuple, before, after) -> None:
        i, actor, target, action, _, value, _ = label
        name = self.system.op_names[i] if i != NOBODY else "-"
        if target == "clock":
            return  # time passing is no call: entries age (what starts a refresh), nothing else here
        background = i != NOBODY and self.system.kinds[i] in BACKGROUND
        if i != NOBODY and i not in self.begun and not background:
            self.begun.add(i)
            kind = self.system.kinds[i]
            # The write's value, known from its first step (a lock's too; a one-step write, done at
            # once, from the step itself).
            written = value if action in ("put", "set") else after.ops[i].loaded
            self.judge.begin(name, kind, self.key, self.value(written) if kind == "w" else None)
        store = self.db if target == "db" else self.cache
        look = (
            (lambda: (self.db.get(self.key), False))
            if target == "db"
            else (lambda: (self.cache.peek(self.key), self.cache.lease_out(self.key)))
        )
        b, lb = look()
        token = None
        if action in ("lock", "unlock", "discard"):  # a discarded refresh makes no call
            # The serialising fix's lock is on a key of the adapter's own: the judge never sees it.
            self._finished(i, name, actor, before, after)
            return
        if action == "evict":
            # The cache drops the entry on its own (capacity, expiry): its leases stay out, as the
            # model's eviction leaves them (a delete would void them).
            self.cache._data.pop(self.key, None)
            self.cache._deadlines.pop(self.key, None)
            self.judge.evicted(self.key)
            if not self.judge.in_flight():  # a rest point, as the end of a run is
                self.judge.at_rest(self.cache.peek, "-", len(self.steps) - 1)
            return
        if action in ("get", "lease_get"):
            got = store.get(self.key) if action == "get" else self.cache.lease_get(self.key)
            if action == "lease_get" and got[1] is not None:
                self.tokens[i] = got[1]
            if target == "cache" and got is not None and (got[0] if action == "lease_get" else got) is not None:
                found = got[0] if action == "lease_get" else got
                self.result[i] = None if found == "null" else found
            elif target == "db":
                self.result[i] = got
            shown = tuple(got) if action == "lease_get" else got
        elif action == "put":
            self.db.put(self.key, self.value(value))
            shown = None
        elif action == "set":
            self.cache.set(self.key, self.value(value, entry=True))
            shown = None
        elif action == "add":
            shown = self.cache.add(self.key, self.value(value, entry=True))
        elif action == "lease_set":
            token = self.tokens.get(i)
            shown = self.cache.lease_set(self.key, self.value(value, entry=True), token)
        else:
            self.cache.delete(self.key)
            shown = None
        a, la = look()
        step = Step(
            op=name,
            actor=actor,
            target=target,
            action=action,
            key=self.key,
            value=self.value(value, entry=target == "cache"),
            result=shown,
            token=token,
        )
        self.steps.append(step)
        self.judge.observe(len(self.steps) - 1, step, Effect(b, a, lb, la))
        self._finished(i, name, actor, before, after)

    def _finished(self, i: int, name: str, actor, before, after) -> None:
        for n, kind in enumerate(self.system.kinds):  # a hit on an aged entry started a refresh
            if kind in BACKGROUND and before.ops[n].pc == IDLE and after.ops[n].pc != IDLE:
                self.judge.worker_busy(self.system.op_names[n])
        if self.system.kinds[i] in BACKGROUND:
            if after.ops[i].pc == IDLE and before.ops[i].pc != IDLE:  # its work is done: the worker idles
                self.judge.worker_idle(name)
                if not self.judge.in_flight():
                    self.judge.at_rest(self.cache.peek, name, len(self.steps) - 1)
            return
        if after.ops[i].pc == 99 and before.ops[i].pc != 99:  # the model finished the op here
            self.steps.append(Step(op=name, actor=actor, target="app", action="return", key=self.key))
            self.judge.finish(name, self.result.get(i) if self.system.kinds[i] == "r" else None, len(self.steps) - 1)
            if not self.judge.in_flight():
                self.judge.at_rest(self.cache.peek, name, len(self.steps) - 1)


SCENARIOS = [
    Scenario(
        pattern=p,
        leases=fix == "leases",
        locks=fix == "locks",
        absent=absent,
        evictions=evictions,
        readers=r,
        writers=w,
    )
    for p in PATTERNS.values()
    # Each pattern plain and with its own fix (leases for the invalidating writes, the lock for
    # write-through and write-behind); the lock on an invalidating pattern is exercised by the
    # explorer's tests.
    for fix in ("", p.fix)
    for absent, evictions, (r, w) in itertools.product((False, True), (False, True), ((1, 1), (2, 1), (1, 2)))
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_the_judge_reaches_the_explorers_verdict_on_every_explorer_trace(scenario):
    checked = 0
    for labels, states in paths(scenario):
        player = Player(scenario)
        for label, before, after in zip(labels, states, states[1:]):
            player.play(label, before, after)
        applies = invariant_names(scenario.pattern)
        expected = {name for name, check in PROPERTIES.items() if name in applies and not all(map(check, states))}
        got = {f.invariant for f in player.judge.findings}
        assert got == expected, (labels, player.judge.findings)
        checked += 1
    assert checked > 0
