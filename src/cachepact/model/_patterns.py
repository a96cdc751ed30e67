"""The patterns, each defined once: its read and write programs. Adding a pattern touches only this module.

A program is a short list of instructions, each one atomic step on the DB or the cache, with the
participant the pattern names for it. ``System`` (``_system.py``) gives every instruction kind its
meaning; the explorer enumerates programs, the conformance judge matches recorded runs against
them, and ``explain`` and the diagrams print the flows they produce.

How programs run, for every pattern:

* a read starts with a ``LOOKUP``: a hit ends it, returning the cached value; a miss runs the rest
  in order; a lookup told to wait (a lease is out) may look up again, or load and return without
  filling;
* ``LOAD`` reads the DB; ``FILL`` stores what the read loaded (or, in a write, what it writes);
  ``PUT`` writes the op's value to the DB; ``INVALIDATE`` deletes the entry and voids its leases;
* a read returns what it loaded; a write completes with its last instruction.
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
class Pattern:
    """A caching pattern: a read program and a write program."""

    name: str
    read: tuple[Instr, ...]
    write: tuple[Instr, ...]
    summary: str = ""

    def by(self, kind: Kind) -> Actor:
        """Who the pattern names for the first instruction of ``kind`` (in the read, then the write)."""
        return next(i.by for i in (*self.read, *self.write) if i.kind is kind)

    @property
    def load_by(self) -> Actor:
        return self.by(Kind.LOAD)

    @property
    def fill_by(self) -> Actor:
        return self.by(Kind.FILL)


_LOOKUP = Instr(Kind.LOOKUP, Actor.APP, strict=False)
# The write path is the seed's for both: the App writes the DB, then invalidates the entry.
_WRITE = (Instr(Kind.PUT, Actor.APP), Instr(Kind.INVALIDATE, Actor.APP, strict=False))

CACHE_ASIDE = Pattern(
    name="cache-aside",
    # The App fills through whatever cache API it has (a library's set is the App populating on its
    # own behalf), so the fill's participant is not strict; the App's own DB read is what makes it
    # cache-aside.
    read=(_LOOKUP, Instr(Kind.LOAD, Actor.APP), Instr(Kind.FILL, Actor.APP, strict=False)),
    write=_WRITE,
    summary="The application loads from the DB on a miss and fills the cache.",
)
READ_THROUGH = Pattern(
    name="read-through",
    read=(_LOOKUP, Instr(Kind.LOAD, Actor.CACHE), Instr(Kind.FILL, Actor.CACHE)),
    write=_WRITE,
    summary="The cache (or its library) loads from the DB on a miss and stores the entry itself.",
)

PATTERNS: dict[str, Pattern] = {p.name: p for p in (CACHE_ASIDE, READ_THROUGH)}


def pattern_named(name: str) -> Pattern:
    """Look a pattern up by its public name; the error lists the names that exist."""
    try:
        return PATTERNS[name]
    except (KeyError, TypeError):
        known = ", ".join(PATTERNS)
        raise InvalidArgument("pattern", name, f"{name!r} is unknown; use one of: {known}") from None
