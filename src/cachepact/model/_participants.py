"""The three participants of every caching pattern."""

from __future__ import annotations

import enum


class Actor(enum.StrEnum):
    """Who makes a call. Values are the names reports and diagrams print."""

    APP = "App"
    CACHE = "Cache"
    DB = "DB"


class OpKind(enum.StrEnum):
    """Which program an operation runs. Values are the letters replay strings and operation names
    use (``r1``, ``w:k1``), so an ``OpKind`` compares equal to its letter."""

    READ = "r"
    WRITE = "w"
    # Background work (a third program kind): started by an operation or by the clock, never by a
    # caller, so never in a replay string; the letters name its workers (``rf1``, ``fl1``).
    REFRESH = "rf"
    FLUSH = "fl"


READ, WRITE, REFRESH, FLUSH = OpKind.READ, OpKind.WRITE, OpKind.REFRESH, OpKind.FLUSH
BACKGROUND = (REFRESH, FLUSH)


def is_background(op: str) -> bool:
    """Whether an operation name names background work (``rf1``, ``fl1``; ``bg1`` where the kit
    cannot tell which kind a worker is) rather than a caller's read or write."""
    return op[:2] in ("rf", "fl", "bg") and op[2:].isdigit()
