"""Refinement checking: a recorded run, one observed step at a time, against the pattern's programs.

The judge of a conformance run steps the model: every observed call is matched to the step its
operation's program allows at that moment, taken with the same primitives the explorer uses
(``System.lookup``, ``load``, ``fill``, ``put``, ``invalidate``). Refinement is up to stuttering and
judged by effect:

* a call that changes nothing at that moment (a lookup, a store of what is already cached, an
  ``add`` that did not store, a refused ``lease_set``, a delete of nothing, a re-put) is a stutter;
* a program step whose effect would be nil at that moment may be left out of the run (a write's
  invalidation while nothing is cached and no lease is out; a fill while an entry is already there
  or there is nothing to cache; a lookup, whose outcome is then read off the state);
* the cache may drop any entry at any moment: a removal other than a write's own invalidation
  after its put (an eviction, a delete before the put, a read's, a second one) removes what it
  removes, and a read may treat an entry as expired once time has passed since its fill (it then
  loads and refills);
* lookups may be repeated; while an operation has done nothing but look up, its latest lookup
  decides whether it hit.

Any other step is the culprit, and the kind of step it is names the invariant it breaks.

The judge keeps the state in step with what the stores hold: the caller reports, with each call,
the key's entry and lease after it (``Obs.after``), so the model never drifts from the run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import attrs

from ...model._participants import BACKGROUND, FLUSH, READ, REFRESH, WRITE, Actor
from ...model._patterns import Instr, Kind
from ...model._properties import BY_NAME
from ...model._steps import CACHE, DB
from ...model._system import (
    ABSENT,
    BROKE,
    CACHE_F,
    DB_F,
    DIRTY,
    DONE,
    EVENTS,
    FILL_DURING_WRITE,
    FLAGS,
    IDLE,
    INVALIDATE_EV,
    KEY,
    LEASED,
    LOADED,
    MARKS,
    MASK,
    NONE,
    OPS,
    PC,
    PUT,
    REFRESH_DISCARDED,
    RETIRED,
    RETURNING,
    TOKEN,
    WAITED,
    WENT_BACK,
    OpState,
    Scenario,
    State,
    System,
    _new,
    _put,
    _with,
    _with_op,
)
from . import rules

# The invariant a wrong participant, or a wrong value, breaks at each kind of step.
# The model's label for each kind of observed call: its target and the actions it may be.
_LABELS = {
    Kind.LOOKUP: (CACHE, ("get", "lease_get")),
    Kind.LOAD: (DB, ("get",)),
    Kind.FILL: (CACHE, ("set", "lease_set")),
    Kind.PUT: (DB, ("put",)),
    Kind.INVALIDATE: (CACHE, ("delete",)),
    Kind.STORE: (CACHE, ("set",)),
}
_VALUED = (Kind.FILL, Kind.PUT, Kind.STORE)

_WHO = {
    Kind.LOAD: ("who-loads", "wrong-loader"),
    Kind.FILL: ("who-populates", "wrong-filler"),
    Kind.PUT: ("write-order", "wrong-writer"),
}


class Obs(NamedTuple):
    """One recorded call, abstracted to the model's terms (a NamedTuple: one is made per call).

    ``kind`` is the program step it would be (a delete is ``INVALIDATE``); ``value`` what a fill
    stored or a put wrote; ``result`` a lookup's ``(found, granted, wait)`` or a load's value;
    ``changed`` whether the call changed the entry, the DB or a lease; ``after`` the key's entry
    and whether a lease is out on it, just after the call.
    """

    kind: Kind
    actor: Actor
    key: int
    value: int = NONE
    result: object = None
    leased: bool = False
    changed: bool = True
    after: tuple[int, bool] = (NONE, False)


@attrs.frozen
class Rejection:
    """A step the program does not allow: the invariant it breaks, why (``code``, one of the
    invariant's declared messages, and its ``fields``), and what was allowed. A structured value:
    the judge asks ``code``, never the English."""

    invariant: str
    code: str
    fields: dict[str, str] = attrs.field(factory=dict, eq=False)
    allowed: tuple[tuple, ...] = ()  # (kind or "return", actor or None, key, value)

    @property
    def reason(self) -> str:
        return BY_NAME[self.invariant].message(self.code, self.fields)


class _Op:
    """What the judge remembers of an operation beside its model state (one made per operation, so
    a plain slotted class: attrs' generated init costs more on this path)."""

    __slots__ = (
        "effective",
        "faulted",
        "found_claim",
        "hit",
        "joinable",
        "key",
        "kind",
        "lease_only",
        "leased_once",
        "load_failed",
        "loaded",
        "looked",
        "name",
        "nil_ok",
        "overlapped",
        "put_at_load",
        "put_failed",
        "refusal_reason",
        "refused_unexplained",
        "removed_early",
        "removed_in_tx",
        "seen",
        "staged",
        "start_empty",
        "start_mask",
        "stored_undecodable",
    )

    def __init__(self, kind: str, name: str, key: int, start_mask: int) -> None:
        self.kind = kind  # READ | WRITE
        self.name = name
        self.key = key
        self.start_mask = start_mask  # a read: values already too old when it began
        self.looked = False  # it has looked the key up at least once
        self.seen = 0  # a read: bit v = a look after its load found v, put after that load (it may return v)
        self.joinable = 0  # a read: bit v = another read of its key, in flight with it, loaded v
        self.loaded = -1  # a read: the value it loaded from the DB itself (-1: none yet)
        self.put_at_load = -1  # a read: the values the DB had received when it loaded (all, before then)
        self.start_empty = False  # a read: the key had no entry when it began
        self.effective = False  # it has made a step that changed something (or loaded)
        self.hit = False  # it is returning a value its lookup found
        self.nil_ok = False  # its current instruction's effect was nil at some moment of its own steps
        self.stored_undecodable = ""  # what it stored that the caller could not decode (for the report)
        self.overlapped = False  # a read: a write of its key began while it was in flight
        self.leased_once = False  # a read: its first lease_get (which may teach the judge its cache key)
        self.lease_only = False  # a read: taking a lease is all it has done (it has not loaded yet)
        self.found_claim = ""  # a read: another operation's claim it found (a lease, a lock, a marker)
        self.refused_unexplained = False  # a read: a conditional fill refused with no reason the run shows
        self.refusal_reason = ""  # a read: why the judge knows its fill was refused (a version moved on)
        self.removed_early = False  # a write: it deleted its own key's entry before its DB put
        self.staged = False  # a write: its put is staged in a transaction not yet committed
        self.put_failed = False  # a write: its put (or commit) failed before taking effect, none landed since
        self.removed_in_tx = False  # a write: that early delete came inside its uncommitted transaction
        self.faulted = False  # a call of its failed (--faults)
        self.load_failed = False  # a read: its last load failed (what it fills now poisons the entry)


Names = Callable[[int, int], str]  # (key, value) -> how reports write a value


_STORED_FIRST = ("write-order", "stored-first")


@functools.cache
def _scenario(pattern: object, keys: int) -> Scenario:
    # No operations and no workers to begin with: the judge adds each as the run begins it.
    return Scenario(pattern=pattern, readers=0, writers=0, keys=keys, workers=0)  # type: ignore[arg-type]


@functools.cache
def _writes(pattern: object) -> tuple[bool, bool]:
    """Whether the pattern's write invalidates, and whether it stores (a judge is made per run)."""
    return pattern.has(Kind.INVALIDATE), pattern.has(Kind.STORE)  # type: ignore[attr-defined]


DONE_IDLE = OpState(DONE, NONE, False, NONE, 0, 0)


def _index(program: tuple[Instr, ...], kind: Kind) -> int:
    return next(n for n, instr in enumerate(program) if instr.kind is kind)


@functools.cache
def _nilable(pattern: object) -> dict[str, frozenset[int]]:
    """The pcs at which an op's current instruction may be left out when its effect is nil."""
    programs = {READ: pattern.read, WRITE: pattern.write}  # type: ignore[attr-defined]
    nilable = {
        kind: frozenset(j + 1 for j, instr in enumerate(program) if instr.kind in (Kind.FILL, Kind.INVALIDATE))
        for kind, program in programs.items()
    }
    # Background work owes no step: what it does is judged by effect, what it leaves out by the state
    # it leaves (a flush never made is a write the DB lacks at rest).
    return {**nilable, REFRESH: frozenset(), FLUSH: frozenset()}


class Refinement:
    """The judge's model: a growing set of operations over one pattern, stepped observation by observation."""

    def __init__(
        self,
        pattern: object,
        *,
        keys: int,
        absent: tuple[bool, ...],
        key_names: tuple[str, ...],
        value_name: Names,
    ) -> None:
        self.system = System(_scenario(pattern, keys), absent=absent)
        self.system.defer_return = True
        self.pattern = pattern
        self.state: State = self.system.initial()
        self.ops: list[_Op] = []  # by slot: the op in it now
        self.key_names = key_names
        self.value_name = value_name
        self.reached: set[str] = set()
        self.running = 0  # operations begun and not yet returned
        self._free: list[int] = []  # slots of ops that returned, for the next op to reuse
        self.clock_moves = 0  # how often the run moved the clock on
        self._nilable = _nilable(pattern)
        # A write's cache store is the write program's STORE where it has one (write-through); in a
        # pattern whose write invalidates, it is a store where a delete belongs.
        self._invalidates, self._stores = _writes(pattern)
        self.filled_at: dict[int, int] = {}  # key -> clock_moves when its entry was filled (not dropped since)
        # Background work: a key's write order is the order of its writes' stores (write-behind), and
        # an entry counts as clean once a flush's put of its value has landed.
        self.system.clean_at_put = True
        self.system.older_than = self._older_than  # type: ignore[method-assign]
        self.system.newer_than = self._newer_than  # type: ignore[method-assign]
        self.stored: list[list[int]] = [[0] for _ in range(keys)]  # per key: write values in store order
        self.writer_of: dict[tuple[int, int], str] = {}  # (key, value) -> the write that wrote it
        # Per key: how its last dirty value went before a flush put it (dropped by the cache, or
        # overwritten by a read's fill): lost, if no flush delivers it, which the state at rest says.
        self.lost_how: dict[int, str] = {}
        self.lost_step: dict[int, int] = {}  # ... and the run's step that did it (the culprit)
        self.at = -1  # the run's index of the step being judged (the judge sets it)

    # -- operations ------------------------------------------------------------------------------

    def begin(self, kind: str, name: str, key: int, value: int = NONE) -> int:
        """An operation starts now: a read learns which values are already too old to return.

        The op's index is a slot in the model's state, reused once its op has returned: a long
        sequential run keeps one op in the state, not every op it ever ran."""
        sys_ = self.system
        s = self.state
        # A read starts knowing which values are already too old to return; a write, its value; a
        # refresh holds a token no change of its entry has voided yet.
        mask = s[RETIRED][key] if kind == READ else 0
        started = _new(OpState, (1, key, kind == REFRESH, value if kind == WRITE else NONE, mask, 0))
        if kind == WRITE:
            self.writer_of[key, value] = name
        if self._free:
            i = self._free.pop()
            sys_.kinds[i], sys_.op_names[i] = kind, name
            self.state = _with_op(s, i, started)
        else:
            i = len(self.ops)
            sys_.kinds.append(kind)
            sys_.op_names.append(name)
            self.ops.append(None)  # type: ignore[arg-type]
            self.state = _with(s, OPS, (*s[OPS], started))
        op = _Op(kind, name, key, mask)
        op.start_empty = s[CACHE_F][key] == NONE
        if kind == READ:  # what reads in flight have loaded, it may take from them (``join``)
            for n, other in enumerate(self.ops):
                live = other is not None and other.kind == READ and other.key == key and s[OPS][n][PC] != DONE
                if live and other.loaded >= 0:
                    op.joinable |= 1 << other.loaded
        self.ops[i] = op
        self.running += 1
        if kind in BACKGROUND:
            return i
        if mask:
            self.reached.add("read-after-write")
        # A read and a write of one key overlap whichever began first (a read that begins while a
        # write holds the key's lock, and fills once it is done, overlapped it too).
        ops_state = self.state[OPS]
        for n, other in enumerate(self.ops):
            if n == i or other is None or other.key != key or other.kind == kind or ops_state[n][PC] == DONE:
                continue
            if kind == WRITE:
                other.overlapped = True
            else:
                op.overlapped = True
        return i

    def observe(self, i: int, obs: Obs) -> Rejection | None:
        """Op ``i`` made the call ``obs``: take the step it matches, or say which invariant it breaks."""
        op = self.ops[i]
        if op.kind in BACKGROUND:
            broke = self.state[BROKE]
            return self._background(i, op, obs) or self._broke(i, op, obs, broke)
        nilable = self._nilable[op.kind]
        if self.state[OPS][i][PC] in nilable:
            self._note_nil(i)
        if obs.kind is Kind.FILL and op.kind == WRITE and self._stores:
            obs = obs._replace(kind=Kind.STORE)
        kind = obs.kind
        if kind is Kind.FILL and self.system.behind and obs.changed:
            self._note_overwrite(obs.key, op.name)
        if kind is Kind.INVALIDATE and op.kind == WRITE and obs.key == op.key and not self._past_put(i):
            op.removed_early = True  # legal, as any extra removal; said if the write then never invalidates
            op.removed_in_tx = op.removed_in_tx or op.staged
        if kind is Kind.LOAD and op.kind == READ and obs.key == op.key and obs.result is not None and obs.result >= 0:
            op.loaded = obs.result
            self._offer(i, op.key, obs.result)
        if kind is Kind.LOOKUP:
            rejection = self._lookup(i, op, obs)
        elif rules.already_stands(self, i, op, obs) or rules.unchanged(self, i, op, obs):  # rules.STUTTERS
            rejection = None
        else:
            rejection = self._effect(i, op, obs)
        if self.state[CACHE_F][obs.key] != obs.after[0]:
            self._sync(obs)
        if self.state[OPS][i][PC] in nilable:
            self._note_nil(i)
        return rejection

    def _offer(self, i: int, k: int, v: int) -> None:
        """Read ``i`` loaded ``v``: every other read of ``k`` in flight may take it (``System.join``)."""
        ops_state = self.state[OPS]
        for n, other in enumerate(self.ops):
            if n != i and other is not None and other.kind == READ and other.key == k and ops_state[n][PC] != DONE:
                other.joinable |= 1 << v

    # -- background work --------------------------------------------------------------------------

    def _background(self, i: int, op: _Op, obs: Obs) -> Rejection | None:
        """A call of a refresh or a flush, judged by effect: what it loads, what it stores over, what
        it puts into the DB and in which order. Background work owes no step, so nothing it does is
        out of place; what it must not do is what the three background invariants forbid."""
        s = self.state
        o = s[OPS][i]
        k = obs.key
        kind = obs.kind
        sys_ = self.system
        program = sys_.programs[op.kind]
        if kind is Kind.LOAD and op.kind == REFRESH and k == op.key:
            if obs.result != s[DB_F][k]:
                s = _with(s, DB_F, _put(s[DB_F], k, obs.result))  # keep in step with the DB
            j = _index(program, Kind.REFRESH)
            self.state = _with_op(s, i, _new(OpState, (j + 1, k, o[TOKEN], obs.result, o[MASK], o[FLAGS])))
            return None
        # A refresh's store counts even when it stores what the entry holds (it renews the entry),
        # but not when the cache refused it (a WATCHed key changed, a version check failed): the
        # entry is then not what it stored, and the refresh was discarded, as the fix does.
        stored = obs.changed or (op.kind == REFRESH and obs.after[0] == obs.value)
        if kind is Kind.FILL and obs.value != NONE and stored:
            if op.kind == REFRESH and k == op.key:
                j = _index(program, Kind.REFRESH)
                o = _new(OpState, (j + 1, k, o[TOKEN], obs.value, o[MASK], o[FLAGS]))
                _, nxt, event = sys_.refresh(_with_op(s, i, o), i, o, program, j)
                self.state = nxt
                self._events(event)
                op.effective = True
            else:
                self._note_overwrite(k, op.name)
                self.state = sys_._set_entry(s, k, obs.value)
            return None
        if kind is Kind.PUT and obs.changed:
            if op.kind == REFRESH:
                return self._reject(i, "write-order", "background-wrote", op=op.name, pattern=sys_.pattern.name)
            j = _index(program, Kind.PUT)
            # The flush took this value (from the entry, or from a queue the kit does not see).
            o = _new(OpState, (j + 1, k, o[TOKEN], obs.value, o[MASK], o[FLAGS]))
            _, nxt, event = sys_.put(_with_op(s, i, o), i, o, program, j)
            self.state = nxt
            self._events(event)
            return None
        if kind is Kind.INVALIDATE and obs.changed:
            self._note_overwrite(k, op.name, dropped=True)
            self.state = sys_.remove(s, k)
        if self.state[CACHE_F][k] != obs.after[0]:
            self._sync(obs)
        return None

    def end_background(self, i: int) -> None:
        """Background unit ``i`` is over (its worker moved on to another key, or went idle). A refresh
        that stored nothing after a write changed its entry was discarded, as the fix does."""
        op = self.ops[i]
        o = self.state[OPS][i]
        if op.kind == REFRESH and not op.effective and not o[TOKEN]:
            self._events(REFRESH_DISCARDED)
        self.state = _with_op(self.state, i, DONE_IDLE)
        self._returned(i)

    def background_done(self, i: int) -> bool:
        """Whether unit ``i`` has made its last step (the model put its worker back to idle)."""
        return self.state[OPS][i][PC] == IDLE

    def dirty(self) -> bool:
        """Some entry holds a write's value no flush has put into the DB yet (write-behind)."""
        return any(m & DIRTY for m in self.state[MARKS])

    def lost_at_rest(self) -> Rejection | None:
        """At rest, with nothing left to flush: the DB holds each key's last completed write."""
        s = self.state
        for k, (retired, db) in enumerate(zip(s[RETIRED], s[DB_F])):
            if retired >> db & 1:
                newest = self.stored[k][-1]
                how = self.lost_how.get(k, "")
                return Rejection(
                    "no-lost-write",
                    "db-behind",
                    {
                        "key": self.key_names[k],
                        "truth": self._v(k, db),
                        "value": self._v(k, newest),
                        "op": self.writer_of.get((k, newest), "a write"),
                        "how": f" ({how} before a flush put it)" if how else "",
                    },
                    (("lost", None, k, self.lost_step.get(k, -1)),),
                )
        return None

    def _note_overwrite(self, k: int, by: str, *, dropped: bool = False) -> None:
        """Before a dirty value of ``k`` is replaced or removed, say how, for the report at rest."""
        s = self.state
        if s[MARKS][k] & DIRTY and s[CACHE_F][k] != NONE:
            value = self._v(k, s[CACHE_F][k], entry=True)
            self.lost_how[k] = f"its dirty entry {value} was {'removed' if dropped else 'overwritten'} by {by}"
            self.lost_step[k] = self.at

    def _broke(self, i: int, op: _Op, obs: Obs, before: int) -> Rejection | None:
        """The step did what a background invariant forbids: say which, in the run's terms."""
        s = self.state
        new = s[BROKE] & ~before
        if not new:
            return None
        k = obs.key
        if new & WENT_BACK:
            order = self.stored[k]
            newer = next((v for v in reversed(order) if s[PUT][k] >> v & 1), s[DB_F][k])
            fields = {"op": op.name, "key": self.key_names[k], "value": self._v(k, obs.value)}
            fields["newer"] = self._v(k, newer)
            return Rejection("flush-order", "went-back", fields, (("in-order", None, k, newer),))
        db = s[DB_F][k]
        fields = {"op": op.name, "value": self._v(k, obs.value), "newer": self._v(k, db)}
        fields["writer"] = self.writer_of.get((k, db), "a write")
        return Rejection("no-stale-refresh", "stale-refresh", fields, (("discard", None, k, NONE),))

    def _older_than(self, k: int, v: int) -> int:
        mask = 0
        for u in self.stored[k]:
            if u != v:
                mask |= 1 << u
        return mask

    def _newer_than(self, k: int, v: int) -> int:
        order = self.stored[k]
        if v not in order:
            return 0
        mask = 0
        for u in order[order.index(v) + 1 :]:
            mask |= 1 << u
        return mask

    def finish(self, i: int, result: int) -> Rejection | None:
        """Op ``i`` returned ``result`` (a value id; NONE for None; ABSENT for a value nothing names)."""
        op = self.ops[i]
        if self.state[OPS][i][PC] in self._nilable[op.kind]:
            self._note_nil(i)
        while True:
            instr = self._current(i)
            if instr is None:
                break
            if op.faulted and op.kind == READ and instr.kind in (Kind.LOOKUP, Kind.LOAD, Kind.FILL):
                # A store failed it: a read may give up on the cache, or on the DB, and return; what it
                # returned is judged (no-phantom-read), and what it filled was (no-poisoned-fill).
                self._skip(i)
                continue
            if instr.kind is Kind.LOOKUP and not op.looked and not op.effective:
                return self._unseen_read(i, op, result)
            if instr.kind in (Kind.FILL, Kind.INVALIDATE) and (op.nil_ok or self._nil_now(i, instr)):
                self._skip(i)
                continue
            if instr.kind is Kind.FILL and op.found_claim:
                # It found another operation's claim (a lease, a lock, a marker it could not take):
                # waiting, as a cachepact.leases waiter does, it serves what it loaded without filling.
                self.reached.add("lease-wait")
                self._skip(i)
                continue
            joining = instr.kind is Kind.LOAD or (instr.kind is Kind.LOOKUP and self._waited(i))
            if joining and op.kind == READ and result >= 0 and op.joinable >> result & 1:
                # It missed (or was told to wait: another read holds the lease) and returns what
                # another read in flight loaded: it joined that load.
                self.state = self.system.join(self.state, i, result)
                self.reached.add("joined-load")
                continue
            if instr.kind in (Kind.STORE, Kind.LOCK, Kind.UNLOCK) and self._nil_now(i, instr):
                self._skip(i)  # the entry holds the write's value already: storing it changes nothing
                continue
            return self._missing(i, op, instr)
        s = self.state
        expected = s[OPS][i][LOADED]
        self.state = self.system.complete(s, i, s[OPS][i], result)
        self._returned(i)
        if op.kind == WRITE:
            return None
        return self._check_result(i, op, result, expected)

    def failed(self, i: int, kind: Kind, k: int) -> None:
        """A call of op ``i`` failed with no effect (``--faults``): a fault before it reached the store,
        or a look whose reply was lost. The instruction it was is taken as made, with no effect: a
        failed lookup as a miss (the op may load instead), a failed load as a load of nothing, a failed
        fill, invalidation or put as left undone (what that leaves behind is judged at rest)."""
        op = self.ops[i]
        op.faulted = True
        if kind is Kind.LOAD and op.kind == READ:
            op.load_failed = True
        instr = self._current(i)
        if instr is None or k != op.key:
            return
        if kind is Kind.LOOKUP and instr.kind is Kind.LOOKUP and op.kind == READ:
            self._virtual_lookup(i, op, miss=True)
            op.looked = True
        elif instr.kind is kind or (kind is Kind.FILL and instr.kind is Kind.STORE):
            if kind is Kind.PUT:
                # A write whose put failed and that goes on (it may return: acknowledged) supersedes,
                # for fresh-read, what the DB had received, as its put would have. It may also put
                # again (a retry): that put is its put (``_retried_put``).
                op.put_failed = True
                s = self.state
                o = s[OPS][i]
                self.state = _with_op(s, i, _new(OpState, (*o[:MASK], s[PUT][k], *o[MASK + 1 :])))
            self._skip(i)

    def abort(self, i: int) -> tuple[Kind | None, bool]:
        """Op ``i`` raised once a fault reached it: its program ends where it stopped, and nothing is
        checked of what it returned. A write that raised is indeterminate (Jepsen's ``:info``): it
        retires no older value for ``fresh-read``, whatever its put did. Returns the kind of step it
        stopped before, and whether (a write) it was past its DB put."""
        instr = self._current(i)
        past_put = self.ops[i].kind == WRITE and self._past_put(i)
        self.state = _with_op(self.state, i, DONE_IDLE)
        self._returned(i)
        return (None if instr is None else instr.kind), past_put

    def returned(self, i: int) -> None:
        """Op ``i``'s read or write returned, while work it handed to other threads still runs: it
        has not ended, but for ``fresh-read`` a write counts from here (a read that begins now must
        not return a value older than the one this write was asked to write)."""
        op = self.ops[i]
        if op.kind != WRITE:
            return
        s = self.state
        o = s[OPS][i]
        k = op.key
        older = o[MASK] if self._past_put(i) else s[PUT][k]  # no put yet: all the DB has received
        if s[RETIRED][k] | older != s[RETIRED][k]:
            self.state = _with(s, RETIRED, _put(s[RETIRED], k, s[RETIRED][k] | older))

    def _returned(self, i: int) -> None:
        self.running -= 1
        self._free.append(i)

    def evict(self, key: int, *, expired: bool = False) -> None:
        """The cache dropped ``key``'s entry on its own (capacity, expiry). A dirty one takes its
        write with it, unless a flush has it already: the state at rest tells."""
        if self.state[MARKS][key] & DIRTY:
            self._note_overwrite(key, "the cache (an eviction or its TTL)", dropped=True)
            self.state = _with(self.state, MARKS, _put(self.state[MARKS], key, 0))
        if self.state[CACHE_F][key] != NONE:
            self.state = _with(self.state, CACHE_F, _put(self.state[CACHE_F], key, NONE))
            self.reached.add("expiry" if expired else "eviction")
        self.filled_at.pop(key, None)

    def resync(self, key: int, entry: int) -> None:
        """The key's entry is now under another cache key, holding ``entry``: follow it (no event)."""
        self.state = _with(self.state, CACHE_F, _put(self.state[CACHE_F], key, entry))
        if entry == NONE:
            self.filled_at.pop(key, None)

    def clock_moved(self) -> None:
        """The run moved the clock on: entries filled before may now count as expired."""
        self.clock_moves += 1

    def release(self, i: int) -> None:
        """Read ``i`` gave its lease back before loading (``lease_set(key, None, token)``): no lease of
        its is out (a write's delete finds none), and it is a read without a lease from now on. Its
        fill is still owed, unless it joins another read's load (``finish``): a read that gives its
        lease back and then loads and returns without filling is ``who-populates``, as before."""
        o = self.state[OPS][i]
        self.state = _with_op(self.state, i, _new(OpState, (o[PC], o[KEY], 0, o[LOADED], o[MASK], o[FLAGS] & ~LEASED)))

    def expects(self, i: int) -> Kind | None:
        """The kind of step op ``i``'s program is at (None once it is returning)."""
        instr = self._current(i)
        return None if instr is None else instr.kind

    def in_flight(self) -> bool:
        return self.running > 0

    # -- lookups ----------------------------------------------------------------------------------

    def _lookup(self, i: int, op: _Op, obs: Obs) -> Rejection | None:
        found, granted, _ = obs.result  # type: ignore[misc]
        if op.kind != READ or obs.key != op.key:
            return None  # a lookup inside a write, or of another key: changes nothing
        pc = self.state[OPS][i][PC]
        instr = self._current(i)
        first_or_again = instr is not None and instr.kind is Kind.LOOKUP
        # A read granted a lease that looks again before loading and finds an entry (a library's
        # second look under its own lock) is a hit: its lease was voided or ran out meanwhile, or
        # nobody else could have filled. A second look that misses changes nothing.
        looked_again = op.lease_only and found != NONE
        only_looked = (not op.effective or looked_again) and (
            pc == RETURNING or (instr is not None and instr.kind is Kind.LOAD)
        )
        if not (first_or_again or only_looked):
            if found != NONE and instr is not None and instr.kind is Kind.FILL:
                op.nil_ok = True  # an entry is there: the fill may keep it
            if found >= 0 and not op.put_at_load >> found & 1:
                # A look after its load found a value put after that load: newer than what it loaded,
                # so returning it is a hit on it (get_or_set's second get). An older one it may not return.
                op.seen |= 1 << found
            if obs.leased and granted:
                rules.late_lease(self, i, op, obs)
            return None
        if only_looked and not first_or_again:
            # The op has done nothing but look up: its latest lookup decides. Back to its lookup.
            self._rewind(i, op)
        s = self.state
        o = s[OPS][i]
        j = o[PC] - 1
        if found != s[CACHE_F][op.key]:
            s = self._follow_store(op.key, found)
        label, nxt, event = self._successor(s, i, obs)  # type: ignore[misc]
        model_granted = obs.leased and found == NONE and label[6][1] is not None
        if obs.leased and found == NONE and model_granted != granted:
            nxt = rules.store_leases(s, i, op, j, granted, o[MASK])
            event = 0
        op.looked = True
        if obs.leased and granted:
            op.lease_only = not op.effective or op.lease_only
            op.effective = True
        elif looked_again:
            op.lease_only = op.effective = False  # a hit now: as if it had only looked
        self.state = self._returning(nxt, i, o, label)
        self._events(event)
        return None

    # -- effects ----------------------------------------------------------------------------------

    def _effect(self, i: int, op: _Op, obs: Obs) -> Rejection | None:
        instr = self._current(i)
        if instr is not None and instr.kind is obs.kind and obs.key == op.key:
            return self._take(i, op, instr, obs)  # the common case: the program's next step
        for rule in rules.BEFORE:  # steps the run left out, read off the state at this moment
            rule(self, i, op, obs)
        instr = self._current(i)
        if instr is not None and instr.kind is obs.kind and obs.key == op.key:
            return self._take(i, op, instr, obs)
        if instr is not None and instr.kind is obs.kind and obs.kind in (Kind.PUT, Kind.LOAD):
            k, name = obs.key, self.key_names
            if obs.kind is Kind.PUT:
                mine = self._v(op.key, self.state[OPS][i][LOADED])
                return self._reject(
                    i,
                    "write-order",
                    "put-other",
                    op=op.name,
                    key=name[k],
                    value=self._v(k, obs.value),
                    own_key=name[op.key],
                    own_value=mine,
                )
            return self._reject(i, "single-load", "read-other-key", op=op.name, key=name[op.key], other=name[k])
        if obs.kind is Kind.PUT and op.put_failed and obs.key == op.key:
            return self._retried_put(i, op, obs)
        for rule in rules.TOLERATED:
            if rule(self, i, op, obs):
                if rule is rules.expired_hit:  # back at its load: the call is that load
                    return self._take(i, op, self._current(i), obs)  # type: ignore[arg-type]
                return None
        return self._misplaced(i, op, instr, obs)

    def _take(self, i: int, op: _Op, instr: Instr, obs: Obs) -> Rejection | None:
        """``obs`` is the kind of step op ``i``'s program is at: take it as the model's own successor
        (``System.op_successors``, in the lease mode the call shows), or say what it got wrong."""
        s = self.state
        o = s[OPS][i]
        k = op.key
        if instr.strict and obs.actor is not instr.by:
            invariant, code = _WHO[instr.kind]
            hint = ""
            if instr.kind is Kind.PUT and obs.actor is Actor.CACHE and op.kind == WRITE:
                # A library decorator that wraps the whole write (cashews' @cache.invalidate) puts the
                # App's own DB write inside the code named in cache_code.
                hint = (
                    " (the put ran inside code named in cache_code: if that code only wraps your write, as a "
                    "decorator that invalidates after it does, name the library's caching module instead)"
                )
            return self._reject(
                i, invariant, code, pattern=self.system.pattern.name, by=instr.by, actor=obs.actor, hint=hint
            )
        if instr.kind is Kind.LOAD:
            if obs.result != s[DB_F][k]:
                s = _with(s, DB_F, _put(s[DB_F], k, obs.result))  # keep in step with the DB
            op.put_at_load = s[PUT][k]
        step = self._successor(s, i, obs)
        if step is None:
            return self._wrong_value(i, op, instr, obs)
        label, nxt, event = step
        nxt = self._returning(nxt, i, o, label)
        if instr.kind is Kind.LOAD:
            op.lease_only = False
        elif instr.kind is Kind.FILL:
            self.filled_at[k] = self.clock_moves
            if s[RETIRED][k] or s[PUT][k] != 1:
                self.reached.add("fill-after-write")
            if op.overlapped:
                event |= FILL_DURING_WRITE
        elif instr.kind is Kind.STORE:
            self.filled_at[k] = self.clock_moves
            if self.system.behind:  # the write's place in its key's history is its store
                v = nxt[OPS][i][LOADED]
                order = self.stored[k]
                if v in order:
                    order.remove(v)
                order.append(v)
        elif instr.kind is Kind.INVALIDATE:
            if s[CACHE_F][k] == NONE:
                event &= ~INVALIDATE_EV  # it voided a lease, but removed no entry
            self.filled_at.pop(k, None)
        op.effective = True
        op.lease_only = False
        op.nil_ok = False
        self.state = nxt
        self._events(event)
        return None

    def _successor(self, s: State, i: int, obs: Obs) -> tuple | None:
        """The model's next step of op ``i`` that ``obs`` is: among its successors, the one with the
        call's target, action, key and (for a fill, put or store) value. Where several are, the run
        decides: a read told to wait serves what it loaded; a fill leaves the entry the store holds."""
        target, actions = _LABELS[obs.kind]
        valued = obs.kind in _VALUED
        options = [
            t
            for t in self.system.op_successors(s, i, leased=obs.leased)
            if t[0][2] == target and t[0][3] in actions and t[0][4] == obs.key and (not valued or t[0][5] == obs.value)
        ]
        if len(options) <= 1:
            return options[0] if options else None
        if obs.kind is Kind.LOAD:
            serving = bool(s[OPS][i][FLAGS] & WAITED)
            # Serving ends the read with what it loaded (the last option); else it goes on to fill.
            ordered = reversed(options) if serving else iter(options)
            return next((t for t in ordered if (t[1][OPS][i][PC] == RETURNING) == serving), options[0])
        entry = obs.after[0]
        return next((t for t in options if t[1][CACHE_F][obs.key] == entry), options[0])

    def _wrong_value(self, i: int, op: _Op, instr: Instr, obs: Obs) -> Rejection:
        """The call is the step the program is at, with a value the model does not allow there."""
        k = op.key
        mine = self.state[OPS][i][LOADED]
        if instr.kind is Kind.FILL:
            return self._reject(
                i,
                "who-populates",
                "filled-other-value",
                op=op.name,
                loaded=self._v(k, mine),
                filled=self._v(k, obs.value, entry=True),
            )
        if instr.kind is Kind.STORE:
            return self._reject(
                i,
                "write-updates",
                "stored-other-value",
                op=op.name,
                stored=self._v(k, obs.value, entry=True),
                value=self._v(k, mine),
            )
        return self._reject(
            i,
            "write-order",
            "put-other",
            op=op.name,
            key=self.key_names[obs.key],
            value=self._v(obs.key, obs.value),
            own_key=self.key_names[k],
            own_value=self._v(k, mine),
        )

    def _past_put(self, i: int) -> bool:
        """Whether op ``i`` (a write) is past its DB put."""
        instr = self._current(i)
        return instr is None or instr.kind is not Kind.PUT

    def _misplaced(self, i: int, op: _Op, instr: Instr | None, obs: Obs) -> Rejection:
        """A call that is not the program's next step and that no rule allows: the culprit, and the
        kind of step it is names the invariant it breaks."""
        o = self.state[OPS][i]
        k = obs.key
        own = k == op.key
        if obs.kind is Kind.INVALIDATE:
            # Every other removal is an extra one (rules.extra_removal): a write that stores its value
            # deleting it after the store leaves the next read to load, and a read that loaded before
            # the put to fill the old one.
            return self._reject(
                i, "write-updates", "write-deleted", op=op.name, key=self.key_names[k], value=self._v(k, o[LOADED])
            )
        if obs.kind is Kind.LOAD:
            if obs.actor is not self.system.pattern.load_by:
                return self._reject(
                    i,
                    "who-loads",
                    "wrong-loader",
                    pattern=self.system.pattern.name,
                    by=self.system.pattern.load_by,
                    actor=obs.actor,
                )
            if obs.key != op.key:
                name = self.key_names
                return self._reject(i, "single-load", "read-other-key", op=op.name, key=name[op.key], other=name[k])
            if op.hit and not op.effective:
                if self.filled_at.get(op.key) is not None:
                    code = "missed-stored" if self._stores else "missed-filled"
                    return self._reject(i, "hit-after-fill", code, op=op.name, key=self.key_names[op.key])
                return self._reject(i, "single-load", "loaded-on-hit", op=op.name)
            return self._reject(i, "single-load", "loaded-twice", op=op.name)
        if obs.kind is Kind.PUT:
            if op.kind == READ:
                return self._reject(i, "write-order", "read-wrote", op=op.name)
            if self.system.behind and not any(instr.kind is Kind.PUT for instr in self.system.programs[WRITE]):
                return self._reject(
                    i,
                    "write-order",
                    "put-by-write",
                    op=op.name,
                    key=self.key_names[k],
                    value=self._v(k, obs.value),
                    pattern=self.system.pattern.name,
                )
            code = "put-after-invalidate" if o[PC] == RETURNING and self._invalidates else "put-twice"
            return self._reject(i, "write-order", code, op=op.name, key=self.key_names[k], value=self._v(k, obs.value))
        if obs.kind is Kind.STORE:
            if own and instr is not None and instr.kind is Kind.PUT:
                invariant, code = ("invalidate-after-commit", "stored-in-transaction") if op.staged else _STORED_FIRST
                return self._reject(i, invariant, code, op=op.name, value=self._v(k, obs.value, entry=True))
            return self._reject(
                i,
                "write-updates",
                "stored-other-value",
                op=op.name,
                stored=self._v(k, obs.value, entry=True),
                value=self._v(k, o[LOADED]),
            )
        # FILL
        if op.kind == WRITE:
            return self._reject(
                i, "invalidate-not-update", "write-stored", op=op.name, value=self._v(k, obs.value, entry=True)
            )
        if not own:
            return self._reject(
                i, "who-populates", "filled-other-key", op=op.name, key=self.key_names[op.key], other=self.key_names[k]
            )
        if instr is not None and instr.kind in (Kind.LOOKUP, Kind.LOAD):
            return self._reject(i, "who-populates", "filled-before-load", op=op.name)
        if op.hit and not op.effective:  # served from the cache, then wrote it back (a hit counter)
            return self._reject(
                i, "who-populates", "filled-after-hit", op=op.name, value=self._v(k, obs.value, entry=True)
            )
        return self._reject(i, "who-populates", "filled-twice", op=op.name)

    # -- returns ----------------------------------------------------------------------------------

    def _unseen_read(self, i: int, op: _Op, result: int) -> Rejection | None:
        """A read that touched neither store: served by a layer the kit does not see (a local memo).
        Only what it returned can be judged."""
        s = self.state
        self.state = self.system.complete(s, i, s[OPS][i], result)
        self._returned(i)
        return self._check_result(i, op, result, NONE)

    def _check_result(self, i: int, op: _Op, result: int, expected: int) -> Rejection | None:
        k = op.key
        held = self.state[PUT][k]
        if self.system.behind:  # a write's value is the key's from its store, before any flush
            for v in self.stored[k]:
                held |= 1 << v
        newest = self.state[DB_F][k]
        fields = {"op": op.name, "key": self.key_names[k], "value": self._v(k, result)}
        if result < 0 or not held >> result & 1:
            return Rejection(
                "fresh-read", "never-held", fields, (("return", None, k, newest if expected == NONE else expected),)
            )
        if op.start_mask >> result & 1:
            # The values it may return: those not yet superseded, when it began, by a completed write.
            newer = [v for v in range(held.bit_length()) if held >> v & 1 and not op.start_mask >> v & 1]
            if not newer:  # the newer value is an acknowledged write's whose put failed: the DB never had it
                return Rejection("fresh-read", "acknowledged-lost", fields, ())
            return Rejection(
                "fresh-read",
                "older",
                {**fields, "newer": self._v(k, newer[0])},
                tuple(("return", None, k, v) for v in newer),
            )
        if expected not in (NONE, result) and not (result >= 0 and op.seen >> result & 1):
            return Rejection(
                "fresh-read",
                "not-what-it-read",
                {**fields, "loaded": self._v(k, expected)},
                (("return", None, k, expected),),
            )
        return None

    def _missing(self, i: int, op: _Op, instr: Instr) -> Rejection:
        """Op ``i`` returned before a step of its program that had an effect to make."""
        k = op.key
        o = self.state[OPS][i]
        name = self.key_names[k]
        if instr.kind is Kind.LOAD or instr.kind is Kind.LOOKUP:
            return self._reject(i, "who-loads", "never-loaded", op=op.name, by=instr.by)
        if instr.kind is Kind.FILL:
            extra = (
                f"; it stored {op.stored_undecodable}, which cachepact cannot decode" if op.stored_undecodable else ""
            )
            if op.refused_unexplained:
                extra += (
                    "; its conditional fill was refused though no write and no other operation's claim came "
                    "since it began (is the guard the right way round?)"
                )
            return self._reject(
                i, "who-populates", "never-filled", op=op.name, loaded=self._v(k, o[LOADED]), extra=extra
            )
        if instr.kind is Kind.PUT:
            return self._reject(i, "write-order", "never-put", op=op.name)
        entry = self.state[CACHE_F][k]
        if instr.kind is Kind.STORE:
            held = f": the entry holds {self._v(k, entry, entry=True)}" if entry != NONE else ""
            return self._reject(
                i, "write-updates", "never-stored", op=op.name, value=self._v(k, o[LOADED]), held=held, key=name
            )
        held = f"the entry still holds {self._v(k, entry, entry=True)}" if entry != NONE else "a lease is out on it"
        if op.removed_in_tx:  # the commit, not the put, made the value visible: a read between refilled
            return self._reject(
                i, "invalidate-after-commit", "invalidated-in-transaction", op=op.name, key=name, held=held
            )
        if op.removed_early:  # the order is the bug: a read between that delete and the put refilled
            held += " (it deleted the entry before its DB put, where a read can refill the old value: delete after it)"
        return self._reject(i, "write-order", "never-invalidated", op=op.name, key=name, held=held)

    # -- helpers ----------------------------------------------------------------------------------

    def _current(self, i: int) -> Instr | None:
        pc = self.state[OPS][i][PC]
        if pc in (IDLE, DONE, RETURNING):
            return None
        return self.system.programs[self.ops[i].kind][pc - 1]

    def _nil_now(self, i: int, instr: Instr) -> bool:
        """Would ``instr`` change nothing if op ``i`` took it now?"""
        s = self.state
        o = s[OPS][i]
        k = o[KEY]
        if instr.kind is Kind.INVALIDATE:
            return s[CACHE_F][k] == NONE and not self.system.lease_out(s, k)
        if instr.kind is Kind.STORE:
            return s[CACHE_F][k] == o[LOADED]
        if instr.kind in (Kind.LOCK, Kind.UNLOCK):
            return True  # the judge sees no lock: a lock the adapter takes is on a key of its own
        if instr.kind is Kind.FILL:
            if o[FLAGS] & LEASED and not o[TOKEN]:
                return True  # its lease was voided: the fill would be refused
            nothing = o[LOADED] == 0 and self.system.absent[k]
            return s[CACHE_F][k] != NONE or nothing
        return False

    def _note_nil(self, i: int) -> None:
        pc = self.state[OPS][i][PC]
        if pc in self._nilable[self.ops[i].kind]:
            instr = self.system.programs[self.ops[i].kind][pc - 1]
            if self._nil_now(i, instr):
                self.ops[i].nil_ok = True

    def _skip(self, i: int) -> None:
        """Take op ``i``'s current instruction as having happened with no effect."""
        s = self.state
        o = s[OPS][i]
        program = self.system.programs[self.ops[i].kind]
        j = o[PC] - 1
        if j + 1 < len(program):
            self.state = _with_op(s, i, _new(OpState, (j + 2, *o[1:])))
        else:
            self.state = _with_op(s, i, _new(OpState, (RETURNING, *o[1:])))
        self.ops[i].nil_ok = False

    def _virtual_lookup(self, i: int, op: _Op, *, miss: bool = False) -> None:
        """The run did not look up: the lookup's outcome is what the cache held at this moment (with
        ``miss``, at an earlier moment when the key had no entry)."""
        s = self.state
        o = s[OPS][i]
        looked = _with(s, CACHE_F, _put(s[CACHE_F], op.key, NONE)) if miss else s
        label, nxt, event = next(t for t in self.system.op_successors(looked, i, leased=False) if t[0][3] == "get")
        if miss:
            nxt = _with(nxt, CACHE_F, s[CACHE_F])  # the entry is what it is now
        self.state = self._returning(nxt, i, o, label)
        self._events(event)

    def _returning(self, nxt: State, i: int, before: OpState, label: tuple) -> State:
        """Note whether an op the transition left RETURNING got its value from a lookup (a hit)."""
        if nxt[OPS][i][PC] == RETURNING and before[PC] != RETURNING:
            self.ops[i].hit = label[2] == "cache" and label[3] in ("get", "lease_get")
        return nxt

    def _waited(self, i: int) -> bool:
        return bool(self.state[OPS][i][FLAGS] & WAITED)

    def _move_to(self, i: int, kind: Kind) -> None:
        """Point op ``i`` at its program's next instruction of ``kind``, keeping its locals."""
        program = self.system.programs[self.ops[i].kind]
        o = self.state[OPS][i]
        j = next(n for n in range(o[PC] - 1, len(program)) if program[n].kind is kind)
        self.state = _with_op(self.state, i, _new(OpState, (j + 1, *o[1:])))

    def _retried_put(self, i: int, op: _Op, obs: Obs) -> Rejection | None:
        """A write whose put failed before taking effect puts again: a retry, its put now. Back to its
        put, taken as the model's own; what it did after the failed one (an invalidation) was early."""
        op.put_failed = False
        program = self.system.programs[WRITE]
        j = next(n for n, instr in enumerate(program) if instr.kind is Kind.PUT)
        o = self.state[OPS][i]
        self.state = _with_op(self.state, i, _new(OpState, (j + 1, *o[1:])))
        return self._take(i, op, program[j], obs)

    def _rewind(self, i: int, op: _Op, *, to: Kind = Kind.LOOKUP) -> None:
        """Back to the op's lookup (a repeated lookup decides), or on to its load (an expired hit)."""
        program = self.system.programs[READ]
        j = next(n for n, instr in enumerate(program) if instr.kind is to)
        o = self.state[OPS][i]
        self.state = _with_op(self.state, i, _new(OpState, (j + 1, op.key, o[TOKEN], NONE, op.start_mask, 0)))
        op.hit = False

    def _remove(self, k: int) -> None:
        self.state = self.system.remove(self.state, k)
        self.filled_at.pop(k, None)

    def _follow_store(self, k: int, found: int) -> State:
        """A lookup found something else than the model thought (the cache dropped the entry, a TTL
        under a second ran out on its own): follow the store."""
        if found == NONE:
            self.evict(k)
        else:
            self.state = _with(self.state, CACHE_F, _put(self.state[CACHE_F], k, found))
        return self.state

    def _sync(self, obs: Obs) -> None:
        entry, _ = obs.after
        if self.state[CACHE_F][obs.key] != entry:
            if entry == NONE:
                self.state = _with(self.state, CACHE_F, _put(self.state[CACHE_F], obs.key, NONE))
            else:
                self.state = _with(self.state, CACHE_F, _put(self.state[CACHE_F], obs.key, entry))

    def _events(self, mask: int) -> None:
        while mask:
            low = mask & -mask
            self.reached.add(EVENTS[low.bit_length() - 1])
            mask ^= low

    def _v(self, k: int, v: int, *, entry: bool = False) -> str:
        if v == ABSENT or (entry and v == 0 and self.system.absent[k]):
            return "ABSENT"
        return self.value_name(k, v)

    def _reject(self, i: int, invariant: str, code: str, **fields: object) -> Rejection:
        return Rejection(invariant, code, {n: str(v) for n, v in fields.items()}, self._allowed(i))

    def _allowed(self, i: int) -> tuple[tuple, ...]:
        """What op ``i``'s program allowed at this moment: its next step, or its return."""
        o = self.state[OPS][i]
        k = o[KEY]
        instr = self._current(i)
        if instr is None:
            return (("return", None, k, o[LOADED]),) if self.ops[i].kind == READ else (("return", None, k, NONE),)
        by = instr.by if instr.strict else None
        value = o[LOADED] if instr.kind in (Kind.FILL, Kind.PUT, Kind.STORE) else NONE
        out: list[tuple] = [(instr.kind, by, k, value)]
        if instr.kind is Kind.FILL and o[FLAGS] & LEASED:
            out = [(instr.kind, by, k, value, "lease")]
        if instr.kind is Kind.FILL and o[LOADED] == 0 and self.system.absent[k]:
            out.append(("return", None, k, 0))  # nothing to cache: returning without a fill is fine
        return tuple(out)
