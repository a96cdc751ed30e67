"""The legal differences between a recorded run and the model, each a named rule.

The refinement checker (``refinement.py``) takes every call as the model's own next step of its
operation when it is one. A call that is not is the culprit, unless one of these rules says the
difference is legal: real code stutters, leaves out steps that would change nothing, lets the cache
evict and expire, looks up again, takes a lease late. Each rule is a small function over the
checker and the call; it either does not apply (returns ``False``) or applies, bringing the model
in step with what the call did (returns ``True``). ``tests/test_rules.py`` tests each on its own.

Rules that apply before the call is matched (``BEFORE``) move the operation to where the call
belongs; rules that apply to a call the program did not expect there (``TOLERATED``) accept it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...model._participants import READ, WRITE, Actor
from ...model._patterns import Kind
from ...model._system import (
    CACHE_F,
    FLAGS,
    KEY,
    LEASED,
    LOADED,
    MASK,
    NONE,
    OPS,
    PC,
    WAITED,
    OpState,
    State,
    _new,
    _with_op,
)

if TYPE_CHECKING:
    from .refinement import Obs, Refinement, _Op


# -- before matching: stutters ------------------------------------------------------------------


def already_stands(ref: Refinement, i: int, op: _Op, obs: Obs) -> bool:
    """A fill or store of the value the key's entry already stands for (under this or another cache
    key) changes nothing the model sees: a stutter."""
    return obs.kind in (Kind.FILL, Kind.STORE) and obs.value != NONE and obs.value == ref.state[CACHE_F][obs.key]


def unchanged(ref: Refinement, i: int, op: _Op, obs: Obs) -> bool:
    """A call that changed neither the entry, the DB nor a lease (a lookup inside a write, a delete of
    nothing, an ``add`` that found an entry, a refused ``lease_set``) is a stutter. A refused guarded
    fill at a read's fill means the read tried: it may return without filling."""
    if obs.changed or obs.kind is Kind.LOAD:
        return False
    if obs.kind is Kind.FILL and obs.result is False:
        if obs.leased:
            ref.reached.add("fill-refused")  # its lease was voided: the model's refused fill
        instr = ref._current(i)
        if op.kind == READ and instr is not None and instr.kind is Kind.FILL:
            if obs.leased or refusal_explained(ref, op):
                op.nil_ok = True
                ref.reached.add("fill-refused")
            else:
                op.refused_unexplained = True  # fail closed: the fill is still owed
    return True


def refusal_explained(ref: Refinement, op: _Op) -> bool:
    """A conditional fill the cache refused needs a reason the run shows: an entry is there already,
    a write of the key overlapped the read, or the read found another operation's claim. A guard
    that refuses for no reason (an inverted ``if EXISTS``) never fills, and that is ``who-populates``."""
    return ref.state[CACHE_F][op.key] != NONE or op.overlapped or bool(op.found_claim or op.refusal_reason)


STUTTERS = (already_stands, unchanged)


# -- before matching: moving the operation to where the call belongs ------------------------------


def waited_load(ref: Refinement, i: int, op: _Op, obs: Obs) -> bool:
    """A read told to wait (another holds the lease) that loads instead of looking again serves what
    it loads without filling, as memcache clients do."""
    instr = ref._current(i)
    if instr is None or instr.kind is not Kind.LOOKUP or obs.kind is not Kind.LOAD or not ref._waited(i):
        return False
    ref._move_to(i, Kind.LOAD)
    return True


def unseen_lookup(ref: Refinement, i: int, op: _Op, obs: Obs) -> bool:
    """A read whose first call is not a lookup (a library that keeps its own index, a lookup made
    through a layer the kit does not see, a cache key not learned yet): the lookup happened at some
    moment of the read's flight. Its outcome is what the cache held now, or a miss when the key had
    no entry as the read began and the read now loads (it looked then, before a write stored). A
    removal that told the caller nothing (a DEL, not a GETDEL) is no such moment: a read that deletes
    before it looks (an extra removal, as legal as an eviction) has yet to look, and taking the entry
    it is about to delete for a hit reported ``hit`` reached by reads that all missed."""
    instr = ref._current(i)
    if instr is None or instr.kind is not Kind.LOOKUP or obs.kind is Kind.LOOKUP or op.looked or op.kind != READ:
        return False
    if obs.kind is Kind.INVALIDATE and obs.result is None:  # a GETDEL (result set) looked as it removed
        return False
    ref._virtual_lookup(i, op, miss=op.start_empty and obs.kind is Kind.LOAD)
    return True


def nil_steps(ref: Refinement, i: int, op: _Op, obs: Obs) -> bool:
    """Program steps whose effect would be nil at this moment (an invalidation with nothing cached
    and no lease out, a fill with an entry already there or nothing to cache, a store of the value
    already cached) may be left out: they are taken as made, and the call is the step after them."""
    taken = False
    instr = ref._current(i)
    while (
        instr is not None
        and instr.kind is not obs.kind
        and instr.kind in (Kind.FILL, Kind.INVALIDATE, Kind.STORE)
        and ref._nil_now(i, instr)
    ):
        ref._skip(i)
        taken = True
        instr = ref._current(i)
    return taken


BEFORE = (waited_load, unseen_lookup, nil_steps)


# -- a call the program did not expect there ------------------------------------------------------


def extra_removal(ref: Refinement, i: int, op: _Op, obs: Obs) -> bool:
    """A removal that is not the write's own invalidation after its put (one before the put, one a
    read makes, a second one, another key's entry, the Cache's own) removes what it removes: the
    cache may drop any entry at any moment, so an extra removal is as harmless as an eviction, and
    ``write-order`` asks only that an invalidation follow the put. In a pattern whose write leaves its
    value in the cache (write-through), a write deleting its own entry after its put is harmless only
    before its store (the store still to come decides what is left); after it, it undoes the store."""
    if obs.kind is not Kind.INVALIDATE:
        return False
    if op.kind == WRITE and obs.key == op.key and ref._stores and ref._past_put(i):
        instr = ref._current(i)
        if instr is None or instr.kind is not Kind.STORE:
            return False
    ref._remove(obs.key)
    if obs.actor is Actor.CACHE and not (op.kind == WRITE and obs.key == op.key):
        ref.reached.add("eviction")  # the Cache dropped an entry of its own accord
    return True


def db_read_in_write(ref: Refinement, i: int, op: _Op, obs: Obs) -> bool:
    """A write that reads the DB (a read-modify-write, a version lookup) changes nothing."""
    return obs.kind is Kind.LOAD and op.kind == WRITE


def expired_hit(ref: Refinement, i: int, op: _Op, obs: Obs) -> bool:
    """A read that hit and then loads, once the clock has moved since the entry was filled, treats the
    entry as expired (a TTL the cache checks on read): it loads and fills again."""
    if obs.kind is not Kind.LOAD or op.kind != READ or obs.actor is not ref.system.pattern.load_by:
        return False
    if obs.key != op.key or not op.hit or op.effective:
        return False
    filled = ref.filled_at.get(op.key)
    if filled is None or ref.clock_moves <= filled:
        return False
    ref.reached.add("expiry")
    ref._rewind(i, op, to=Kind.LOAD)
    return True


def store_again(ref: Refinement, i: int, op: _Op, obs: Obs) -> bool:
    """A write-through write storing its own value again, or another key's entry: the store's effect
    is followed (the judge syncs the entry), nothing is out of order."""
    if obs.kind is not Kind.STORE:
        return False
    own = obs.key == op.key
    instr = ref._current(i)
    if own and instr is not None and instr.kind is Kind.PUT:
        return False  # before its put: out of order
    return not (own and obs.value != ref.state[OPS][i][LOADED])


TOLERATED = (extra_removal, db_read_in_write, expired_hit, store_again)


# -- lookups ---------------------------------------------------------------------------------------


def late_lease(ref: Refinement, i: int, op: _Op, obs: Obs) -> None:
    """A lease granted after the read loaded makes its fill a lease-guarded one, which a delete in
    between voids (it guards nothing from before the lease)."""
    o = ref.state[OPS][i]
    ref.state = _with_op(ref.state, i, _new(OpState, (o[PC], o[KEY], True, o[LOADED], o[MASK], o[FLAGS] | LEASED)))
    op.effective = True


def store_leases(s: State, i: int, op: _Op, j: int, granted: bool, mask: int) -> State:
    """The store's leases say otherwise than the model's (one is out that the run's operations do
    not hold, or none is): follow the store. A grant makes the read a lease holder; a wait, a waiter."""
    flags = LEASED | (0 if granted else WAITED)
    return _with_op(s, i, _new(OpState, (j + (2 if granted else 1), op.key, granted, NONE, mask, flags)))


ALL = (*STUTTERS, *BEFORE, *TOLERATED, late_lease, store_leases)
