"""Loading ``TARGET`` (``module:attr`` or ``path/to/file.py:attr``): the factory a check runs."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conformance._contract import article
from .conformance.record.env import one_line
from .errors import CachepactError, DefinitionError

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
    """Import a file under its own module name, as pytest's rootdir logic does: a file inside
    packages (folders with ``__init__.py``) is ``pkg.sub.mod`` with the folder above the top package
    on ``sys.path``; a loose file is ``mod`` with its folder on the path. So ``cache_code`` names
    and ``__name__`` checks see the same module as when the code is imported normally."""
    if not path.is_file():
        raise DefinitionError(f"no file {str(path)!r}; {FORM}", target=spec)
    if path.suffix != ".py":
        raise DefinitionError(f"{str(path)!r} cannot be imported as Python; {FORM}", target=spec)
    path = path.resolve()
    root, parts = path.parent, [path.stem]
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    name = ".".join(parts)
    loaded = sys.modules.get(name)
    if loaded is not None:
        where = getattr(loaded, "__file__", None)
        if where is not None and Path(where).resolve() == path:
            return loaded
        raise DefinitionError(
            f"{str(path)!r} would be imported as module {name!r}, but {name!r} is already {where or 'built in'}; "
            "rename the file or name the target as module:attr",
            target=spec,
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # so the file imports its neighbours and its package
    try:
        return importlib.import_module(name)
    except Exception as e:
        raise DefinitionError(f"importing {str(path)!r} raised {one_line(e)}", target=spec) from None


def _load_module(name: str, spec: str) -> Any:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would, so a local module is found
    try:
        return importlib.import_module(name)
    except CachepactError:
        raise  # a recipe without its library: MissingDependency names the extra to install
    except ModuleNotFoundError as e:
        if e.name and name.startswith(e.name):
            raise DefinitionError(
                f"no module named {name!r}; check the name, install it, or run from the folder that holds it",
                target=spec,
            ) from None
        raise DefinitionError(f"importing {name!r} raised {one_line(e)}", target=spec) from None
    except Exception as e:
        raise DefinitionError(f"importing {name!r} raised {one_line(e)}", target=spec) from None
