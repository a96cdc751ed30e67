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


READ, WRITE = OpKind.READ, OpKind.WRITE
