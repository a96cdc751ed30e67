"""Conformance: checks a user's adapter against the model.

``check(make, pattern=...)`` is the one entry call; ``conformance_test`` makes it a pytest test.
"""

from .adapter import Adapter, DefinitionError
from .api import check
from .env import Env
from .judge import INVARIANTS, Finding
from .pytest_plugin import ConformanceFailure, conformance_test
from .result import Result

__all__ = [
    "Adapter",
    "ConformanceFailure",
    "DefinitionError",
    "Env",
    "Finding",
    "INVARIANTS",
    "Result",
    "check",
    "conformance_test",
]
