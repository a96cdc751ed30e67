"""cachepact: a formal model and conformance test kit for caching patterns.

Check your own cache against a pattern::

    import cachepact

    def make(env):                      # env.db, env.cache: spec/contract.md
        ...
        return cachepact.Adapter(read=read, write=write, cache_code=())

    result = cachepact.check(make, pattern="cache-aside")     # sequences and interleavings
    print(result.report())
    cachepact.prove(make, pattern="cache-aside", readers=2, writers=2).holds   # every schedule

Importing ``cachepact`` is cheap: the kit (Hypothesis, networkx, ...) loads on first use of a name
below. ``cachepact.model`` is the executable model and its explorer, ``cachepact.diagrams`` the
sequence diagrams, ``cachepact.adapters`` the reference and broken adapters the kit ships.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    BackendError,
    CacheError,
    CachepactError,
    ConformanceFailure,
    DBError,
    DefinitionError,
    Interrupted,
    InvalidArgument,
    MissingDependency,
    StateSpaceTooLarge,
    StoreError,
    UsageError,
)

__version__ = "0.2.0"

# Public name -> the private module that defines it, imported on first access.
_LAZY = {
    "ABSENT": "cachepact.conformance._contract",
    "Adapter": "cachepact.conformance._contract",
    "Finding": "cachepact.conformance.judge.findings",
    "NO_ENTRY": "cachepact.conformance._contract",
    "INVARIANTS": "cachepact.conformance.judge.findings",
    "Options": "cachepact.conformance.report.result",
    "Proof": "cachepact.conformance._prove",
    "Result": "cachepact.conformance.report.result",
    "Unfinished": "cachepact.conformance.report.progress",
    "check": "cachepact.conformance._check",
    "conformance_test": "cachepact.conformance._testcase",
    "prove": "cachepact.conformance._prove",
}

if TYPE_CHECKING:
    from .conformance._check import check
    from .conformance._contract import ABSENT, NO_ENTRY, Adapter
    from .conformance._prove import Proof, prove
    from .conformance._testcase import conformance_test
    from .conformance.judge.findings import INVARIANTS, Finding
    from .conformance.report.progress import Unfinished
    from .conformance.report.result import Options, Result

__all__ = [
    "ABSENT",
    "INVARIANTS",
    "NO_ENTRY",
    "Adapter",
    "BackendError",
    "CacheError",
    "CachepactError",
    "ConformanceFailure",
    "DBError",
    "DefinitionError",
    "Finding",
    "Interrupted",
    "InvalidArgument",
    "MissingDependency",
    "Options",
    "Proof",
    "Result",
    "StateSpaceTooLarge",
    "StoreError",
    "Unfinished",
    "UsageError",
    "__version__",
    "check",
    "conformance_test",
    "prove",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cachepact' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
