"""The patterns, each defined once as data: a read program times a write program. Adding a pattern
touches only this module (and, for a new kind of step, ``_system.py``, which gives it a meaning).

A program is a short list of instructions, each one atomic step on the DB or the cache, with the
participant the pattern names for it. ``System`` (``_system.py``) gives every instruction kind its
meaning; the explorer enumerates programs, the conformance judge matches recorded runs against
them, and ``explain`` and the diagrams print the flows they produce.

How programs run, for every pattern:

* a read starts with a ``LOOKUP``: a hit ends it, returning the cached value; a miss runs the rest
  in order; a lookup told to wait (a lease is out) may look up again, or load and return without
  filling;
* ``LOAD`` reads the DB; ``FILL`` stores what the read loaded; ``PUT`` writes the op's value to the
  DB; ``INVALIDATE`` deletes the entry and voids its leases; ``STORE`` sets the write's own value
  as the entry (leases stay out: only a delete voids them);
* ``LOCK`` and ``UNLOCK`` take and release the key's lock (the serialising fix, ``Scenario.locks``);
* a read returns what it loaded; a write completes with its last instruction.

Background work is the third program kind: a refresh of a key (``refresh-ahead``: a hit on an
entry that has aged serves it and starts one) and a flush of a key's dirty value (``write-behind``:
a write stores its value as a dirty entry and returns; a flush, started by the clock, puts it into
the DB later). A ``Half`` carries its ``background`` programs beside its own; the model runs them
on background workers, and the system is at rest only when no operation is in flight, every worker
is idle and no dirty value waits for its flush.

* ``REFRESH`` stores what the refresh loaded as the entry (with the pattern's fix, only when
  nothing changed the entry since the load, as Caffeine discards a raced refresh);
* ``TAKE`` is the flush picking up the dirty value it will put (a queue's dequeue, a scan of dirty
  entries); the flush's ``PUT`` then writes it to the DB.
"""

from __future__ import annotations

import enum

import attrs

from ..errors import InvalidArgument
from ._participants import Actor


class Kind(enum.StrEnum):
    LOOKUP = "lookup"
    LOAD = "load"
    FILL = "fill"
    PUT = "put"
    INVALIDATE = "invalidate"
    STORE = "store"
    LOCK = "lock"
    UNLOCK = "unlock"
    REFRESH = "refresh"
    TAKE = "take"


@attrs.frozen
class Instr:
    """One step of a program: what it does, who the pattern names for it, and whether a run must
    have exactly that participant make it (``strict``). A lookup, or a write's invalidation, may be
    made by either: a read-through library looks itself up, and a library's ``invalidate`` runs as
    the Cache on the App's behalf."""

    kind: Kind
    by: Actor
    strict: bool = True


@attrs.frozen(kw_only=True)
class Background:
    """Background work a half brings: its program, what starts it (``"hit"``: a read's hit on an
    entry that has aged; ``"dirty"``: the clock, while a dirty value waits), and what it does."""

    name: str  # "refresh" or "flush": the worker's kind
    program: tuple[Instr, ...]
    started_by: str
    summary: str


@attrs.frozen(kw_only=True)
class Half:
    """One half of a pattern: a read program or a write program, with what the docs say of it.

    ``fix`` names the model's variant that closes this half's races (``"leases"``, ``"locks"``),
    ``race_hint`` how to close a race the textbook half allows, in the user's terms (``{ck}`` the
    cache key, ``{value}`` the stale value, ``{lease_get}``/``{lease_set}`` the lease calls of the
    API the adapter used)."""

    name: str
    program: tuple[Instr, ...]
    summary: str
    fix: str = ""
    race_hint: str = ""
    # A write half whose steps either party may make names, in diagrams and tables, the party that
    # loads on a miss: the App in cache-aside+write-through (AWS's lazy loading plus write-through by
    # the app), the Cache in write-through (JCache's CacheWriter).
    by_reader: bool = False
    background: tuple[Background, ...] = ()


@attrs.frozen(kw_only=True)
class Pattern:
    """A caching pattern: a read program and a write program (``reads`` and ``writes``, the halves)."""

    name: str
    reads: Half
    writes: Half
    summary: str = ""

    @property
    def read(self) -> tuple[Instr, ...]:
        return self.reads.program

    @property
    def write(self) -> tuple[Instr, ...]:
        return self.writes.program

    @property
    def background(self) -> tuple[Background, ...]:
        """The background work of both halves (a refresh, a flush), in that order."""
        return (*self.reads.background, *self.writes.background)

    def background_named(self, name: str) -> Background | None:
        return next((b for b in self.background if b.name == name), None)

    def _instrs(self) -> tuple[Instr, ...]:
        return (*self.read, *self.write, *(i for b in self.background for i in b.program))

    def by(self, kind: Kind) -> Actor:
        """Who the pattern names for the first instruction of ``kind`` (in the read, the write, then
        background work)."""
        return next(i.by for i in self._instrs() if i.kind is kind)

    def has(self, kind: Kind) -> bool:
        """Whether any of its programs, background work included, has an instruction of ``kind``."""
        return any(i.kind is kind for i in self._instrs())

    @property
    def load_by(self) -> Actor:
        return self.by(Kind.LOAD)

    @property
    def fill_by(self) -> Actor:
        return self.by(Kind.FILL)

    @property
    def fix(self) -> str:
        """The model's variant that closes this pattern's races: the write half's."""
        return self.writes.fix

    @property
    def composed_name(self) -> str:
        return f"{self.reads.name}+{self.writes.name}"


_LOOKUP = Instr(Kind.LOOKUP, Actor.APP, strict=False)

READS: dict[str, Half] = {
    "cache-aside": Half(
        name="cache-aside",
        # The App fills through whatever cache API it has (a library's set is the App populating on
        # its own behalf), so the fill's participant is not strict; the App's own DB read is what
        # makes it cache-aside.
        program=(_LOOKUP, Instr(Kind.LOAD, Actor.APP), Instr(Kind.FILL, Actor.APP, strict=False)),
        summary="the application loads from the DB on a miss and fills the cache",
    ),
    "read-through": Half(
        name="read-through",
        program=(_LOOKUP, Instr(Kind.LOAD, Actor.CACHE), Instr(Kind.FILL, Actor.CACHE)),
        summary="the cache (or its library) loads from the DB on a miss and stores the entry itself",
    ),
    "refresh-ahead": Half(
        name="refresh-ahead",
        program=(_LOOKUP, Instr(Kind.LOAD, Actor.CACHE), Instr(Kind.FILL, Actor.CACHE)),
        summary="the cache loads on a miss, and a hit on an entry that has aged serves it and reloads it "
        "in the background (Caffeine's refreshAfterWrite)",
        background=(
            Background(
                name="refresh",
                program=(Instr(Kind.LOAD, Actor.CACHE), Instr(Kind.REFRESH, Actor.CACHE)),
                started_by="hit",
                summary="the Cache reloads the entry and stores what it loaded; reads keep the old value meanwhile",
            ),
        ),
    ),
}

WRITES: dict[str, Half] = {
    "invalidate": Half(
        name="invalidate",
        # The seed's write path: the App writes the DB, then invalidates the entry.
        program=(Instr(Kind.PUT, Actor.APP), Instr(Kind.INVALIDATE, Actor.APP, strict=False)),
        summary="the App writes the DB, then invalidates (deletes) the entry",
        fix="leases",
        race_hint=(
            "fill through a lease ({lease_get} before reading the DB, then {lease_set}): the write's delete "
            "voids the lease, and the cache refuses the stale fill"
        ),
    ),
    "write-through": Half(
        name="write-through",
        # Who makes the DB put and the cache store is not strict: the App through the cache's API
        # (AWS's lazy loading plus write-through), or the cache's own writer (JCache's CacheWriter).
        program=(Instr(Kind.PUT, Actor.CACHE, strict=False), Instr(Kind.STORE, Actor.CACHE, strict=False)),
        summary="the DB is written, then the written value is stored in the cache before the write returns",
        fix="locks",
        by_reader=True,
        race_hint=(
            "serialise each key's writes and miss-fills with a per-key lock held from before the DB call to "
            "after the cache call (a redis-py Lock, or env.cache.add(lock key) polled): a store and a fill of "
            "one key then never cross"
        ),
    ),
    "write-behind": Half(
        name="write-behind",
        # The write stores its value as a dirty entry (through the cache's API, so either party) and
        # returns; only the Cache's flush may write the DB.
        program=(Instr(Kind.STORE, Actor.APP, strict=False),),
        summary="the written value is stored in the cache as a dirty entry and the write returns; the cache "
        "puts it into the DB later (a flush)",
        fix="locks",
        race_hint=(
            "flush each key's dirty values in order, one flush of a key at a time (one flusher draining a "
            "queue, or a per-key lock from taking the value to the DB put), keep a dirty entry until its "
            "flush has landed, and fill on a miss only where no entry is (add, SET NX)"
        ),
        background=(
            Background(
                name="flush",
                program=(Instr(Kind.TAKE, Actor.CACHE), Instr(Kind.PUT, Actor.CACHE)),
                started_by="dirty",
                summary="the Cache takes a dirty value and puts it into the DB",
            ),
        ),
    ),
}


def _half(halves: dict[str, Half], name: str, what: str) -> Half:
    try:
        return halves[name]
    except KeyError:
        raise InvalidArgument(
            "pattern", name, f"{name!r} is not a {what} half; use one of: {', '.join(halves)}"
        ) from None


def compose(read: str, write: str, *, name: str | None = None, summary: str = "") -> Pattern:
    """The pattern ``READ+WRITE``: a read half and a write half, each named as in ``READS``/``WRITES``."""
    reads, writes = _half(READS, read, "read"), _half(WRITES, write, "write")
    if writes.by_reader:
        loader = next(i.by for i in reads.program if i.kind is Kind.LOAD)
        program = tuple(i if i.strict else attrs.evolve(i, by=loader) for i in writes.program)
        writes = attrs.evolve(writes, program=program)
    text = summary or f"On a miss {reads.summary}; on a write {writes.summary}."
    return Pattern(name=name or f"{read}+{write}", reads=reads, writes=writes, summary=text)


CACHE_ASIDE = compose(
    "cache-aside",
    "invalidate",
    name="cache-aside",
    summary="The application loads from the DB on a miss and fills the cache.",
)
READ_THROUGH = compose(
    "read-through",
    "invalidate",
    name="read-through",
    summary="The cache (or its library) loads from the DB on a miss and stores the entry itself.",
)
WRITE_THROUGH = compose(
    "read-through",
    "write-through",
    name="write-through",
    summary="The cache loads on a miss; a write goes to the DB and then its value into the cache, before it returns.",
)
CACHE_ASIDE_WRITE_THROUGH = compose(
    "cache-aside",
    "write-through",
    summary="The application loads lazily on a miss and writes through: DB first, then the value into the cache.",
)
REFRESH_AHEAD = compose(
    "refresh-ahead",
    "invalidate",
    name="refresh-ahead",
    summary="The cache loads on a miss and reloads an ageing entry in the background while reads keep "
    "getting the old value; a write puts the DB, then invalidates.",
)
WRITE_BEHIND = compose(
    "read-through",
    "write-behind",
    name="write-behind",
    summary="The cache loads on a miss; a write stores its value in the cache as a dirty entry and returns, "
    "and the cache flushes it into the DB later.",
)

# Every distinct pattern, under its own name; composed names that are another's alias resolve to it.
# ``NAMED`` are those a table shows by default (the design's five, and cache-aside+write-through as
# AWS describes it). Every pairing of a read half and a write half is a pattern: the named ones, then the rest under
# their composed names.
NAMED = (CACHE_ASIDE, READ_THROUGH, WRITE_THROUGH, CACHE_ASIDE_WRITE_THROUGH, REFRESH_AHEAD, WRITE_BEHIND)
_PAIRS = {p.composed_name for p in NAMED}
PATTERNS: dict[str, Pattern] = {
    p.name: p for p in (*NAMED, *(compose(r, w) for r in READS for w in WRITES if f"{r}+{w}" not in _PAIRS))
}
ALIASES: dict[str, Pattern] = {p.composed_name: p for p in PATTERNS.values() if p.composed_name != p.name}


def pattern_names() -> tuple[str, ...]:
    """Every name ``pattern_named`` takes: the patterns, then the composed names that alias one."""
    return (*PATTERNS, *ALIASES)


def pattern_named(name: str) -> Pattern:
    """Look a pattern up by its public name (``cache-aside``, ``write-through``, ``READ+WRITE``); the
    error names what is wrong in one line: an unknown half, or the names that exist."""
    if isinstance(name, str):
        if name in PATTERNS:
            return PATTERNS[name]
        if name in ALIASES:
            return ALIASES[name]
    known = ", ".join(pattern_names())
    if isinstance(name, str) and name.count("+") == 1:
        read, write = name.split("+")
        for half, names, what in ((read, READS, "read"), (write, WRITES, "write")):
            if half not in names:
                raise InvalidArgument(
                    "pattern", name, f"{name!r}: {half!r} is not a {what} half; use one of: {', '.join(names)}"
                )
    raise InvalidArgument("pattern", name, f"{name!r} is unknown; use one of: {known}")
