"""A pattern as a labelled transition system: state, the step primitives programs are made of, next states.

This module gives every instruction kind of ``_patterns.py`` its meaning, once. Two drivers use the
same primitives: ``successors`` enumerates every enabled step (the explorer), and the conformance
judge (``_refinement.py``) asks a primitive for the step a recorded call matches.

State is a ``NamedTuple`` of small ints rather than an attrs class: the explorer hashes millions
of them, and tuples hash and compare several times faster. Values (steps, traces, scenarios,
results) are attrs classes.

Values are version numbers per key: ``0`` is what the DB holds at the start (for a key that starts
absent, "no value"; a cached ``0`` is then a negative entry), and each write puts a new number.
"""

from __future__ import annotations

from typing import NamedTuple

import attrs

from ._participants import READ, WRITE, Actor, OpKind
from ._patterns import Instr, Kind, Pattern
from ._properties import EVENTS, SITUATIONS
from ._steps import CACHE, DB, Step

IDLE, DONE = 0, 99  # an op's pc is IDLE, 1 + the index of its next instruction, or DONE
RETURNING = 98  # with ``defer_return``: every instruction done (or a hit), the op not yet returned
NONE = -1  # "no value": a cache miss, nothing loaded yet
ABSENT = -2  # a negative entry for a key the DB does hold: never equal to any version
NOBODY = -1  # the op index of a step no operation made (an eviction)

# Situations a step can reach ("sometimes" properties: a pass that never reached them would be
# vacuous), declared in ``_properties.py``. Bits, so the explorer ORs them together at no cost.
_BIT = {name: 1 << i for i, name in enumerate(EVENTS)}
MISS, HIT, LOAD_EV, FILL_EV, FILL_REFUSED = (_BIT[n] for n in ("miss", "hit", "load", "fill", "fill-refused"))
FILL_DURING_WRITE, WRITE_EV, INVALIDATE_EV, STORE_EV = (
    _BIT[n] for n in ("fill-during-write", "write", "invalidate", "store")
)
LEASE_WAIT, ABSENT_READ, NEGATIVE_FILL, EVICTION = (
    _BIT[n] for n in ("lease-wait", "absent-read", "negative-fill", "eviction")
)

# OpState.flags
LEASED = 1  # the read took a lease at its lookup: its fill is a lease_set
WAITED = 2  # its last lookup was told to wait: it may load and return without filling
HOLDS = 4  # it holds its key's lock (``Scenario.locks``)


def event_names(mask: int) -> tuple[str, ...]:
    return tuple(name for i, name in enumerate(EVENTS) if mask & (1 << i))


class OpState(NamedTuple):
    pc: int
    key: int  # NONE until the explorer picks it at the op's first step
    token: bool  # a read holds a lease token that no delete has voided yet
    loaded: int  # a read: the value it loaded; a write: the value it writes (NONE until chosen)
    # A read: the values it must not return (bit v = value v), fixed when it starts.
    # A write: the values the DB had received before its own put.
    mask: int
    flags: int


# Every finished operation looks the same: what it did is already folded into the shared state
# (``stale``, ``retired``), so forgetting its locals merges states that cannot behave differently.
DONE_OP = OpState(DONE, NONE, False, NONE, 0, 0)


class State(NamedTuple):
    db: tuple[int, ...]  # value per key
    cache: tuple[int, ...]  # value per key, NONE when absent
    put: tuple[int, ...]  # per key: bit mask of the values the DB has received
    # Per key: values older than some *completed* write, i.e. put before it. A read that starts
    # now must not return any of them (``fresh-read``). Bit masks instead of the DB's full write
    # order: the order itself matters only through these sets, and keeping it multiplies states.
    retired: tuple[int, ...]
    ops: tuple[OpState, ...]  # the explorer: readers first, then writers
    stale: bool  # some read returned a value older than a write that completed before it began


class Label(NamedTuple):
    """The cheap form of a ``Step`` (ints only): which op (its index), who, on which store, what,
    on which key, with which value, and what it returned. The explorer turns the few it reports into
    ``Step``s; the judge matches calls against them.

    The primitives below build labels and transitions as plain tuples of these fields: a
    NamedTuple's construction costs the explorer a third of its throughput, and a tuple of the same
    fields is one (``Label._make`` names them where a reader wants names)."""

    op: int
    actor: Actor
    target: str
    action: str
    key: int
    value: int
    result: object


class Transition(NamedTuple):
    """One enabled step: its label, the state it leads to, and the situations it reaches (bits)."""

    label: Label
    state: State
    events: int


@attrs.frozen(kw_only=True)
class Scenario:
    """A bounded scenario: which pattern, how many readers and writers, how many keys.

    Every operation picks its key nondeterministically at its first step, so one scenario covers
    every assignment of operations to keys. Each write puts a value never written before (``v1``,
    ``v2``, ... in the order they reach the DB). Every key starts with ``v0`` in the DB (with
    ``absent``, with nothing) and nothing in the cache. With ``evictions``, the cache may drop any
    entry at any moment. With ``locks``, every operation takes its key's lock before its first DB
    call and holds it to its end (a read only once it missed): the serialising fix.
    """

    pattern: Pattern
    leases: bool = False
    locks: bool = False
    readers: int = 1
    writers: int = 1
    keys: int = 1
    sequential: bool = False
    absent: bool = False
    evictions: bool = False

    @property
    def name(self) -> str:
        mode = "sequential" if self.sequential else "interleaved"
        extras = [x for x, on in (("leases", self.leases), ("locks", self.locks), ("evictions", self.evictions)) if on]
        extra = f" with {' and '.join(extras)}" if extras else ""
        start = ", keys absent at the start" if self.absent else ""
        return (
            f"{self.pattern.name}{extra}, {mode}: {self.readers} reader(s) + "
            f"{self.writers} writer(s) over {self.keys} key(s){start}"
        )


def key_name(k: int) -> str:
    return f"k{k + 1}"


class System:
    """The transition system of one scenario: ``initial()`` and ``successors(state)``.

    ``kinds`` says which program each op runs (READ or WRITE); the explorer's are readers then
    writers, and the conformance judge appends one per operation as a run goes.
    """

    def __init__(self, scenario: Scenario, *, absent: tuple[bool, ...] | None = None) -> None:
        self.scenario = scenario
        self.pattern = scenario.pattern
        self.programs = {READ: scenario.pattern.read, WRITE: scenario.pattern.write}
        if scenario.locks:
            self.programs = {kind: with_locks(program) for kind, program in self.programs.items()}
        self.kinds: list[OpKind] = [READ] * scenario.readers + [WRITE] * scenario.writers
        self.readers = scenario.readers
        self.keys = scenario.keys
        self.absent = absent if absent is not None else (scenario.absent,) * scenario.keys
        # A reader that retries a lease while another still holds it changes no state; reachability
        # does not need those self-loops, and the explorer asks for them to be left out.
        self.skip_stutter = False
        # The conformance judge sees an operation return after its last step: ``finish`` then only
        # marks it RETURNING, with its result, and ``complete`` finishes it at the return.
        self.defer_return = False
        self.op_names = [f"r{i + 1}" for i in range(scenario.readers)] + [f"w{j + 1}" for j in range(scenario.writers)]

    def initial(self) -> State:
        k = self.keys
        idle = OpState(IDLE, NONE, False, NONE, 0, 0)
        return State(
            db=(0,) * k,
            cache=(NONE,) * k,
            put=(1,) * k,
            retired=(0,) * k,
            ops=(idle,) * len(self.kinds),
            stale=False,
        )

    def applicable_events(self) -> tuple[str, ...]:
        """The situations this scenario can reach at all: those the pattern has whose needs (as
        declared) the scenario meets (no lease waits without leases, no stores without writers, ...)."""
        sc = self.scenario
        has = {
            "writers": sc.writers > 0,
            "concurrent": not sc.sequential,
            "leases": sc.leases,
            "absent": sc.absent,
            "evictions": sc.evictions,
        }
        return tuple(
            s.name for s in SITUATIONS if s.model and s.applies(sc.pattern) and all(has[need] for need in s.needs)
        )

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

    # -- the explorer's driver -----------------------------------------------------------------

    def successors(self, s: State, *, symmetric: bool = False) -> list[Transition]:
        """Every enabled step from ``s``: (label, next state, events reached).

        ``symmetric=True`` expands only the first of several identical operations in a block
        (readers, writers): under ``canonical`` the others lead to the same states.
        """
        out: list[Transition] = []
        ops = s[OPS]
        r = self.readers
        sequential_busy = self.scenario.sequential and not self.at_rest(s)
        previous = None
        for i, op in enumerate(ops):
            pc = op[PC]
            if pc == DONE:
                continue
            if symmetric and op == previous and i != r:
                continue
            previous = op
            if pc == IDLE and sequential_busy:
                continue
            out += self.op_successors(s, i)
        if self.scenario.evictions:
            for k, c in enumerate(s[CACHE_F]):
                if c != NONE:
                    out.append(self.evict(s, k))
        return out

    def op_successors(self, s: State, i: int, *, leased: bool | None = None) -> list[Transition]:
        """Every step op ``i`` can take next, as its program says.

        ``leased`` says whether its lookup or fill goes through a lease: the explorer leaves it to
        the scenario (and, for a fill, to whether the lookup took one); the conformance judge, which
        learns it only from the call a run makes, passes it in."""
        op = s[OPS][i]
        program = self.programs[self.kinds[i]]
        if op[PC] == IDLE:
            keys = range(self.keys) if op[KEY] == NONE else (op[KEY],)
            out = []
            for k in keys:
                s2, started = self.start(s, i, k)
                out += self._instr(s2, i, started, program, 0, leased)
            return out
        j = op[PC] - 1
        out = self._instr(s, i, op, program, j, leased)
        if op[FLAGS] & WAITED:  # told to wait: it may also load and return without filling
            out += self.load(s, i, op, program, _next_kind(program, j, Kind.LOAD), serve=True)
        return out

    def _instr(
        self, s: State, i: int, op: OpState, program: tuple[Instr, ...], j: int, leased: bool | None = None
    ) -> list[Transition]:
        kind = program[j].kind
        if kind is Kind.LOOKUP:
            return self.lookup(s, i, op, program, j, leased=self.scenario.leases if leased is None else leased)
        if kind is Kind.LOAD:
            return self.load(s, i, op, program, j)
        if kind is Kind.FILL:
            return self.fill(s, i, op, program, j, leased=bool(op[FLAGS] & LEASED) if leased is None else leased)
        if kind is Kind.PUT:
            return [self.put(s, i, op, program, j)]
        if kind is Kind.STORE:
            return [self.store(s, i, op, program, j)]
        if kind is Kind.LOCK:
            return self.lock(s, i, op, program, j)
        if kind is Kind.UNLOCK:
            return [self.unlock(s, i, op, program, j)]
        return [self.invalidate(s, i, op, program, j)]

    # -- the step primitives: one meaning per instruction kind ----------------------------------

    def start(self, s: State, i: int, k: int) -> tuple[State, OpState]:
        """Op ``i`` begins on key ``k``: a read learns which values are already too old to return;
        a write gets its value (the next number, unless the judge gave it one)."""
        op = s[OPS][i]
        if self.kinds[i] == READ:
            started = _new(OpState, (IDLE, k, False, NONE, s[RETIRED][k], 0))
        else:
            value = op[LOADED]
            if value == NONE:
                # Numbered in the order writes reach the DB, not by writer: idle writers are then
                # interchangeable, which is what lets ``canonical`` merge them.
                value = 1
                for j, o in enumerate(s[OPS]):
                    if self.kinds[j] == WRITE and o[PC] != IDLE:
                        value += 1
            started = _new(OpState, (IDLE, k, False, value, 0, 0))
        return s, started

    def lookup(
        self, s: State, i: int, op: OpState, program: tuple[Instr, ...], j: int, *, leased: bool
    ) -> list[Transition]:
        _, k, _, _, mask, flags = op
        by = program[j].by
        found = s[CACHE_F][k]
        if not leased:
            label = (i, by, CACHE, "get", k, NONE, found)
            if found != NONE:
                return [(label, self.finish(s, i, op, found), HIT)]
            return [(label, _with_op(s, i, _new(OpState, (j + 2, k, False, NONE, mask, 0))), MISS)]
        if found != NONE:
            label = (i, by, CACHE, "lease_get", k, NONE, (found, None))
            return [(label, self.finish(s, i, op, found), HIT)]
        if self.lease_out(s, k):
            # Another reader holds the lease: memcache answers "wait and retry".
            if flags & WAITED and self.skip_stutter:
                return []  # retrying again changes nothing: a self-loop
            label = (i, by, CACHE, "lease_get", k, NONE, (None, None))
            waiting = _new(OpState, (j + 1, k, False, NONE, mask, LEASED | WAITED))
            return [(label, _with_op(s, i, waiting), LEASE_WAIT)]
        label = (i, by, CACHE, "lease_get", k, NONE, (None, i))
        return [(label, _with_op(s, i, _new(OpState, (j + 2, k, True, NONE, mask, LEASED))), MISS)]

    def load(
        self, s: State, i: int, op: OpState, program: tuple[Instr, ...], j: int, *, serve: bool = False
    ) -> list[Transition]:
        _, k, token, _, mask, flags = op
        v = s[DB_F][k]
        label = (i, program[j].by, DB, "get", k, NONE, v)
        event = LOAD_EV | (ABSENT_READ if v == 0 and self.absent[k] else 0)
        mask = mask & 1 << v  # once the value is known, only "is it too old" matters
        if serve:
            return [(label, self.finish(s, i, op, v), event)]
        loaded = _new(OpState, (j + 2, k, token, v, mask, flags & ~WAITED))
        out = [(label, _with_op(s, i, loaded), event)]
        if v == 0 and self.absent[k]:
            # Nothing to cache: it may return without a fill (a lease it holds stays out: a liveness
            # matter, which memcache settles by expiring leases, not a safety one).
            out.append((label, self.finish(s, i, loaded, v), event))
        return out

    def fill(
        self, s: State, i: int, op: OpState, program: tuple[Instr, ...], j: int, *, leased: bool
    ) -> list[Transition]:
        """Store the op's value. A lease-guarded fill stores only while the token is valid; for a
        key the DB does not hold, the entry is a negative one (or, with a lease, none at all)."""
        _, k, token, v, _, _ = op
        by = program[j].by
        event = self._overlap(s, k)
        negative = v == 0 and self.absent[k]
        if not leased:
            label = (i, by, CACHE, "set", k, v, None)
            s2 = _with(s, CACHE_F, _put(s[CACHE_F], k, v))
            return [(label, self._after(s2, i, op, program, j), event | FILL_EV | (NEGATIVE_FILL if negative else 0))]
        if not token:
            label = (i, by, CACHE, "lease_set", k, v, False)
            return [(label, self._after(s, i, op, program, j), event | FILL_REFUSED)]
        label = (i, by, CACHE, "lease_set", k, v, True)
        released = _with_op(s, i, _new(OpState, (op[PC], k, False, v, op[MASK], op[FLAGS])))
        stored = _with(released, CACHE_F, _put(s[CACHE_F], k, v))
        out = [(label, self._after(stored, i, op, program, j), event | FILL_EV | (NEGATIVE_FILL if negative else 0))]
        if negative:  # lease_set(key, None, token): release the lease, store nothing
            release = (i, by, CACHE, "lease_set", k, NONE, True)
            out.append((release, self._after(released, i, op, program, j), event))
        return out

    def put(self, s: State, i: int, op: OpState, program: tuple[Instr, ...], j: int) -> Transition:
        _, k, _, value, _, flags = op
        label = (i, program[j].by, DB, "put", k, value, None)
        put = s[PUT][k]
        ops = _put(s[OPS], i, _new(OpState, (j + 2, k, False, value, put, flags)))
        nxt = _new(
            State, (_put(s[DB_F], k, value), s[CACHE_F], _put(s[PUT], k, put | 1 << value), s[RETIRED], ops, s[STALE])
        )
        return label, self._after(nxt, i, ops[i], program, j, advanced=True), WRITE_EV

    def invalidate(self, s: State, i: int, op: OpState, program: tuple[Instr, ...], j: int) -> Transition:
        """Delete the entry and void every outstanding lease token on the key."""
        k = op[KEY]
        label = (i, program[j].by, CACHE, "delete", k, NONE, None)
        return label, self._after(self.remove(s, k), i, op, program, j), INVALIDATE_EV

    def store(self, s: State, i: int, op: OpState, program: tuple[Instr, ...], j: int) -> Transition:
        """Set the write's own value as the entry. Outstanding lease tokens stay valid, as a store's
        ``set`` leaves them (only a delete voids them): leases alone do not close write-through's races."""
        k, v = op[KEY], op[LOADED]
        label = (i, program[j].by, CACHE, "set", k, v, None)
        s2 = _with(s, CACHE_F, _put(s[CACHE_F], k, v))
        return label, self._after(s2, i, op, program, j), STORE_EV

    def lock(self, s: State, i: int, op: OpState, program: tuple[Instr, ...], j: int) -> list[Transition]:
        """Take the key's lock; while another operation holds it, this one cannot step (it waits)."""
        k = op[KEY]
        for o in s[OPS]:
            if o[FLAGS] & HOLDS and o[KEY] == k:
                return []
        label = (i, program[j].by, CACHE, "lock", k, NONE, None)
        held = _new(OpState, (op[PC], k, op[TOKEN], op[LOADED], op[MASK], op[FLAGS] | HOLDS))
        return [(label, self._after(_with_op(s, i, held), i, held, program, j), 0)]

    def unlock(self, s: State, i: int, op: OpState, program: tuple[Instr, ...], j: int) -> Transition:
        k = op[KEY]
        label = (i, program[j].by, CACHE, "unlock", k, NONE, None)
        free = _new(OpState, (op[PC], k, op[TOKEN], op[LOADED], op[MASK], op[FLAGS] & ~HOLDS))
        return label, self._after(_with_op(s, i, free), i, free, program, j), 0

    def evict(self, s: State, k: int) -> Transition:
        """The cache drops an entry on its own (capacity, expiry); leases are untouched."""
        label = (NOBODY, Actor.CACHE, CACHE, "evict", k, NONE, None)
        return label, _with(s, CACHE_F, _put(s[CACHE_F], k, NONE)), EVICTION

    def remove(self, s: State, k: int) -> State:
        ops = list(s[OPS])
        for j, o in enumerate(ops):
            if o[TOKEN] and o[KEY] == k:
                ops[j] = _new(OpState, (o[PC], k, False, o[LOADED], o[MASK], o[FLAGS]))
        return _new(State, (s[DB_F], _put(s[CACHE_F], k, NONE), s[PUT], s[RETIRED], tuple(ops), s[STALE]))

    def _after(
        self, s: State, i: int, op: OpState, program: tuple[Instr, ...], j: int, *, advanced: bool = False
    ) -> State:
        """Move op ``i`` past instruction ``j``; past its last one it finishes."""
        if j + 1 < len(program):
            if advanced:
                return s
            cur = s[OPS][i]
            return _with_op(s, i, _new(OpState, (j + 2, *cur[1:])))
        return self.finish(s, i, s[OPS][i], op[LOADED])

    def finish(self, s: State, i: int, op: OpState, result: int) -> State:
        """Op ``i``'s program is done (or it hit), ``result`` its return value."""
        if self.defer_return:
            token = s[OPS][i][TOKEN]
            return _with_op(s, i, _new(OpState, (RETURNING, op[KEY], token, result, op[MASK], op[FLAGS])))
        return self.complete(s, i, op, result)

    def complete(self, s: State, i: int, op: OpState, result: int) -> State:
        """A read returns ``result`` (stale when the read was told, at its start, that it is too
        old); a write completes, and every value put before it is retired for later reads."""
        ops = _put(s[OPS], i, DONE_OP)
        if self.kinds[i] == READ:
            stale = s[STALE] or (result >= 0 and bool(op[MASK] >> result & 1))
            return _new(State, (s[DB_F], s[CACHE_F], s[PUT], s[RETIRED], ops, stale))
        k = op[KEY]
        retired = _put(s[RETIRED], k, s[RETIRED][k] | op[MASK])
        return _new(State, (s[DB_F], s[CACHE_F], s[PUT], retired, ops, s[STALE]))

    def lease_out(self, s: State, k: int) -> bool:
        """A lease is out on ``k`` exactly while some reader of ``k`` holds an unvoided token."""
        for o in s[OPS]:
            if o[TOKEN] and o[KEY] == k:
                return True
        return False

    def _overlap(self, s: State, k: int) -> int:
        ops = s[OPS]
        for j, o in enumerate(ops):
            if self.kinds[j] == WRITE and IDLE < o[PC] < DONE and o[KEY] == k:
                return FILL_DURING_WRITE
        return 0

    # -- presentation --------------------------------------------------------------------------

    def value_name(self, k: int, v: int, *, entry: bool = False) -> str | None:
        """``v0``, ``v1``, ...; a key's "no value" is None, or ABSENT as a cached (negative) entry."""
        if v == NONE:
            return None
        if v == ABSENT or (v == 0 and self.absent[k]):
            return "ABSENT" if entry else None
        return f"v{v}"

    def step_of(self, label: Label) -> Step:
        i, actor, target, action, k, value, result = label
        op = "-" if i == NOBODY else self.op_names[i]
        if action == "lease_get":
            found, token = result
            shown: object = (
                self.value_name(k, found, entry=True) if found is not None else None,
                None if token is None else f"tok({self.op_names[token]})",
            )
        elif action == "get":
            shown = self.value_name(k, result, entry=target == CACHE)
        else:
            shown = result
        return Step(
            op=op,
            actor=actor,
            target=target,
            action=action,
            key=key_name(k),
            value=self.value_name(k, value, entry=target == CACHE),
            result=shown,
            token=f"tok({op})" if action == "lease_set" else None,
        )

    def canonical(self, s: State) -> State:
        """Readers run one program and writers another, so permuting either gives an equivalent state."""
        r = self.readers
        ops = s[OPS]
        readers, writers = ops[:r], ops[r:]
        sorted_ops = (*sorted(readers), *sorted(writers))
        return s if sorted_ops == ops else _new(State, (*s[:OPS], sorted_ops, s[STALE]))


def with_locks(program: tuple[Instr, ...]) -> tuple[Instr, ...]:
    """The serialising fix applied to a program: the key's lock taken before its first DB call (for
    a read, so after its lookup missed) and released after its last step. A read that returns
    without filling releases it as it completes."""
    first = next(n for n, instr in enumerate(program) if instr.kind in (Kind.LOAD, Kind.PUT))
    by = program[first].by
    return (
        *program[:first],
        Instr(Kind.LOCK, by, strict=False),
        *program[first:],
        Instr(Kind.UNLOCK, by, strict=False),
    )


def _next_kind(program: tuple[Instr, ...], j: int, kind: Kind) -> int:
    return next(n for n in range(j, len(program)) if program[n].kind is kind)


# The hot path builds tuples directly: NamedTuple._replace costs several times more, and the
# explorer does this millions of times. Field indices below name the positions.
_new = tuple.__new__
PC, KEY, TOKEN, LOADED, MASK, FLAGS = range(6)
DB_F, CACHE_F, PUT, RETIRED, OPS, STALE = range(6)


def _put(t: tuple, k: int, v: object) -> tuple:
    return t[:k] + (v,) + t[k + 1 :]


def _with(s: State, field: int, value: object) -> State:
    return _new(State, s[:field] + (value,) + s[field + 1 :])


def _with_op(s: State, i: int, op: OpState) -> State:
    return _with(s, OPS, _put(s[OPS], i, op))
