"""pytest plugin (registered by entry point): options and report hooks, nothing else.

Loaded into every pytest run of an environment where cachepact is installed, so it imports nothing
heavy: the kit loads when a ``conformance_test`` runs. A failing check shows the same report as
``cachepact check``, without a traceback.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from .errors import ConformanceFailure


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cachepact")
    group.addoption("--cachepact-seed", type=int, default=None, help="seed for cachepact conformance tests")
    group.addoption(
        "--cachepact-max-examples",
        type=_at_least_one,
        default=None,
        help="examples per cachepact conformance test (default: the Hypothesis profile's)",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and isinstance(call.excinfo.value, ConformanceFailure):
        report.longrepr = str(call.excinfo.value)
