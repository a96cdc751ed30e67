"""A pattern as a labelled transition system: state, operations as step programs, next states.

This module is the model and nothing else: data plus pure functions. How the state space is
searched (exhaustively, with reductions) lives in ``explorer.py``.

State is a ``NamedTuple`` of small ints rather than an attrs class: the explorer hashes millions
of them, and tuples hash and compare several times faster. Values (steps, traces, scenarios,
results) are attrs classes.
"""

from __future__ import annotations

from typing import NamedTuple

import attrs

from ._participants import Pattern
from ._steps import CACHE, DB, Step

# Program counters. A read is lookup -> load -> fill; a write is put -> invalidate.
IDLE, LOOKUP, LOAD, FILL, INVALIDATE, DONE = range(6)
NONE = -1  # "no value": a cache miss, no loaded value, no result

# Situations a transition can reach ("sometimes" properties: a pass that never reached them
# would be vacuous). Bits so the explorer can OR them together at no cost.
EVENTS = (
    "miss",
    "hit",
    "load",
    "fill",
    "fill-refused",
    "fill-during-write",
    "write",
    "invalidate",
    "lease-wait",
)
MISS, HIT, LOAD_EV, FILL_EV, FILL_REFUSED, FILL_DURING_WRITE, WRITE, INVALIDATE_EV, LEASE_WAIT = (
    1 << i for i in range(len(EVENTS))
)


def event_names(mask: int) -> tuple[str, ...]:
    return tuple(name for i, name in enumerate(EVENTS) if mask & (1 << i))


class OpState(NamedTuple):
    pc: int
    key: int  # NONE until the operation's first step picks its key
    token: bool  # a reader holds a lease token that no delete has voided yet
    loaded: int  # a reader: the value it loaded from the DB; a writer: the value it wrote
    # A reader: the values it must not return (bit v = value v), fixed when it starts.
    # A writer: the values the DB had received before its own put.
    mask: int


# Every finished operation looks the same: what it did is already folded into the shared state
# (``stale``, ``retired``), so forgetting its locals merges states that cannot behave differently.
DONE_OP = OpState(DONE, NONE, False, NONE, 0)


class State(NamedTuple):
    db: tuple[int, ...]  # value id per key
    cache: tuple[int, ...]  # value id per key, NONE when absent
    put: tuple[int, ...]  # per key: bit mask of the values the DB has received
    # Per key: values older than some *completed* write, i.e. put before it. A read that starts
    # now must not return any of them (``fresh-read``). Bit masks instead of the DB's full write
    # order: the order itself matters only through these sets, and keeping it multiplies states.
    retired: tuple[int, ...]
    ops: tuple[OpState, ...]  # readers first, then writers
    stale: bool  # some read returned a value older than a write that completed before it began


# A label is the cheap form of a Step (ints only); the explorer turns the few it reports into Steps.
Label = tuple  # (op index, actor, target, action, key, value, result)


@attrs.frozen(kw_only=True)
class Scenario:
    """A bounded scenario: which pattern, how many readers and writers, how many keys.

    Every operation picks its key nondeterministically at its first step, so one scenario covers
    every assignment of operations to keys. Each write puts a value never written before (``v1``,
    ``v2``, ... in the order they reach the DB); every key starts with ``v0`` in the DB and nothing
    in the cache.
    """

    pattern: Pattern
    leases: bool = False
    readers: int = 1
    writers: int = 1
    keys: int = 1
    sequential: bool = False

    @property
    def name(self) -> str:
        mode = "sequential" if self.sequential else "interleaved"
        lease = " with leases" if self.leases else ""
        return (
            f"{self.pattern.name}{lease}, {mode}: {self.readers} reader(s) + "
            f"{self.writers} writer(s) over {self.keys} key(s)"
        )


def key_name(k: int) -> str:
    return f"k{k + 1}"


def value_name(v: int) -> str | None:
    return None if v == NONE else f"v{v}"


class System:
    """The transition system of one scenario: ``initial()`` and ``successors(state)``."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        p = scenario.pattern
        self._lookup, self._load, self._fill = p.lookup_by, p.load_by, p.fill_by
        self._write, self._invalidate = p.write_by, p.invalidate_by
        self.readers = scenario.readers
        # A reader that retries a lease while another still holds it changes no state; reachability
        # does not need those self-loops, and the explorer asks for them to be left out.
        self.skip_stutter = False
        self.op_names = tuple(f"r{i + 1}" for i in range(scenario.readers)) + tuple(
            f"w{j + 1}" for j in range(scenario.writers)
        )

    def initial(self) -> State:
        k = self.scenario.keys
        idle = OpState(IDLE, NONE, False, NONE, 0)
        return State(
            db=(0,) * k,
            cache=(NONE,) * k,
            put=(1,) * k,
            retired=(0,) * k,
            ops=(idle,) * (self.scenario.readers + self.scenario.writers),
            stale=False,
        )

    def applicable_events(self) -> tuple[str, ...]:
        """The situations this scenario can reach at all (no lease waits without leases, ...)."""
        skip = set()
        if not self.scenario.leases:
            skip |= {"fill-refused", "lease-wait"}
        if self.scenario.sequential:
            skip |= {"fill-during-write", "fill-refused", "lease-wait"}
        if not self.scenario.writers:
            skip |= {"write", "invalidate", "fill-during-write", "fill-refused"}
        return tuple(e for e in EVENTS if e not in skip)

    # -- properties (named, over states) -------------------------------------------------------

    @staticmethod
    def at_rest(s: State) -> bool:
        for op in s[OPS]:
            if IDLE < op[PC] < DONE:
                return False
        return True

    @staticmethod
    def coherent_at_rest(s: State) -> bool:
        """Whenever no operation is in flight, every cached entry equals the DB value."""
        if not System.at_rest(s):
            return True
        return all(c == NONE or c == d for c, d in zip(s.cache, s.db))

    @staticmethod
    def fresh_read(s: State) -> bool:
        """No read returned a value older than one whose write completed before the read began."""
        return not s.stale

    # -- transitions ---------------------------------------------------------------------------

    def successors(self, s: State, *, symmetric: bool = False) -> list[tuple[Label, State, int]]:
        """Every enabled step from ``s``: (label, next state, events reached).

        ``symmetric=True`` expands only the first of several identical operations in a block
        (readers, writers): under ``canonical`` the others lead to the same states.
        """
        out: list[tuple[Label, State, int]] = []
        ops = s[OPS]
        r = self.readers
        sequential_busy = self.scenario.sequential and not self.at_rest(s)
        keys = range(self.scenario.keys)
        previous = None
        for i, op in enumerate(ops):
            pc = op[PC]
            if pc == DONE:
                continue
            if symmetric and op == previous and i != r:
                continue
            previous = op
            if pc == IDLE:
                if sequential_busy:
                    continue
                for k in keys:
                    out.append(self._step(s, i, _new(OpState, (IDLE, k, False, NONE, 0))))
            else:
                step = self._step(s, i, op)
                if step is not None:
                    out.append(step)
        return out

    def _step(self, s: State, i: int, op: OpState) -> tuple[Label, State, int] | None:
        if i >= self.readers:
            return self._write_step(s, i, op)
        if self.scenario.leases:
            return self._read_leased(s, i, op)
        return self._read_plain(s, i, op)

    def _read_plain(self, s: State, i: int, op: OpState) -> tuple[Label, State, int]:
        pc, k, _, loaded, mask = op
        if pc == IDLE or pc == LOOKUP:
            found = s[CACHE_F][k]
            if pc == IDLE:
                mask = s[RETIRED][k]
            label = (i, self._lookup, CACHE, "get", k, NONE, found)
            if found != NONE:
                return label, _finish_read(s, i, mask, found), HIT
            return label, _with_op(s, i, _new(OpState, (LOAD, k, False, NONE, mask))), MISS
        if pc == LOAD:
            v = s[DB_F][k]
            label = (i, self._load, DB, "get", k, NONE, v)
            return label, _with_op(s, i, _new(OpState, (FILL, k, False, v, mask & 1 << v))), LOAD_EV
        # FILL
        label = (i, self._fill, CACHE, "set", k, loaded, None)
        s2 = _with(s, CACHE_F, _put(s[CACHE_F], k, loaded))
        return label, _finish_read(s2, i, mask, loaded), FILL_EV | self._overlap(s, k)

    def _read_leased(self, s: State, i: int, op: OpState) -> tuple[Label, State, int] | None:
        pc, k, token, loaded, mask = op
        if pc == IDLE or pc == LOOKUP:
            found = s[CACHE_F][k]
            if pc == IDLE:
                mask = s[RETIRED][k]
            if found != NONE:
                label = (i, self._lookup, CACHE, "lease_get", k, NONE, (found, None))
                return label, _finish_read(s, i, mask, found), HIT
            if self.lease_out(s, k):
                # Another reader holds the lease: memcache answers "wait and retry".
                if pc == LOOKUP and self.skip_stutter:
                    return None  # retrying again changes nothing: a self-loop
                label = (i, self._lookup, CACHE, "lease_get", k, NONE, (None, None))
                return label, _with_op(s, i, _new(OpState, (LOOKUP, k, False, NONE, mask))), LEASE_WAIT
            label = (i, self._lookup, CACHE, "lease_get", k, NONE, (None, i))
            return label, _with_op(s, i, _new(OpState, (LOAD, k, True, NONE, mask))), MISS
        if pc == LOAD:
            v = s[DB_F][k]
            label = (i, self._load, DB, "get", k, NONE, v)
            # Once the value is known, only "is it too old" matters: keep just that bit of the mask.
            return label, _with_op(s, i, _new(OpState, (FILL, k, token, v, mask & 1 << v))), LOAD_EV
        # FILL: lease_set stores only while the token is valid
        label = (i, self._fill, CACHE, "lease_set", k, loaded, token)
        s2 = _with(s, CACHE_F, _put(s[CACHE_F], k, loaded)) if token else s
        event = (FILL_EV if token else FILL_REFUSED) | self._overlap(s, k)
        return label, _finish_read(s2, i, mask, loaded), event

    def _write_step(self, s: State, i: int, op: OpState) -> tuple[Label, State, int]:
        pc, k, _, value, _ = op
        if pc == IDLE:
            # Values are numbered in the order writes reach the DB, not by writer: idle writers
            # are then interchangeable, which is what lets ``canonical`` merge them.
            value = 1
            for o in s[OPS][self.readers :]:
                if o[PC] != IDLE:
                    value += 1
            label = (i, self._write, DB, "put", k, value, None)
            put = s[PUT][k]
            db = _put(s[DB_F], k, value)
            ops = _put(s[OPS], i, _new(OpState, (INVALIDATE, k, False, value, put)))
            nxt = _new(State, (db, s[CACHE_F], _put(s[PUT], k, put | 1 << value), s[RETIRED], ops, s[STALE]))
            return label, nxt, WRITE
        # INVALIDATE: delete the entry and void every outstanding lease token on the key
        label = (i, self._invalidate, CACHE, "delete", k, NONE, None)
        ops = list(s[OPS])
        for j in range(self.readers):
            o = ops[j]
            if o[TOKEN] and o[KEY] == k:
                ops[j] = _new(OpState, (o[PC], k, False, o[LOADED], o[MASK]))
        ops[i] = DONE_OP
        retired = _put(s[RETIRED], k, s[RETIRED][k] | op[MASK])
        nxt = _new(State, (s[DB_F], _put(s[CACHE_F], k, NONE), s[PUT], retired, tuple(ops), s[STALE]))
        return label, nxt, INVALIDATE_EV

    def lease_out(self, s: State, k: int) -> bool:
        """A lease is out on ``k`` exactly while some reader of ``k`` holds an unvoided token."""
        ops = s[OPS]
        for j in range(self.readers):
            o = ops[j]
            if o[TOKEN] and o[KEY] == k:
                return True
        return False

    def _overlap(self, s: State, k: int) -> int:
        ops = s[OPS]
        for j in range(self.readers, len(ops)):
            o = ops[j]
            if o[PC] == INVALIDATE and o[KEY] == k:
                return FILL_DURING_WRITE
        return 0

    # -- presentation --------------------------------------------------------------------------

    def step_of(self, label: Label) -> Step:
        i, actor, target, action, k, value, result = label
        return Step(
            op=self.op_names[i],
            actor=actor,
            target=target,
            action=action,
            key=key_name(k),
            value=value_name(value),
            result=self._show_result(action, result),
            token=f"tok({self.op_names[i]})" if action == "lease_set" else None,
        )

    def _show_result(self, action: str, result: object) -> object:
        if action == "get":
            return value_name(result)  # type: ignore[arg-type]
        if action == "lease_get":
            found, token = result  # type: ignore[misc]
            return (
                None if found is None else value_name(found),
                None if token is None else f"tok({self.op_names[token]})",
            )
        return result

    def canonical(self, s: State) -> State:
        """Readers run one program and writers another, so permuting either gives an equivalent state."""
        r = self.readers
        ops = s[OPS]
        readers, writers = ops[:r], ops[r:]
        sorted_ops = (*sorted(readers), *sorted(writers))
        return s if sorted_ops == ops else _new(State, (*s[:OPS], sorted_ops, s[STALE]))


# The hot path builds tuples directly: NamedTuple._replace costs several times more, and the
# explorer does this millions of times. Field indices below name the positions.
_new = tuple.__new__
PC, KEY, TOKEN, LOADED, MASK = range(5)
DB_F, CACHE_F, PUT, RETIRED, OPS, STALE = range(6)


def _put(t: tuple, k: int, v: object) -> tuple:
    return t[:k] + (v,) + t[k + 1 :]


def _with(s: State, field: int, value: object) -> State:
    return _new(State, s[:field] + (value,) + s[field + 1 :])


def _with_op(s: State, i: int, op: OpState) -> State:
    return _with(s, OPS, _put(s[OPS], i, op))


def _finish_read(s: State, i: int, mask: int, result: int) -> State:
    """A read returns ``result``; it is stale when the read was told, at its start, that it is too old."""
    ops = _put(s[OPS], i, DONE_OP)
    stale = s[STALE] or bool(mask >> result & 1)
    return _new(State, (s[DB_F], s[CACHE_F], s[PUT], s[RETIRED], ops, stale))
