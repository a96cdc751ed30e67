"""Every situation and every invariant, each declared once: the one vocabulary of the whole kit.

An ``Invariant`` is its name, what holding means, the situations that exercise it (a run that never
reached one gives it ``not-run``, not ``pass``), the patterns it applies to (one that does not apply
is absent from that pattern's report), the predicate over model states the explorer checks (where
the property is one over states), the messages the judge's rejections render through, and the
remedy a report suggests. A ``Situation`` is a path a run can take ("sometimes" properties, as
stateright calls them: a pass that never reached it is vacuous).

Reports, JSON, JUnit, ``explain``, the spec tables and ``Reached:`` / ``Never reached:`` all read
these declarations; nothing else lists invariant or situation names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import attrs

from ._patterns import Kind

if TYPE_CHECKING:
    from ._patterns import Pattern


def _always(pattern: Pattern) -> bool:
    return True


def _has(kind: Kind) -> Callable[[Pattern], bool]:
    def applies(pattern: Pattern) -> bool:
        return pattern.has(kind)

    applies.__name__ = f"has_{kind.value}"
    return applies


@attrs.frozen(kw_only=True)
class Situation:
    """A path a run can take. ``shown``: ``always`` (a check lists it under "Never reached" when it
    was not), ``concurrent`` (the same, in a check with concurrency on), ``extra`` (listed only once
    reached: it depends on the adapter), ``internal`` (only exercises invariants). ``model``: the
    model's steps reach it (the explorer reports it); otherwise only a recorded run can."""

    name: str
    meaning: str
    shown: str = "always"
    model: bool = True
    applies: Callable[[Pattern], bool] = _always
    # What an explored scenario must have for the model to reach it: "writers", "concurrent",
    # "leases", "absent" (keys absent at the start), "evictions".
    needs: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Invariant:
    """One invariant, declared once (see the module's docstring)."""

    name: str
    holds_when: str
    exercised_by: tuple[str, ...]
    applies: Callable[[Pattern], bool] = _always
    state_check: str = ""  # the name of a ``System`` predicate over states, for the explorer
    messages: Mapping[str, str] = attrs.field(factory=dict)
    remedy: str = ""
    faults: bool = False  # judged only in a check with faults (``--faults``), where stores fail
    # Judged (and listed) only in a check that reached this situation: an invariant about a feature an
    # adapter may not use (transactions), which would otherwise be ``not-run`` in every other report.
    only_when: str = ""

    def message(self, code: str, fields: Mapping[str, object]) -> str:
        return self.messages[code].format_map(fields)


SITUATIONS: tuple[Situation, ...] = (
    Situation(name="miss", meaning="a read found no entry"),
    Situation(name="hit", meaning="a read was served by the cache"),
    Situation(name="load", meaning="a read loaded from the DB"),
    Situation(name="fill", meaning="a read filled the entry"),
    Situation(name="write", meaning="a write put a value into the DB", needs=("writers",)),
    Situation(name="invalidate", meaning="a write removed an entry", applies=_has(Kind.INVALIDATE), needs=("writers",)),
    Situation(
        name="store", meaning="a write stored its value as the entry", applies=_has(Kind.STORE), needs=("writers",)
    ),
    Situation(name="absent-read", meaning="a read of a key the DB does not hold", needs=("absent",)),
    Situation(name="read-after-write", meaning="a read began after a write of its key completed", model=False),
    Situation(
        name="fill-during-write",
        meaning="a fill overlapped a write of its key",
        shown="concurrent",
        needs=("writers", "concurrent"),
    ),
    Situation(name="negative-fill", meaning="a read cached 'not in the DB'", shown="extra", needs=("absent",)),
    Situation(
        name="lease-wait",
        meaning="a read was told to wait: another holds the lease",
        shown="extra",
        needs=("leases", "concurrent"),
    ),
    Situation(
        name="joined-load",
        meaning="a read that missed returned what another read in flight loaded (request coalescing)",
        shown="extra",
        model=False,
    ),
    Situation(
        name="fill-refused",
        meaning="the cache refused a guarded fill",
        shown="extra",
        needs=("leases", "concurrent", "writers"),
    ),
    Situation(name="eviction", meaning="the cache dropped an entry on its own", shown="extra", needs=("evictions",)),
    Situation(name="expiry", meaning="an entry's time to live ran out", shown="extra", needs=("ttl",)),
    Situation(name="fill-after-write", meaning="a fill of a key some write had put", shown="internal", model=False),
    Situation(
        name="refresh",
        meaning="a refresh reloaded an entry in the background and stored it",
        applies=_has(Kind.REFRESH),
    ),
    Situation(
        name="refresh-discarded",
        meaning="a refresh raced with a write of its key and was discarded",
        shown="extra",
        applies=_has(Kind.REFRESH),
        needs=("fix", "writers"),
    ),
    Situation(
        name="flush",
        meaning="a flush put a dirty value into the DB",
        applies=_has(Kind.TAKE),
        needs=("writers",),
    ),
    Situation(name="fault", meaning="a call to a store failed (--faults)", shown="faults", needs=("faults",)),
    Situation(
        name="failed-invalidation",
        meaning="a write's invalidation failed, or it raised before making it (--faults)",
        shown="faults",
        needs=("faults",),
    ),
    Situation(name="failed-load", meaning="a read's load from the DB failed (--faults)", shown="faults", model=False),
    Situation(
        name="raised", meaning="an operation raised once a fault reached it (--faults)", shown="extra", model=False
    ),
    Situation(
        name="commit",
        meaning="a write's transaction committed its put (env.db.transaction())",
        shown="extra",
        model=False,
    ),
    Situation(
        name="time-out",
        meaning="a lock or lease timed out while its holder was still at work",
        shown="extra",
        needs=("clock", "concurrent"),
    ),
)

INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        name="who-loads",
        holds_when="on a miss, the DB is read by the party the pattern names, and the other reads none",
        exercised_by=("miss",),
        messages={
            "wrong-loader": "in {pattern} on a miss the DB is read by {by}; here {actor} read it",
            "never-loaded": "the read {op} missed but never loaded from the DB (by {by})",
        },
        remedy="load where the pattern says: the App reads the DB itself (cache-aside), or the cache "
        "library's loader does (read-through); name the library's code in cache_code",
    ),
    Invariant(
        name="who-populates",
        holds_when="a miss that loaded a value fills the entry (a lease-guarded fill may be refused), "
        "and the party the pattern names does it",
        exercised_by=("load",),
        messages={
            "wrong-filler": "in {pattern} the entry is filled by {by}; here {actor} filled it",
            "filled-other-value": "the read {op} loaded {loaded} but filled {filled}",
            "filled-other-key": "the read {op} of {key} filled the entry for {other}",
            "filled-before-load": "the read {op} filled the entry before loading from the DB",
            "filled-twice": "the read {op} filled the entry a second time",
            "filled-after-hit": "the read {op} hit, then stored {value} back: a write's invalidation in between "
            "is undone (a read served from the cache must not write its entry)",
            "never-filled": "the read {op} loaded {loaded} but never filled the entry{extra}",
        },
        remedy="after a miss's load, store what was loaded, by the party the pattern names",
    ),
    Invariant(
        name="write-order",
        holds_when="a write puts the DB first, and only then makes its cache step (invalidates the entry, "
        "or stores its value); the DB is written only by writes",
        exercised_by=("write",),
        messages={
            "wrong-writer": "in {pattern} the DB is written by {by}; here {actor} wrote it{hint}",
            "put-other": "the write {op} put {key}={value}, not {own_key}={own_value}",
            "stored-first": "the write {op} stored {value} in the cache before writing the DB",
            "read-wrote": "the read {op} wrote the DB; only a write may",
            "put-after-invalidate": "the write {op} put {key}={value} after invalidating",
            "put-twice": "the write {op} put {key}={value} a second time",
            "never-put": "the write {op} never wrote the DB",
            "never-invalidated": "the write {op} wrote the DB but never invalidated {key}: {held}",
            "put-by-write": "the write {op} put {key}={value} into the DB itself; in {pattern} only the cache's "
            "flush writes the DB",
            "background-wrote": "{op}, background work of {pattern}, wrote the DB; only a write (or a flush) may",
        },
        remedy="write the DB first, then make the cache step the pattern names",
    ),
    Invariant(
        name="invalidate-not-update",
        holds_when="a write deletes the entry; it never sets the new value into the cache",
        exercised_by=("write",),
        applies=_has(Kind.INVALIDATE),
        messages={
            "write-stored": "the write {op} stored {value} into the cache instead of deleting the entry",
        },
        remedy="delete the entry on a write; a set races with reads that fill (or check write-through)",
    ),
    Invariant(
        name="write-updates",
        holds_when="a write leaves the value it wrote in the cache: it stores it after the DB put; "
        "a delete instead fails",
        exercised_by=("write",),
        applies=_has(Kind.STORE),
        messages={
            "never-stored": "the write {op} wrote the DB but never stored {value} in the cache{held}",
            "write-deleted": "the write {op} deleted the entry for {key} instead of storing {value}",
            "stored-other-value": "the write {op} stored {stored}, not the value it wrote, {value}",
        },
        remedy="after the DB put, store the written value as the entry (check cache-aside, whose write invalidates)",
    ),
    Invariant(
        name="fresh-read",
        holds_when="a read that starts after a write completed returns that value or a later one",
        exercised_by=("read-after-write",),
        state_check="fresh_read",
        messages={
            "never-held": "the read {op} of {key} returned {value}, a value the DB never held for it",
            "older": "the read {op} of {key} returned {value}, older than {newer} written before the read began",
            "not-what-it-read": "the read {op} of {key} returned {value}, but what it read was {loaded}",
            "acknowledged-lost": "the read {op} of {key} returned {value}, older than a write that returned "
            "before the read began though its DB put failed (an error swallowed: the write was acknowledged)",
        },
        remedy="return what the cache or the DB holds now; a local copy a write elsewhere cannot clear is stale",
    ),
    Invariant(
        name="coherent-at-rest",
        holds_when="whenever no operation is in flight, every cached entry equals the DB value",
        exercised_by=("invalidate", "store", "fill-during-write", "fill-after-write"),
        state_check="coherent_at_rest",
        messages={
            "stale-entry": "after {op}, with nothing in flight, the cache holds {where} = {value} but the DB "
            "holds {truth}",
        },
        remedy="the pattern as textbooks state it has this race: close it with the pattern's fix",
    ),
    Invariant(
        name="no-lost-write",
        holds_when="every completed write reaches the DB: at rest, the DB holds each key's last completed "
        "write; a dirty entry is never dropped or overwritten before its flush",
        exercised_by=("flush",),
        applies=_has(Kind.TAKE),
        state_check="no_lost_write",
        messages={
            "db-behind": "with nothing in flight and nothing left to flush, the DB holds {key} = {truth}, older "
            "than {value} of the completed write {op}{how}",
            "never-flushed": "the run ended with {where} = {value} of the write {op} never flushed: the DB still "
            "holds {truth}",
        },
        remedy="keep a dirty entry until its flush has landed (never evict it first), and fill on a miss only "
        "where no entry is",
    ),
    Invariant(
        name="flush-order",
        holds_when="the DB never goes back to an older write's value of a key",
        exercised_by=("flush",),
        applies=_has(Kind.TAKE),
        state_check="flush_order",
        messages={
            "went-back": "{op} put {key}={value} after the DB had received {newer}, a later write's value: "
            "the DB went back in time",
        },
        remedy="flush each key's dirty values in the order they were written, one flush of a key at a time",
    ),
    Invariant(
        name="no-stale-refresh",
        holds_when="a refresh never leaves in the cache a value older than a write of its key that completed, "
        "or invalidated, after the refresh's load (storing the DB's current value is fine)",
        exercised_by=("refresh",),
        applies=_has(Kind.REFRESH),
        state_check="no_stale_refresh",
        messages={
            "stale-refresh": "the refresh {op} loaded {value} and stored it after {writer} replaced it with "
            "{newer}: the cache holds the old value again",
        },
        remedy="discard a refresh whose entry changed since it loaded (Caffeine does): store only if no write "
        "stored or invalidated the key in between (a version check, WATCH, or a lease the write's delete voids)",
    ),
    Invariant(
        name="hit-after-fill",
        holds_when="a key whose entry was filled (or stored by a write) and not removed since is served by the "
        "cache, without a DB read",
        exercised_by=("hit",),
        messages={
            "missed-filled": "{key} was filled and not invalidated since, yet the read {op} went to the DB",
            "missed-stored": "{key}'s entry was filled or stored and not removed since, yet the read {op} went "
            "to the DB",
        },
        remedy="look the entry up under the key it was filled under",
    ),
    Invariant(
        name="single-load",
        holds_when="a read performs at most one DB read, and none on a hit",
        exercised_by=("miss", "hit"),
        messages={
            "read-other-key": "the read {op} of {key} read {other} from the DB",
            "loaded-on-hit": "the read {op} read the DB on a hit",
            "loaded-twice": "the read {op} read the DB twice",
        },
        remedy="read the DB once, on a miss",
    ),
)

FAULT_INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        name="no-phantom-read",
        holds_when="a read returns a value the DB held for its key (None only if the key was absent), or raises; "
        "never a stand-in or an error object as data",
        exercised_by=("fault",),
        faults=True,
        messages={
            "phantom": "the read {op} of {key} returned {value}, a value the DB never held for it: a read that "
            "cannot get the value raises",
        },
        remedy="let the store's error reach the caller (or retry): never return None, a default or the error "
        "object in place of a value",
    ),
    Invariant(
        name="no-stale-after-failed-invalidate",
        holds_when="after a write whose invalidation failed, the entry converges without another write: a retry "
        "succeeds, or the entry expires (the report states the staleness bound); stale forever fails, even when "
        "the error reached the caller",
        exercised_by=("failed-invalidation",),
        faults=True,
        state_check="converges",
        messages={
            "stale-forever": "after {writer} ({how}), with nothing in flight, the cache holds {where} = {value} "
            "with no time to live, but the DB holds {truth}: stale until another write",
        },
        remedy="retry the invalidation until it succeeds (or hand it to an outbox), and give every entry a time "
        "to live as the bound on what a lost invalidation costs",
    ),
    Invariant(
        name="no-poisoned-fill",
        holds_when="a failed load leaves no entry behind: no cached error, no cached 'missing' for a key the DB holds",
        exercised_by=("failed-load",),
        faults=True,
        messages={
            "after-failed-load": "the read {op}'s load of {key} failed, yet it filled {value}: the entry stands "
            "for no value the DB held",
            "cached-error": "the read {op} cached {value}, an error object, as the entry for {key}",
        },
        remedy="fill only with what a load returned; when the load fails, fill nothing and let the error reach "
        "the caller",
    ),
)
TRANSACTION_INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        name="invalidate-after-commit",
        holds_when="a write inside a transaction makes its cache step (invalidates the entry, or stores its "
        "value) after the commit that made its value visible, not inside the transaction; judged in a check "
        "whose writes used env.db.transaction()",
        exercised_by=("commit",),
        only_when="commit",
        messages={
            "invalidated-in-transaction": "the write {op} invalidated {key} inside its transaction, before the "
            "commit made its value visible, and not again after it: a read in between reloaded the old value; "
            "{held}",
            "stored-in-transaction": "the write {op} stored {value} in the cache inside its transaction, before "
            "the commit made it visible (a rollback would leave a value the DB never held)",
        },
        remedy="invalidate after the transaction commits: after the with block, or in an on_commit callback",
    ),
)
INVARIANTS = INVARIANTS + FAULT_INVARIANTS + TRANSACTION_INVARIANTS

BY_NAME: dict[str, Invariant] = {inv.name: inv for inv in INVARIANTS}
SITUATION_NAMES: tuple[str, ...] = tuple(s.name for s in SITUATIONS)
# The situations the model's own steps reach, in declaration order: bit n is the n-th.
EVENTS: tuple[str, ...] = tuple(s.name for s in SITUATIONS if s.model)


def invariants_of(
    pattern: Pattern, *, faults: bool = False, reached: frozenset[str] | set[str] = frozenset()
) -> tuple[Invariant, ...]:
    """The invariants that apply to ``pattern``, in declaration order (the fault invariants only in a
    check with ``faults``; one ``only_when`` a situation only once a check ``reached`` it)."""
    return tuple(
        inv
        for inv in INVARIANTS
        if inv.applies(pattern) and (faults or not inv.faults) and (not inv.only_when or inv.only_when in reached)
    )


def invariant_names(pattern: Pattern | None = None, *, faults: bool = False) -> tuple[str, ...]:
    """Every invariant's name, or those every check of ``pattern`` judges (with ``faults``: and the
    fault invariants; not those judged only once a check reaches a situation, as transactions)."""
    return tuple(inv.name for inv in (INVARIANTS if pattern is None else invariants_of(pattern, faults=faults)))


def _shown(concurrent: bool, faults: bool) -> set[str]:
    return {"always"} | ({"concurrent"} if concurrent else set()) | ({"faults"} if faults else set())


def situations_of(pattern: Pattern, *, concurrent: bool, faults: bool = False) -> tuple[str, ...]:
    """What a check of ``pattern`` reports as reached or never reached, in order: those it should
    always reach (a pass without them is vacuous), then those it lists only once reached."""
    shown = _shown(concurrent, faults)
    core = tuple(s.name for s in SITUATIONS if s.shown in shown and s.applies(pattern))
    extra = tuple(s.name for s in SITUATIONS if s.shown == "extra" and s.applies(pattern))
    return core + extra


def expected_situations(pattern: Pattern, *, concurrent: bool, faults: bool = False) -> tuple[str, ...]:
    """The situations a check of ``pattern`` must reach, or say plainly that it did not."""
    shown = _shown(concurrent, faults)
    return tuple(s.name for s in SITUATIONS if s.shown in shown and s.applies(pattern))


def statuses(
    pattern: Pattern,
    failed: tuple[str, ...],
    reached: set[str] | frozenset[str],
    *,
    stopped: bool = False,
    faults: bool = False,
) -> tuple[tuple[str, str], ...]:
    """Each applicable invariant's verdict: ``fail`` (named in ``failed``), ``pass`` (a situation that
    exercises it was reached and it held) or ``not-run``; a failed finding that is not an invariant
    (``adapter-error``, ``timeout``, ``deadlock``) is added last. A search ``stopped`` at its first
    failure ran no other invariant fully: each one not failed is ``not-run``, never ``pass``."""
    out = []
    listed = set(reached) | set(failed)  # an invariant only_when a situation: listed once reached, or failed
    for inv in INVARIANTS:
        if not (inv.applies(pattern) and (faults or not inv.faults)):
            continue
        if inv.only_when and inv.only_when not in listed and inv.name not in listed:
            continue
        if inv.name in failed:
            out.append((inv.name, "fail"))
        elif not stopped and any(s in reached for s in inv.exercised_by):
            out.append((inv.name, "pass"))
        else:
            out.append((inv.name, "not-run"))
    out += [(name, "fail") for name in failed if name not in BY_NAME]
    return tuple(out)
