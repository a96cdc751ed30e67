"""Loading ``TARGET`` (``module:attr`` or ``path/to/file.py:attr``): the factory a check runs."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conformance._contract import article
from .conformance._env import one_line
from .errors import DefinitionError

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
            f"{spec} is {article(type(factory).__name__)}, not a factory; it must be make(env) -> cachepact.Adapter",
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
        raise DefinitionError(f"importing {str(path)!r} raised {one_line(e)}", target=spec) from None
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
        raise DefinitionError(f"importing {name!r} raised {one_line(e)}", target=spec) from None
    except Exception as e:
        raise DefinitionError(f"importing {name!r} raised {one_line(e)}", target=spec) from None
