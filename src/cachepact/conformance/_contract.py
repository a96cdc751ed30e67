"""The public adapter contract: what a user's factory returns (spec/contract.md states it in full)."""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any

import attrs

from ..errors import DefinitionError
from .record.attribution import code_of

# What a ``cache_code`` entry may be: a class, a module, a module name, or a function, method,
# decorator (factory) or other callable whose code the kit can find.
CACHE_CODE_KINDS = (type, types.ModuleType, str)


class _Sentinel:
    """A meaning ``decode`` may return: one object per name, which pickles as itself."""

    name = ""
    _instance: _Sentinel | None = None

    def __new__(cls) -> _Sentinel:
        if cls.__dict__.get("_instance") is None:
            cls._instance = super().__new__(cls)
        return cls._instance  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"cachepact.{self.name}"

    def __reduce__(self) -> str:
        return self.name


class _Absent(_Sentinel):
    """``cachepact.ABSENT``: what ``decode`` returns for a negative-cache marker ("the DB has no value")."""

    name = "ABSENT"


class _NoEntry(_Sentinel):
    """``cachepact.NO_ENTRY``: what ``decode`` returns for a tombstone, a payload that means "this key
    has no entry" (``"__invalidated__"``); a write that stores one invalidates."""

    name = "NO_ENTRY"


ABSENT = _Absent()
NO_ENTRY = _NoEntry()


def _optional_callable(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not callable(value):
        takes = {"decode": "(payload)", "flush": "no argument"}.get(attribute.name, "(key)")
        raise DefinitionError(
            f"Adapter.{attribute.name} is {article(type(value).__name__)}, not a callable; pass a function "
            f"taking {takes}, or leave it out",
            field=attribute.name,
        )


def _check_cache_code(instance: Any, attribute: Any, value: tuple) -> None:
    for entry in value:
        if not isinstance(entry, CACHE_CODE_KINDS) and not (callable(entry) and code_of(entry) is not None):
            raise DefinitionError(
                f"cache_code entry {entry!r} is {article(type(entry).__name__)}; name classes, functions, "
                "modules or module-name strings such as 'dogpile.cache'",
                field="cache_code",
            )


def article(noun: str) -> str:
    """``an int``, ``a dict``: a type name as the kit's messages say it."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(value)
    return (value,)


@attrs.frozen(kw_only=True)
class Adapter:
    """A user's cache, as the kit drives it; a factory ``make(env)`` returns one.

    ``read(key) -> value`` and ``write(key, value)`` are the application's two operations.
    ``cache_code`` names what counts as the Cache (classes, functions, modules, or module-name
    prefixes such as ``"dogpile.cache"``): a DB or cache call made while such code is on the call
    stack is the Cache's, any other is the App's.

    The refinement mapping, for code that stores something other than the value under the key:
    ``decode(payload)`` gives the value a cache entry stands for, ``cachepact.ABSENT`` for a
    negative-cache marker, or ``cachepact.NO_ENTRY`` for a tombstone (default: the kit's own values
    found in plain, JSON or pickled payloads, and a serialised None as ABSENT); ``cache_key(key)``
    gives the cache key of a key's entry, and may read ``env.redis``/``env.cache`` (default: learned
    from every look, store and removal). ``claim_key(key)`` gives the cache key (or keys) where the
    adapter keeps its own claim on the key's entry (a lease, a lock, a marker), for claims the kit
    cannot recognise by their effect: never an entry, and a read that finds it held waits.
    ``flush()`` (patterns with background work) drains what the adapter has left to do where the
    kit cannot see it run (a library's own flusher, a process pool): the kit calls it, as the Cache's
    background work, whenever every operation is done and it is about to judge the system at rest.
    The full contract, ``env`` included, is spec/contract.md in the cachepact sources.
    """

    read: Callable[[Any], Any]
    write: Callable[[Any, Any], Any]
    cache_code: tuple = attrs.field(default=(), converter=_as_tuple, validator=_check_cache_code)
    decode: Callable[[Any], Any] | None = attrs.field(default=None, validator=_optional_callable)
    cache_key: Callable[[Any], Any] | None = attrs.field(default=None, validator=_optional_callable)
    claim_key: Callable[[Any], Any] | None = attrs.field(default=None, validator=_optional_callable)
    flush: Callable[[], Any] | None = attrs.field(default=None, validator=_optional_callable)

    def __attrs_post_init__(self) -> None:
        for name in ("read", "write"):
            value = getattr(self, name)
            if inspect.isasyncgenfunction(value) or inspect.isgeneratorfunction(value):
                what = "an async generator" if inspect.isasyncgenfunction(value) else "a generator"
                raise DefinitionError(
                    f"Adapter.{name} is {what} function (it yields); pass a function, or an async def, "
                    f"that returns {'the value' if name == 'read' else 'once the write is done'}",
                    field=name,
                )
            if not callable(value):
                raise DefinitionError(
                    f"Adapter.{name} is {article(type(value).__name__)}, not a callable; pass a function "
                    f"taking {'(key)' if name == 'read' else '(key, value)'}",
                    field=name,
                )
