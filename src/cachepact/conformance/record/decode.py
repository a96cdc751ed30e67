"""What a cache entry stands for: the refinement mapping from payloads to the kit's values.

The kit's values are tokens no application writes by accident: ``k1.v0`` (what the DB holds for
``k1`` at the start) and ``k1.v3`` (the third value any write put, written to ``k1``). So without a
``decode=`` of its own, an adapter that serialises them (plain, JSON, pickle, a wrapper object with
metadata, as dogpile.cache and cachelib store) is understood: the payload stands for the one token
found inside it. A payload that is a serialised None stands for ``ABSENT`` (a negative entry).
Anything else is ``UNDECODABLE``: bookkeeping (a lock, a version counter) unless a read that had to
fill stored it, which the report then names, suggesting ``decode=``.
"""

from __future__ import annotations

import pickle
import re
from typing import Any

from .._contract import ABSENT

TOKEN = re.compile(r"k\d+\.v\d+")
UNDECODABLE = type("Undecodable", (), {"__repr__": lambda self: "UNDECODABLE"})()
_NONE_PAYLOADS = ("null", "None", b"null", b"None")
_MAX_DEPTH = 6
_PICKLE_MARKERS = (b"!",)  # Flask-Caching's and cachelib's RedisCache put this byte before a pickle


def default_decode(payload: Any) -> Any:
    """The kit's token inside ``payload``, ABSENT for a serialised None, or UNDECODABLE."""
    if type(payload) is str and TOKEN.fullmatch(payload):  # the common case, first
        return payload
    if _is_serialised_none(payload):
        return ABSENT
    found: set[str] = set()
    _search(payload, found, 0)
    return found.pop() if len(found) == 1 else UNDECODABLE


def _is_serialised_none(payload: Any) -> bool:
    if isinstance(payload, (str, bytes)) and payload.strip() in _NONE_PAYLOADS:
        return True
    # Only a bare pickle: a library's marked one (Flask-Caching's ``b"!" + pickle``) of None is what
    # it stores for a miss it will not serve (``cache_none=False``): no negative entry.
    if isinstance(payload, bytes) and payload[:1] == b"\x80":
        try:
            return pickle.loads(payload) is None
        except Exception:
            return False
    return False


def _pickle_start(payload: Any) -> int:
    """Where a pickle starts in ``payload``: at once, or after a library's one-byte marker (Flask-Caching
    and cachelib store ``b"!" + pickle``); -1 when it holds none."""
    if isinstance(payload, bytes):
        if payload[:1] == b"\x80":
            return 0
        if payload[1:2] == b"\x80" and payload[:1] in _PICKLE_MARKERS:
            return 1
    return -1


def _search(x: Any, found: set[str], depth: int) -> None:
    if depth > _MAX_DEPTH or len(found) > 1:
        return
    if isinstance(x, str):
        found.update(TOKEN.findall(x))
        return
    if isinstance(x, (bytes, bytearray, memoryview)):
        raw = bytes(x)
        start = _pickle_start(raw)
        if start >= 0:  # a pickle: look at what it holds (the adapter's own bytes, from this run)
            try:
                _search(pickle.loads(raw[start:]), found, depth + 1)
                return
            except Exception:
                pass
        _search(raw.decode("utf-8", errors="ignore"), found, depth + 1)
        return
    if isinstance(x, dict):
        for k, v in x.items():
            _search(k, found, depth + 1)
            _search(v, found, depth + 1)
        return
    if isinstance(x, (list, tuple, set, frozenset)):
        for item in x:
            _search(item, found, depth + 1)
        return
    fields = getattr(x, "__dict__", None)
    if isinstance(fields, dict):
        _search(fields, found, depth + 1)
    for slot in getattr(type(x), "__slots__", ()):
        if hasattr(x, slot):
            _search(getattr(x, slot), found, depth + 1)
