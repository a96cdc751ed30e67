"""The public adapter contract: what a user's factory returns, and the errors a bad one gets."""

from __future__ import annotations

import inspect
import types
from typing import Any, Callable

import attrs


class DefinitionError(TypeError):
    """The adapter or its target is unusable as written; the message names the fix (exit 2)."""

    def __init__(self, message: str, *, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


CacheCode = type | types.FunctionType | types.ModuleType | str


def _check_cache_code(instance: Any, attribute: Any, value: tuple) -> None:
    for entry in value:
        if isinstance(entry, (type, types.FunctionType, types.MethodType, types.ModuleType, str)):
            continue
        raise DefinitionError(
            f"cache_code entry {entry!r} is a {type(entry).__name__}; name classes, functions, "
            "modules or module-name strings such as 'dogpile.cache'"
        )


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(value)
    return (value,)


@attrs.frozen(kw_only=True)
class Adapter:
    """A user's cache, as the kit drives it.

    ``read(key) -> value`` and ``write(key, value)`` are the application's two operations.
    ``cache_code`` names what counts as the Cache (classes, functions, modules, or module-name
    prefixes such as ``"dogpile.cache"``): a DB or cache call made while such code is on the call
    stack is the Cache's, any other is the App's.
    """

    read: Callable[[Any], Any]
    write: Callable[[Any, Any], Any]
    cache_code: tuple = attrs.field(default=(), converter=_as_tuple, validator=_check_cache_code)

    def __attrs_post_init__(self) -> None:
        for name in ("read", "write"):
            if inspect.iscoroutinefunction(getattr(self, name)):
                raise DefinitionError(
                    f"Adapter.{name} is async; cachepact drives synchronous adapters, so pass a plain "
                    f"function (for an asyncio cache, wrap it: lambda key: asyncio.run(...))"
                )
            if not callable(getattr(self, name)):
                value = getattr(self, name)
                raise DefinitionError(
                    f"Adapter.{name} is a {type(value).__name__}, not a callable; pass a function "
                    f"taking {'(key)' if name == 'read' else '(key, value)'}"
                )
