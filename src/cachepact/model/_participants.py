"""The three participants of every caching pattern."""

from __future__ import annotations

import enum


class Actor(enum.StrEnum):
    """Who makes a call. Values are the names reports and diagrams print."""

    APP = "App"
    CACHE = "Cache"
    DB = "DB"
