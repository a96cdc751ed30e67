"""pytest plugin (registered by entry point): gate a suite on an adapter with one line.

    from cachepact.conformance import conformance_test
    test_my_cache = conformance_test(make, pattern="cache-aside")

A failing check shows the same report as ``cachepact check``, without a traceback.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from .api import check
from .result import Result


class ConformanceFailure(AssertionError):
    """A check that failed; ``str()`` is the full report."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.report())
        self.result = result


_options: dict[str, Any] = {}


def conformance_test(make: Callable, pattern: str = "cache-aside", **options: Any) -> Callable[[], None]:
    """A pytest test function that checks ``make`` against ``pattern`` and fails with the report."""

    def test() -> None:
        kwargs = {**{k: v for k, v in _options.items() if v is not None}, **options}
        result = check(make, pattern, target=getattr(make, "__qualname__", None), **kwargs)
        if not result.passed:
            raise ConformanceFailure(result)

    test.__name__ = f"test_{getattr(make, '__name__', 'adapter')}_conforms_to_{pattern.replace('-', '_')}"
    return test


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cachepact")
    group.addoption("--cachepact-seed", type=int, default=None, help="seed for cachepact conformance tests")
    group.addoption(
        "--cachepact-max-examples", type=int, default=None, help="examples per cachepact conformance test"
    )


def pytest_configure(config: pytest.Config) -> None:
    _options["seed"] = config.getoption("--cachepact-seed", None)
    _options["max_examples"] = config.getoption("--cachepact-max-examples", None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and isinstance(call.excinfo.value, ConformanceFailure):
        report.longrepr = str(call.excinfo.value)
