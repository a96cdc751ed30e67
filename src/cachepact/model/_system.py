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

import itertools
from typing import NamedTuple

import attrs

from ._participants import FLUSH, READ, REFRESH, WRITE, Actor, OpKind
from ._patterns import Instr, Kind, Pattern
from ._properties import EVENTS, SITUATIONS
from ._steps import CACHE, CLOCK, DB, Step

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
REFRESH_EV, REFRESH_DISCARDED, FLUSH_EV, TIMEOUT_EV = (
    _BIT[n] for n in ("refresh", "refresh-discarded", "flush", "time-out")
)
FAULT_EV, FAILED_INVALIDATION_EV, EXPIRY_EV = (_BIT[n] for n in ("fault", "failed-invalidation", "expiry"))

# OpState.flags
LEASED = 1  # the read took a lease at its lookup: its fill is a lease_set
WAITED = 2  # its last lookup was told to wait: it may load and return without filling
HOLDS = 4  # it holds its key's lock (``Scenario.locks``)

# State.marks, per key
DIRTY = 1  # the entry holds a write's value no flush has put into the DB yet (write-behind)
AGED = 2  # the entry has aged past the refresh point since it was stored (refresh-ahead)
PENDING = 4  # an outbox owes the key an invalidation (``Scenario.recovery == "outbox"``)
LEFT_STALE = 8  # the entry is what a write's failed invalidation left: nothing will make it converge
LEFT_EXPIRING = 16  # the same, with a time to live (``Scenario.ttl``): its expiry converges it
LEFT = LEFT_STALE | LEFT_EXPIRING
RECOVERIES = ("give-up", "retry", "outbox", "delete-twice")  # what a write does when its cache step fails
FAILED_CALL = "failed"  # a label's result: the call failed before taking effect (``Scenario.faults``)

# State.broke: what a step did that an invariant forbids, found at the step (the explorer checks
# states, and these are facts about a step, not about the state it leaves). A dirty value dropped or
# overwritten before its flush is no such fact: it is lost only if no flush delivers it (a flush may
# have taken it already), which the state at rest shows (``no_lost_write``).
WENT_BACK = 2  # a flush put a value older than one the DB already had (``flush-order``)
STALE_REFRESH = 4  # a refresh stored a value a write had already replaced (``no-stale-refresh``)


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
    ops: tuple[OpState, ...]  # the explorer: readers, writers, then background workers
    stale: bool  # some read returned a value older than a write that completed before it began
    marks: tuple[int, ...]  # per key: DIRTY, AGED, PENDING, LEFT_STALE
    broke: int  # LOST, WENT_BACK, STALE_REFRESH
    failed: int  # how many calls have failed so far (``Scenario.faults`` is the budget)


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
    # Time moves inside the run: a lock or lease held while the clock passes its timeout is gone
    # (the holder, paused, does not know). Ageing, for a refresh, needs no flag: it is the
    # pattern's own clock.
    clock: bool = False
    # Background workers of each kind the pattern has (refreshers, flushers): two can run at once,
    # as a thread per refresh or a Timer per write does; the fix runs a key's one at a time.
    workers: int = 2
    # Failing stores: how many of the run's calls may fail (before taking effect): a write's cache
    # step (its invalidation or store), and an outbox's invalidations. ``recovery`` is what the write
    # does then (``RECOVERIES``): give up, retry until it succeeds, hand the invalidation to an outbox
    # its transaction writes (a relay deletes later, retrying), or delete before the put and after it.
    faults: int = 0
    recovery: str = "give-up"
    # Entries have a time to live: any entry may expire at any moment (the safety net that bounds
    # what a failed invalidation costs).
    ttl: bool = False

    @property
    def name(self) -> str:
        mode = "sequential" if self.sequential else "interleaved"
        flags = (("leases", self.leases), ("locks", self.locks), ("evictions", self.evictions), ("time", self.clock))
        extras = [x for x, on in flags if on]
        if self.faults:
            extras.append(f"{self.faults} fault(s), {self.recovery}")
        if self.ttl:
            extras.append("a time to live")
        extra = f" with {' and '.join(extras)}" if extras else ""
        start = ", keys absent at the start" if self.absent else ""
        background = "".join(f" + {self.workers} {w.name} worker(s)" for w in self.pattern.background)
        return (
            f"{self.pattern.name}{extra}, {mode}: {self.readers} reader(s) + "
            f"{self.writers} writer(s){background} over {self.keys} key(s){start}"
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
        pattern = scenario.pattern
        self.programs = {READ: pattern.read, WRITE: pattern.write}
        refresh, flush = pattern.background_named("refresh"), pattern.background_named("flush")
        if refresh is not None:
            self.programs[REFRESH] = refresh.program
        if flush is not None:
            self.programs[FLUSH] = flush.program
        if scenario.recovery not in RECOVERIES:
            raise ValueError(f"recovery must be one of {', '.join(RECOVERIES)}, not {scenario.recovery!r}")
        write = self.programs[WRITE]
        # A write's cache step may fail (``faults``) where the write also puts the DB: what must
        # converge is the entry its failed step left beside the value it put.
        self.fallible = scenario.faults > 0 and any(instr.kind is Kind.PUT for instr in write)
        self.outbox = self.fallible and scenario.recovery == "outbox"
        if scenario.recovery in ("outbox", "delete-twice") and not any(i.kind is Kind.INVALIDATE for i in write):
            raise ValueError(f"recovery {scenario.recovery!r} needs a pattern whose write invalidates")
        if self.fallible and scenario.recovery == "delete-twice":
            first = next(instr for instr in write if instr.kind is Kind.INVALIDATE)
            self.programs[WRITE] = (first, *write)  # delete, put, delete
        if scenario.locks:
            self.programs = {kind: with_locks(program) for kind, program in self.programs.items()}
        self.refreshes, self.behind = refresh is not None, flush is not None
        # The fix of a pattern with background work: a refresh stores only while nothing changed
        # its entry since (leases or locks), a key's flushes run one at a time (the lock), a dirty
        # entry stays until its flush has landed and a miss fills only where no entry is.
        self.guarded = scenario.leases or scenario.locks
        self.safe_behind = self.behind and scenario.locks
        # When a flushed entry counts as clean: at the flush's take (a dequeue), or only once its put
        # has landed with the entry still holding that value. The judge, which sees puts and not
        # always takes, asks for the second.
        self.clean_at_put = self.safe_behind
        workers = scenario.workers
        self.kinds: list[OpKind] = (
            [READ] * scenario.readers
            + [WRITE] * scenario.writers
            + [REFRESH] * (workers if self.refreshes else 0)
            + [FLUSH] * (workers if self.behind else 0)
        )
        # Where each block of interchangeable operations begins (readers, writers, each worker kind).
        self.blocks = tuple(n for n, kind in enumerate(self.kinds) if n == 0 or self.kinds[n - 1] != kind)
        self.refreshers = tuple(n for n, kind in enumerate(self.kinds) if kind == REFRESH)
        self.flushers = tuple(n for n, kind in enumerate(self.kinds) if kind == FLUSH)
        # Time moves as a model event when something depends on it: entries age (refresh-ahead), or
        # locks and leases time out (``Scenario.clock``).
        self.ticks = self.refreshes or (scenario.clock and (scenario.leases or scenario.locks))
        self.readers = scenario.readers
        self.keys = scenario.keys
        self.absent = absent if absent is not None else (scenario.absent,) * scenario.keys
        # A reader that retries a lease while another still holds it changes no state; reachability
        # does not need those self-loops, and the explorer asks for them to be left out.
        self.skip_stutter = False
        # The conformance judge sees an operation return after its last step: ``finish`` then only
        # marks it RETURNING, with its result, and ``complete`` finishes it at the return.
        self.defer_return = False
        counts: dict[OpKind, int] = {}
        self.op_names = []
        for kind in self.kinds:
            counts[kind] = counts.get(kind, 0) + 1
            self.op_names.append(f"{kind.value}{counts[kind]}")

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
            marks=(0,) * k,
            broke=0,
            failed=0,
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
            "clock": sc.clock and (sc.leases or sc.locks),
            "fix": sc.leases or sc.locks,
            "workers": sc.workers > 1 or sc.readers > 1,
            "faults": sc.faults > 0 and self.fallible,
            "ttl": sc.ttl,
        }
        return tuple(
            s.name for s in SITUATIONS if s.model and s.applies(sc.pattern) and all(has[need] for need in s.needs)
        )

    # -- properties (named, over states) -------------------------------------------------------

    @staticmethod
    def idle(s: State) -> bool:
        """No operation and no background work in flight."""
        for op in s[OPS]:
            if IDLE < op[PC] < DONE:
                return False
        return True

    @staticmethod
    def at_rest(s: State) -> bool:
        """Idle, and no dirty value waits for its flush, no invalidation for an outbox's relay (that
        is work left to do)."""
        if not System.idle(s):
            return False
        for m in s[MARKS]:
            if m & (DIRTY | PENDING):
                return False
        return True

    @staticmethod
    def coherent_at_rest(s: State) -> bool:
        """Whenever no operation is in flight, every cached entry equals the DB value (but for an
        entry a failed invalidation left: ``converges`` judges that one)."""
        if not System.at_rest(s):
            return True
        return all(c == NONE or c == d or m & LEFT for c, d, m in zip(s.cache, s.db, s.marks))

    @staticmethod
    def converges(s: State) -> bool:
        """At rest, no entry a write's failed invalidation left stands for a value the DB no longer
        holds with nothing to converge it: no retry made it, no relay owes it, no time to live ends it."""
        if not System.at_rest(s):
            return True
        return all(c == NONE or c == d or not m & LEFT_STALE for c, d, m in zip(s.cache, s.db, s.marks))

    @staticmethod
    def fresh_read(s: State) -> bool:
        """No read returned a value older than one whose write completed before the read began."""
        return not s.stale

    @staticmethod
    def no_lost_write(s: State) -> bool:
        """At rest (nothing in flight, nothing left to flush), the DB holds each key's last completed
        write: no value older than a completed write's. A dirty entry dropped or overwritten before
        any flush took it leaves the DB behind exactly so."""
        if not System.at_rest(s):
            return True
        return all(not (r >> d & 1) for r, d in zip(s[RETIRED], s[DB_F]))

    @staticmethod
    def flush_order(s: State) -> bool:
        """No flush sent the DB back to an older write's value."""
        return not s[BROKE] & WENT_BACK

    @staticmethod
    def no_stale_refresh(s: State) -> bool:
        """No refresh stored a value a write had replaced after the refresh's load."""
        return not s[BROKE] & STALE_REFRESH

    # -- the explorer's driver -----------------------------------------------------------------

    def successors(self, s: State, *, symmetric: bool = False) -> list[Transition]:
        """Every enabled step from ``s``: (label, next state, events reached).

        ``symmetric=True`` expands only the first of several identical operations in a block
        (readers, writers): under ``canonical`` the others lead to the same states.
        """
        out: list[Transition] = []
        ops = s[OPS]
        blocks = self.blocks
        kinds = self.kinds
        sequential_busy = self.scenario.sequential and not self.idle(s)
        previous = None
        for i, op in enumerate(ops):
            pc = op[PC]
            if pc == DONE:
                continue
            if symmetric and op == previous and i not in blocks:
                continue
            previous = op
            if pc == IDLE:
                if sequential_busy:
                    continue
                kind = kinds[i]
                if kind == REFRESH:
                    continue  # a refresh starts only from a read's hit on an aged entry
                if kind == FLUSH:
                    out += self.flush_starts(s, i)
                    continue
            out += self.op_successors(s, i)
        if self.scenario.evictions or self.scenario.ttl:
            for k, c in enumerate(s[CACHE_F]):
                if c != NONE and not (self.safe_behind and s[MARKS][k] & DIRTY):
                    out.append(self.evict(s, k))
        if self.outbox:
            for k, m in enumerate(s[MARKS]):
                if m & PENDING:
                    out += self.relay(s, k)
        if self.ticks:
            tick = self.tick(s)
            if tick is not None:
                out.append(tick)
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
        if self.fallible and self.kinds[i] == WRITE and kind in (Kind.INVALIDATE, Kind.STORE):
            return self.cache_step(s, i, op, program, j)
        if kind is Kind.STORE:
            return [self.store(s, i, op, program, j)]
        if kind is Kind.LOCK:
            return self.lock(s, i, op, program, j)
        if kind is Kind.UNLOCK:
            return [self.unlock(s, i, op, program, j)]
        if kind is Kind.REFRESH:
            return [self.refresh(s, i, op, program, j)]
        if kind is Kind.TAKE:
            return [self.take(s, i, op, program, j)]
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
                return [(label, self.hit(s, i, op, found), HIT)]
            return [(label, _with_op(s, i, _new(OpState, (j + 2, k, False, NONE, mask, 0))), MISS)]
        if found != NONE:
            label = (i, by, CACHE, "lease_get", k, NONE, (found, None))
            return [(label, self.hit(s, i, op, found), HIT)]
        if self.lease_out(s, k):
            # Another reader holds the lease: memcache answers "wait and retry".
            if flags & WAITED and self.skip_stutter:
                return []  # retrying again changes nothing: a self-loop
            label = (i, by, CACHE, "lease_get", k, NONE, (None, None))
            waiting = _new(OpState, (j + 1, k, False, NONE, mask, LEASED | WAITED))
            return [(label, _with_op(s, i, waiting), LEASE_WAIT)]
        label = (i, by, CACHE, "lease_get", k, NONE, (None, i))
        return [(label, _with_op(s, i, _new(OpState, (j + 2, k, True, NONE, mask, LEASED))), MISS)]

    def hit(self, s: State, i: int, op: OpState, found: int) -> State:
        """A read served by the cache returns the entry; in refresh-ahead, a hit on an entry that has
        aged also starts its refresh on an idle worker (with the fix, only if none of the key's is
        in flight already, as Caffeine keeps one refresh per key)."""
        s = self.finish(s, i, op, found)
        k = op[KEY]
        if not (self.refreshes and s[MARKS][k] & AGED):
            return s
        ops = s[OPS]
        if self.guarded and any(ops[n][PC] != IDLE and ops[n][KEY] == k for n in self.refreshers):
            return s
        for n in self.refreshers:
            if ops[n][PC] == IDLE:
                # The refresh holds a token no change of the entry has voided yet (a write's store
                # or delete voids it): the guarded refresh stores only while it is valid.
                return _with_op(s, n, _new(OpState, (1, k, True, NONE, 0, 0)))
        return s

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
        if self.safe_behind:
            # The safe write-behind fills only where no entry is (add, SET NX): a dirty entry a
            # write stored after this read missed is never overwritten by the DB's older value.
            stored = s[CACHE_F][k] == NONE
            label = (i, by, CACHE, "add", k, v, stored)
            s2 = self._set_entry(s, k, v) if stored else s
            event = (event | FILL_EV | (NEGATIVE_FILL if negative else 0)) if stored else 0
            return [(label, self._after(s2, i, op, program, j), event)]
        if not leased:
            label = (i, by, CACHE, "set", k, v, None)
            s2 = self._set_entry(s, k, v)
            return [(label, self._after(s2, i, op, program, j), event | FILL_EV | (NEGATIVE_FILL if negative else 0))]
        if not token:
            label = (i, by, CACHE, "lease_set", k, v, False)
            return [(label, self._after(s, i, op, program, j), event | FILL_REFUSED)]
        label = (i, by, CACHE, "lease_set", k, v, True)
        released = _with_op(s, i, _new(OpState, (op[PC], k, False, v, op[MASK], op[FLAGS])))
        stored = self._set_entry(released, k, v)
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
        marks, broke, event = s[MARKS], s[BROKE], WRITE_EV
        if self.kinds[i] == FLUSH:
            event |= FLUSH_EV
            if self.newer_than(k, value) & put:  # the DB had already received a newer write's value
                broke |= WENT_BACK
            if self.clean_at_put and s[CACHE_F][k] == value:  # landed: the entry it flushed is clean now
                marks = _put(marks, k, marks[k] & ~DIRTY)
        nxt = _new(
            State,
            (
                _put(s[DB_F], k, value),
                s[CACHE_F],
                _put(s[PUT], k, put | 1 << value),
                s[RETIRED],
                ops,
                s[STALE],
                marks,
                broke,
                s[FAILED],
            ),
        )
        return label, self._after(nxt, i, ops[i], program, j, advanced=True), event

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
        s2 = self._set_entry(self._void_refreshes(s, k), k, v, dirty=self.behind)
        if self.behind and self.kinds[i] == WRITE:
            # No DB put of its own: the write's place in the key's history is its store, and every
            # value numbered before it is older (writes are numbered as they start, and start here).
            op = _new(OpState, (op[PC], k, op[TOKEN], v, self.older_than(k, v), op[FLAGS]))
            s2 = _with_op(s2, i, op)
        return label, self._after(s2, i, op, program, j), STORE_EV

    def refresh(self, s: State, i: int, op: OpState, program: tuple[Instr, ...], j: int) -> Transition:
        """A refresh stores what it loaded. Guarded (the fix), it is discarded when a write changed
        the entry since the refresh began, or the entry holds a value no flush has put yet."""
        _, k, token, v, _, _ = op
        by = program[j].by
        dirty = s[MARKS][k] & DIRTY
        if self.guarded and (not token or dirty):
            label = (i, by, CACHE, "discard", k, v, None)
            return label, self._after(s, i, op, program, j), REFRESH_DISCARDED
        broke = s[BROKE]
        if v != s[DB_F][k] and v != s[CACHE_F][k] and (not token or s[RETIRED][k] >> v & 1):
            broke |= STALE_REFRESH  # a write replaced v after the refresh loaded it (judged by effect)
        label = (i, by, CACHE, "set", k, v, None)
        s2 = self._set_entry(s, k, v)
        if broke != s[BROKE]:
            s2 = _with(s2, BROKE, broke)
        return label, self._after(s2, i, op, program, j), REFRESH_EV

    def take(self, s: State, i: int, op: OpState, program: tuple[Instr, ...], j: int) -> Transition:
        """A flush takes the dirty value it will put. Unguarded, the entry counts as clean from here
        (a queue's dequeue); guarded, only once the put has landed. A value no longer there (it was
        flushed already, or dropped) leaves nothing to put: the flush ends."""
        k = op[KEY]
        found = s[CACHE_F][k]
        label = (i, program[j].by, CACHE, "get", k, NONE, found)
        if found == NONE or not s[MARKS][k] & DIRTY:
            return label, self.finish(s, i, op, NONE), 0
        taken = _with_op(s, i, _new(OpState, (op[PC], k, op[TOKEN], found, op[MASK], op[FLAGS])))
        if not self.clean_at_put:
            taken = _with(taken, MARKS, _put(s[MARKS], k, s[MARKS][k] & ~DIRTY))
        return label, self._after(taken, i, taken[OPS][i], program, j), 0

    def flush_starts(self, s: State, i: int) -> list[Transition]:
        """The clock starts a flush on idle worker ``i`` for any key with a dirty value."""
        out: list[Transition] = []
        program = self.programs[FLUSH]
        for k, m in enumerate(s[MARKS]):
            if m & DIRTY:
                started = _new(OpState, (IDLE, k, False, NONE, 0, 0))
                out += self._instr(s, i, started, program, 0)
        return out

    def tick(self, s: State) -> Transition | None:
        """Time passes: every entry ages (refresh-ahead), and with ``Scenario.clock`` every lock and
        lease held times out (its holder, paused, goes on believing it holds it). None when that
        changes nothing."""
        marks = s[MARKS]
        if self.refreshes:
            marks = tuple(m | AGED if c != NONE else m for m, c in zip(marks, s[CACHE_F]))
        ops = s[OPS]
        if self.scenario.clock:
            ops = tuple(
                _new(
                    OpState, (o[PC], o[KEY], False if kind == READ else o[TOKEN], o[LOADED], o[MASK], o[FLAGS] & ~HOLDS)
                )
                for o, kind in zip(ops, self.kinds)
            )
        if marks == s[MARKS] and ops == s[OPS]:
            return None
        timed_out = TIMEOUT_EV if ops != s[OPS] else 0
        label = (NOBODY, Actor.CACHE, CLOCK, "tick", NONE, NONE, None)
        return label, _new(State, (*s[:OPS], ops, s[STALE], marks, s[BROKE], s[FAILED])), timed_out

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

    def cache_step(self, s: State, i: int, op: OpState, program: tuple[Instr, ...], j: int) -> list[Transition]:
        """A write's invalidation or store where calls fail (``faults``): it succeeds, or, while the
        run's budget lasts, fails before taking effect, and the write recovers as ``recovery`` says.
        With an outbox the write's step is to record the invalidation (in its transaction, which
        cannot fail apart from the put): a relay makes it later."""
        kind = program[j].kind
        if s[OPS][i] is not op:  # its first step (delete-twice): the op as ``start`` began it
            s = _with_op(s, i, op)
        if self.outbox and kind is Kind.INVALIDATE:
            k = op[KEY]
            label = (i, program[j].by, DB, "outbox", k, NONE, None)
            owed = _with(s, MARKS, _put(s[MARKS], k, s[MARKS][k] | PENDING))
            return [(label, self._after(owed, i, op, program, j), 0)]
        done = self.store(s, i, op, program, j) if kind is Kind.STORE else self.invalidate(s, i, op, program, j)
        if s[FAILED] >= self.scenario.faults:
            return [done]
        k = op[KEY]
        action, value = ("set", op[LOADED]) if kind is Kind.STORE else ("delete", NONE)
        label = (i, program[j].by, CACHE, action, k, value, FAILED_CALL)
        failed = _with(s, FAILED, s[FAILED] + 1)
        if self.scenario.recovery == "retry":  # it tries again: the same step, one failure fewer left
            return [done, (label, failed, FAULT_EV | FAILED_INVALIDATION_EV)]
        left = LEFT_EXPIRING if self.scenario.ttl else LEFT_STALE
        failed = _with(failed, MARKS, _put(s[MARKS], k, s[MARKS][k] | left))
        return [done, (label, self._after(failed, i, op, program, j), FAULT_EV | FAILED_INVALIDATION_EV)]

    def relay(self, s: State, k: int) -> list[Transition]:
        """The outbox's relay makes an invalidation it owes: it deletes the entry (voiding leases, as
        any delete), or, while the budget lasts, fails and tries again later."""
        label = (NOBODY, Actor.APP, CACHE, "delete", k, NONE, None)
        done = self.remove(s, k)
        done = _with(done, MARKS, _put(done[MARKS], k, done[MARKS][k] & ~PENDING))
        out = [(label, done, INVALIDATE_EV)]
        if s[FAILED] < self.scenario.faults:
            failed = (NOBODY, Actor.APP, CACHE, "delete", k, NONE, FAILED_CALL)
            out.append((failed, _with(s, FAILED, s[FAILED] + 1), FAULT_EV | FAILED_INVALIDATION_EV))
        return out

    def evict(self, s: State, k: int) -> Transition:
        """The cache drops an entry on its own (capacity, expiry); leases are untouched."""
        if self.scenario.ttl and not self.scenario.evictions:
            return (NOBODY, Actor.CACHE, CACHE, "expire", k, NONE, None), self._dropped(s, k), EXPIRY_EV
        label = (NOBODY, Actor.CACHE, CACHE, "evict", k, NONE, None)
        return label, self._dropped(s, k), EVICTION

    def _dropped(self, s: State, k: int) -> State:
        s2 = _with(s, CACHE_F, _put(s[CACHE_F], k, NONE))
        if s[MARKS][k]:  # a dirty value dropped before a flush took it: no flush will put it now
            s2 = _with(s2, MARKS, _put(s[MARKS], k, s[MARKS][k] & PENDING))
        return s2

    def remove(self, s: State, k: int) -> State:
        ops = list(s[OPS])
        for j, o in enumerate(ops):
            if o[TOKEN] and o[KEY] == k:
                ops[j] = _new(OpState, (o[PC], k, False, o[LOADED], o[MASK], o[FLAGS]))
        # The entry is gone: not dirty, not aged, no longer what a failed invalidation left; an
        # invalidation an outbox still owes stays owed.
        marks = s[MARKS] if not s[MARKS][k] else _put(s[MARKS], k, s[MARKS][k] & PENDING)
        cache = _put(s[CACHE_F], k, NONE)
        return _new(State, (s[DB_F], cache, s[PUT], s[RETIRED], tuple(ops), s[STALE], marks, s[BROKE], s[FAILED]))

    def _set_entry(self, s: State, k: int, v: int, *, dirty: bool = False) -> State:
        """The entry for ``k`` is ``v`` now, fresh (not aged); dirty when a write-behind write stored
        it. A dirty value overwritten by another (a fill, a refresh) before a flush took it is lost."""
        s2 = _with(s, CACHE_F, _put(s[CACHE_F], k, v))
        # A value the DB no longer holds, stored where a failed invalidation left an entry (a fill
        # whose lease that invalidation did not void), is still its doing: nothing converged.
        left = s[MARKS][k] & LEFT if v != s[DB_F][k] else 0
        mark = (DIRTY if dirty else 0) | (s[MARKS][k] & PENDING) | left
        return s2 if s[MARKS][k] == mark else _with(s2, MARKS, _put(s[MARKS], k, mark))

    def _void_refreshes(self, s: State, k: int) -> State:
        """A write changed ``k``'s entry: a refresh of it in flight may no longer store (guarded)."""
        if not self.refreshes:
            return s
        ops = s[OPS]
        for n, kind in enumerate(self.kinds):  # the judge adds refreshes as they begin
            o = ops[n]
            if kind == REFRESH and o[TOKEN] and o[KEY] == k:
                s = _with_op(s, n, _new(OpState, (o[PC], k, False, o[LOADED], o[MASK], o[FLAGS])))
        return s

    # A key's write order: which values are older, which newer, than ``v``. In the model writes are
    # numbered in the order they take effect (a write-behind write starts with its store); the judge,
    # whose writes are numbered as they begin, orders them by their stores instead.
    def older_than(self, k: int, v: int) -> int:
        return (1 << v) - 1

    def newer_than(self, k: int, v: int) -> int:
        return -1 << (v + 1)

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
        """Op ``i``'s program is done (or it hit), ``result`` its return value. A background worker
        goes back to idle: it may be started again."""
        if self.kinds[i] in (REFRESH, FLUSH):
            return _with_op(s, i, _IDLE_OP)
        if self.defer_return:
            token = s[OPS][i][TOKEN]
            return _with_op(s, i, _new(OpState, (RETURNING, op[KEY], token, result, op[MASK], op[FLAGS])))
        return self.complete(s, i, op, result)

    def join(self, s: State, i: int, v: int) -> State:
        """Read ``i``, which missed, takes ``v``, which another read of its key loaded while it was in
        flight, and is ready to return it: request coalescing (Go's ``singleflight``, an asyncio task
        or a ``Future`` shared between requests). It loads nothing and fills nothing itself; whether
        ``v`` is fresh enough for it is judged by its own start, as for any value it returns."""
        op = s[OPS][i]
        joined = _new(OpState, (RETURNING, op[KEY], op[TOKEN], v, op[MASK] & 1 << v, op[FLAGS] & ~WAITED))
        return _with_op(s, i, joined)

    def complete(self, s: State, i: int, op: OpState, result: int) -> State:
        """A read returns ``result`` (stale when the read was told, at its start, that it is too
        old); a write completes, and every value put before it is retired for later reads."""
        ops = _put(s[OPS], i, DONE_OP)
        if self.kinds[i] == READ:
            stale = s[STALE] or (result >= 0 and bool(op[MASK] >> result & 1))
            return _new(State, (s[DB_F], s[CACHE_F], s[PUT], s[RETIRED], ops, stale, s[MARKS], s[BROKE], s[FAILED]))
        k = op[KEY]
        retired = _put(s[RETIRED], k, s[RETIRED][k] | op[MASK])
        return _new(State, (s[DB_F], s[CACHE_F], s[PUT], retired, ops, s[STALE], s[MARKS], s[BROKE], s[FAILED]))

    def lease_out(self, s: State, k: int) -> bool:
        """A lease is out on ``k`` exactly while some reader of ``k`` holds an unvoided token (a
        refresh's token is no lease)."""
        if self.refreshes:
            kinds = self.kinds
            return any(o[TOKEN] and o[KEY] == k and kinds[n] == READ for n, o in enumerate(s[OPS]))
        for o in s[OPS]:
            if o[TOKEN] and o[KEY] == k:
                return True
        return False

    def _overlap(self, s: State, k: int) -> int:
        ops = s[OPS]
        for j, o in enumerate(ops):
            if self.kinds[j] in (WRITE, FLUSH) and IDLE < o[PC] < DONE and o[KEY] == k:
                return FILL_DURING_WRITE
        if s[MARKS][k] & DIRTY:  # a write-behind write whose flush has not landed is still going on
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
        if target == CLOCK:
            return Step(op=op, actor=actor, target=CLOCK, action="tick", key=None)
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
        if result == FAILED_CALL:  # failed before taking effect: the caller got the store's error
            error = "CacheError" if target == CACHE else "DBError"
            return Step(
                op=op,
                actor=actor,
                target=target,
                action=action,
                key=key_name(k),
                value=self.value_name(k, value, entry=target == CACHE),
                fault="before",
                error=error,
            )
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
        """Readers run one program, writers another, each kind of background worker its own, so
        permuting the operations of a block gives an equivalent state."""
        ops = s[OPS]
        blocks = self.blocks
        if len(blocks) == 2:  # readers and writers: the common case, kept cheap
            r = blocks[1]
            sorted_ops = (*sorted(ops[:r]), *sorted(ops[r:]))
        else:
            bounds = (*blocks, len(ops))
            sorted_ops = tuple(o for a, b in itertools.pairwise(bounds) for o in sorted(ops[a:b]))
        return s if sorted_ops == ops else _new(State, (*s[:OPS], sorted_ops, *s[STALE:]))


def with_locks(program: tuple[Instr, ...]) -> tuple[Instr, ...]:
    """The serialising fix applied to a program: the key's lock taken before its first DB call (for
    a read, so after its lookup missed) and released after its last step. A read that returns
    without filling releases it as it completes."""
    first = next(n for n, instr in enumerate(program) if instr.kind in (Kind.LOAD, Kind.PUT, Kind.TAKE, Kind.STORE))
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
DB_F, CACHE_F, PUT, RETIRED, OPS, STALE, MARKS, BROKE, FAILED = range(9)
_IDLE_OP = OpState(IDLE, NONE, False, NONE, 0, 0)


def _put(t: tuple, k: int, v: object) -> tuple:
    return t[:k] + (v,) + t[k + 1 :]


def _with(s: State, field: int, value: object) -> State:
    return _new(State, s[:field] + (value,) + s[field + 1 :])


def _with_op(s: State, i: int, op: OpState) -> State:
    return _with(s, OPS, _put(s[OPS], i, op))
