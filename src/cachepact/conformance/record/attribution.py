"""Who made a call: App or Cache, decided by dynamic extent over ``cache_code``.

A DB or cache call is the Cache's when code named in ``cache_code`` is on the call stack between
the kit's operation entry and the call; otherwise it is the App's. So a creator closure the app
hands to a library's ``get_or_create`` runs as the Cache (read-through), and an app that reads the
DB itself after a miss is loading itself (cache-aside).

A name covers the code of the object named: a function's own code and every function defined in
it, so a decorator factory covers every wrapper it makes and a wrapper covers itself (not only the
function it wraps); a class covers its methods and its bases'; a module or a module-name prefix
covers the code defined there. Whatever the named code calls runs within it, so it counts too.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Iterable
from typing import Any

from ...model import Actor


def code_of(entry: Any) -> types.CodeType | None:
    """The code a callable ``cache_code`` entry names: its own (a wrapper's, not what it wraps),
    else what it wraps (a wrapper written in C, such as ``functools.lru_cache``), else its class's
    ``__call__``."""
    fn = getattr(entry, "__func__", entry)
    code = getattr(fn, "__code__", None)
    if isinstance(code, types.CodeType):
        return code
    try:
        inner = inspect.unwrap(fn)
    except ValueError:
        inner = fn
    code = getattr(inner, "__code__", None)
    if isinstance(code, types.CodeType):
        return code
    call = vars(type(fn)).get("__call__")  # a callable object: its class's method
    code = getattr(getattr(call, "__func__", call), "__code__", None)
    return code if isinstance(code, types.CodeType) else None


def _nested(code: types.CodeType) -> Iterable[types.CodeType]:
    """A code object and every code object defined inside it (closures, the wrappers a factory makes)."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _nested(const)


def label(entry: Any) -> str:
    """How a warning names a ``cache_code`` entry."""
    if isinstance(entry, str):
        return repr(entry)
    if isinstance(entry, types.ModuleType):
        return entry.__name__
    name = getattr(entry, "__qualname__", None) or getattr(type(entry), "__qualname__", repr(entry))
    module = getattr(entry, "__module__", None)
    return f"{module}.{name}" if module else name


class Attribution:
    def __init__(self, cache_code: Iterable[Any], boundary: types.CodeType) -> None:
        self._boundary = boundary
        entries = list(cache_code)
        self.labels = [label(e) for e in entries]
        self._codes: dict[types.CodeType, set[int]] = {}
        self._classes: list[tuple[str, str, int]] = []  # (module, qualname prefix, entry)
        self._modules: dict[str, set[int]] = {}
        self._prefixes: list[tuple[str, int]] = []
        for n, entry in enumerate(entries):
            if isinstance(entry, type):
                for cls in entry.__mro__:
                    if cls.__module__ != "builtins":
                        self._classes.append((cls.__module__, cls.__qualname__ + ".", n))
            elif isinstance(entry, types.ModuleType):
                self._modules.setdefault(entry.__name__, set()).add(n)
            elif isinstance(entry, str):
                self._prefixes.append((entry, n))
            else:
                code = code_of(entry)
                if code is not None:
                    for c in _nested(code):
                        self._codes.setdefault(c, set()).add(n)
        # Which entries a frame's code belongs to never changes: decided once per code object.
        self._memo: dict[int, tuple[types.CodeType, str, frozenset[int]]] = {}
        self.seen: set[int] = set()  # entries found on the stack of a call since the last reset

    def _matches(self, frame: types.FrameType) -> frozenset[int]:
        code = frame.f_code
        module = frame.f_globals.get("__name__", "")
        # Keyed by identity: code objects hash and compare by value (slow, and identical source
        # exec'd in two modules would share a verdict); the entry keeps the code alive and checks it.
        known = self._memo.get(id(code))
        if known is not None and known[0] is code and known[1] == module:
            return known[2]
        qualname = getattr(code, "co_qualname", code.co_name)
        matched = set(self._codes.get(code, ()))
        matched.update(self._modules.get(module, ()))
        matched.update(n for p, n in self._prefixes if module == p or module.startswith(p + "."))
        matched.update(n for m, q, n in self._classes if module == m and qualname.startswith(q))
        verdict = frozenset(matched)
        self._memo[id(code)] = (code, module, verdict)
        return verdict

    def actor(self, depth: int = 2) -> Actor:
        """The actor of the call being made ``depth`` frames above this one."""
        frame: types.FrameType | None = sys._getframe(depth)
        boundary = self._boundary
        found = False
        complete = len(self.seen) == len(self.labels)
        while frame is not None and frame.f_code is not boundary:
            matched = self._matches(frame)
            if matched:
                if complete:
                    return Actor.CACHE
                # Until every entry has been seen, look further: an outer entry is on the stack too.
                found = True
                self.seen |= matched
                complete = len(self.seen) == len(self.labels)
            frame = frame.f_back
        return Actor.CACHE if found else Actor.APP
