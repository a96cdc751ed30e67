"""pytest plugin (registered by entry point): options and report hooks, nothing else.

Loaded into every pytest run of an environment where cachepact is installed, so it imports nothing
heavy: the kit loads when a ``conformance_test`` runs. A failing check shows the same report as
``cachepact check``, without a traceback.
"""

from __future__ import annotations

from typing import Any

import pytest

from ._argtypes import whole_number
from .errors import ConformanceFailure


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cachepact")
    group.addoption("--cachepact-seed", type=int, default=None, help="seed for cachepact conformance tests")
    group.addoption(
        "--cachepact-max-examples",
        type=whole_number(1),
        default=None,
        help="examples per cachepact conformance test (default: the Hypothesis profile's)",
    )


def pytest_configure(config: pytest.Config) -> None:
    from .conformance import _testcase  # light: it imports only the error tree

    _testcase.OPTIONS.update(
        seed=config.getoption("cachepact_seed", None),
        max_examples=config.getoption("cachepact_max_examples", None),
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and isinstance(call.excinfo.value, ConformanceFailure):
        report.longrepr = str(call.excinfo.value)
