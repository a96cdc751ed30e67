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

A third program kind, background work (a refresh of a key, a flush of a dirty value), started by an
operation or by the clock, is where ``refresh-ahead`` and ``write-behind`` will go: a ``Pattern``
then carries its ``background`` programs beside ``read`` and ``write``. They are named here, so a
user asking for them is told they are not modelled yet rather than that they do not exist.
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

    def by(self, kind: Kind) -> Actor:
        """Who the pattern names for the first instruction of ``kind`` (in the read, then the write)."""
        return next(i.by for i in (*self.read, *self.write) if i.kind is kind)

    def has(self, kind: Kind) -> bool:
        """Whether either program has an instruction of ``kind``."""
        return any(i.kind is kind for i in (*self.read, *self.write))

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
}

# Names the design fixes for patterns that need background work (a third program kind and the
# clock): asking for them says so, instead of "unknown".
_BACKGROUND_ONLY = {
    "refresh-ahead": "its refresh is background work",
    "write-behind": "its flush is background work",
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

# Every distinct pattern, under its own name; composed names that are another's alias resolve to it.
PATTERNS: dict[str, Pattern] = {
    p.name: p for p in (CACHE_ASIDE, READ_THROUGH, WRITE_THROUGH, CACHE_ASIDE_WRITE_THROUGH)
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
    if isinstance(name, str) and name in _BACKGROUND_ONLY:
        raise InvalidArgument(
            "pattern", name, f"{name!r} is not modelled yet ({_BACKGROUND_ONLY[name]}); use one of: {known}"
        )
    if isinstance(name, str) and name.count("+") == 1:
        read, write = name.split("+")
        for half, names, what in ((read, READS, "read"), (write, WRITES, "write")):
            if half not in names:
                later = f" ({_BACKGROUND_ONLY[half]}, not modelled yet)" if half in _BACKGROUND_ONLY else ""
                raise InvalidArgument(
                    "pattern",
                    name,
                    f"{name!r}: {half!r} is not a {what} half{later}; use one of: {', '.join(names)}",
                )
    raise InvalidArgument("pattern", name, f"{name!r} is unknown; use one of: {known}")
