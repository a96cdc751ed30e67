"""Who made a call: App or Cache, decided by dynamic extent over ``cache_code``.

A DB or cache call is the Cache's when code named in ``cache_code`` is on the call stack between
the kit's operation entry and the call; otherwise it is the App's. So a creator closure the app
hands to a library's ``get_or_create`` runs as the Cache (read-through), and an app that reads the
DB itself after a miss is loading itself (cache-aside).
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Iterable
from typing import Any

from ..model import Actor


class Attribution:
    def __init__(self, cache_code: Iterable[Any], boundary: types.CodeType) -> None:
        self._boundary = boundary
        self._codes: set[types.CodeType] = set()
        self._classes: list[tuple[str, str]] = []  # (module, qualname prefix)
        self._modules: set[str] = set()
        self._prefixes: list[str] = []
        for entry in cache_code:
            if isinstance(entry, type):
                for cls in entry.__mro__:
                    if cls.__module__ != "builtins":
                        self._classes.append((cls.__module__, cls.__qualname__ + "."))
            elif isinstance(entry, types.ModuleType):
                self._modules.add(entry.__name__)
            elif isinstance(entry, str):
                self._prefixes.append(entry)
            else:
                fn = inspect.unwrap(getattr(entry, "__func__", entry))
                self._codes.add(fn.__code__)
        # Whether a code object belongs to the Cache never changes, so it is decided once per code.
        self._memo: dict[int, tuple[types.CodeType, str, bool]] = {}

    def _is_cache(self, frame: types.FrameType) -> bool:
        code = frame.f_code
        module = frame.f_globals.get("__name__", "")
        # Keyed by identity: code objects hash and compare by value (slow, and identical source
        # exec'd in two modules would share a verdict); the entry keeps the code alive and checks it.
        known = self._memo.get(id(code))
        if known is not None and known[0] is code and known[1] == module:
            return known[2]
        qualname = getattr(code, "co_qualname", code.co_name)
        verdict = (
            code in self._codes
            or module in self._modules
            or any(module == p or module.startswith(p + ".") for p in self._prefixes)
            or any(module == m and qualname.startswith(q) for m, q in self._classes)
        )
        self._memo[id(code)] = (code, module, verdict)
        return verdict

    def actor(self, depth: int = 2) -> Actor:
        """The actor of the call being made ``depth`` frames above this one."""
        frame: types.FrameType | None = sys._getframe(depth)
        boundary = self._boundary
        while frame is not None and frame.f_code is not boundary:
            if self._is_cache(frame):
                return Actor.CACHE
            frame = frame.f_back
        return Actor.APP
