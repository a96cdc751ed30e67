"""Loading ``TARGET`` (``module:attr`` or ``path/to/file.py:attr``) and checking the factory early."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Callable

from ..model import Pattern, pattern_named
from .adapter import DefinitionError
from .world import World

FORM = "write TARGET as module:attr or path/to/file.py:attr"


def load_target(spec: str) -> Callable[..., Any]:
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise DefinitionError(f"TARGET {spec!r} names no factory; {FORM}", target=spec)
    if where.endswith(".py") or os.sep in where or "/" in where:
        module = _load_file(Path(where), spec)
    else:
        module = _load_module(where, spec)
    try:
        factory = getattr(module, attr)
    except AttributeError:
        names = ", ".join(n for n in sorted(vars(module)) if not n.startswith("_") and callable(getattr(module, n)))
        raise DefinitionError(
            f"{where} has no attribute {attr!r}; callables there: {names or 'none'}", target=spec
        ) from None
    if not callable(factory):
        raise DefinitionError(
            f"{spec} is a {type(factory).__name__}, not a factory; it must be make(env) -> cachepact.Adapter",
            target=spec,
        )
    return factory


def _load_file(path: Path, spec: str) -> Any:
    if not path.is_file():
        raise DefinitionError(f"no file {str(path)!r}; {FORM}", target=spec)
    name = f"cachepact_target_{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise DefinitionError(f"{str(path)!r} cannot be imported as Python; {FORM}", target=spec)
    module = importlib.util.module_from_spec(loader_spec)
    sys.path.insert(0, str(path.resolve().parent))  # so the file can import its neighbours
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as e:
        raise DefinitionError(f"importing {str(path)!r} raised {_one_line(e)}", target=spec) from None
    return module


def _load_module(name: str, spec: str) -> Any:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would, so a local module is found
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and name.startswith(e.name):
            raise DefinitionError(
                f"no module named {name!r}; check the name, install it, or run from the folder that holds it",
                target=spec,
            ) from None
        raise DefinitionError(f"importing {name!r} raised {_one_line(e)}", target=spec) from None
    except Exception as e:
        raise DefinitionError(f"importing {name!r} raised {_one_line(e)}", target=spec) from None


def resolve_pattern(pattern: Pattern | str) -> Pattern:
    if isinstance(pattern, Pattern):
        return pattern
    try:
        return pattern_named(pattern)
    except ValueError as e:
        raise DefinitionError(f"--pattern: {e}") from None


def validate_factory(make: Callable[..., Any], pattern: Pattern, backends: Any = None, target: str = "the factory") -> None:
    """Build one world before any checking, so a definition mistake fails first, with its fix named."""
    try:
        World(make, pattern, backends=backends)
    except DefinitionError:
        raise
    except TypeError as e:
        if str(e).startswith("returned "):
            kind = str(e)[len("returned ") :]
            raise DefinitionError(
                f"{target} returned a {kind}, not a cachepact.Adapter; "
                "return cachepact.Adapter(read=..., write=..., cache_code=...)"
            ) from None
        raise DefinitionError(f"{target} raised {_one_line(e)}; fix the factory") from None
    except Exception as e:
        raise DefinitionError(f"{target} raised {_one_line(e)}; fix the factory") from None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
