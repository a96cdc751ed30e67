"""The three participants of every caching pattern, and the patterns' responsibility rules."""

from __future__ import annotations

import enum

import attrs

from ..errors import InvalidArgument


class Actor(enum.StrEnum):
    """Who makes a call. Values are the names reports and diagrams print."""

    APP = "App"
    CACHE = "Cache"
    DB = "DB"


@attrs.frozen(kw_only=True)
class Pattern:
    """A caching pattern as a set of responsibilities: which participant does each part.

    The seed document's whole distinction between cache-aside and read-through is the
    ``load_by`` / ``fill_by`` pair; the write path is the same for both.
    """

    name: str
    lookup_by: Actor
    load_by: Actor
    fill_by: Actor
    write_by: Actor = Actor.APP
    invalidate_by: Actor = Actor.APP
    summary: str = ""


CACHE_ASIDE = Pattern(
    name="cache-aside",
    lookup_by=Actor.APP,
    load_by=Actor.APP,
    fill_by=Actor.APP,
    summary="The application loads from the DB on a miss and fills the cache.",
)
READ_THROUGH = Pattern(
    name="read-through",
    lookup_by=Actor.APP,
    load_by=Actor.CACHE,
    fill_by=Actor.CACHE,
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
