"""pytest plugin (registered by entry point): options and report hooks, nothing else.

Loaded into every pytest run of an environment where cachepact is installed, so it imports nothing
heavy: the kit loads when a ``conformance_test`` runs. A failing check shows the same report as
``cachepact check``, without a traceback.
"""

from __future__ import annotations

from typing import Any

import pytest

from ._argtypes import DEFAULT_STEP_TIMEOUT, MAX_INSTANCES, MAX_STEP_TIMEOUT, seconds, whole_number
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
    group.addoption(
        "--cachepact-instances",
        type=whole_number(1, MAX_INSTANCES),
        default=None,
        help="app instances per check (default: 2, or 1 without concurrency)",
    )
    group.addoption(
        "--cachepact-step-timeout",
        type=seconds(MAX_STEP_TIMEOUT),
        default=None,
        help=f"seconds a step may block before it is the finding timeout (default: {DEFAULT_STEP_TIMEOUT:g})",
    )
    group.addoption(
        "--cachepact-redis",
        default=None,
        metavar="URL",
        help="run env.redis and env.cache on this Redis (redis://host:port/N, an empty database; default: fakeredis)",
    )
    group.addoption(
        "--cachepact-db",
        default=None,
        metavar="URL",
        help="run env.db on this database (sqlite:///file.db or postgresql://...; default: in memory)",
    )


# Where this pytest run keeps its --cachepact-* options: on its config, so each run (a pytester run in
# the same process included) has its own, and nothing outlives the run.
OPTIONS = pytest.StashKey[dict[str, Any]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[OPTIONS] = {
        "seed": config.getoption("cachepact_seed", None),
        "max_examples": config.getoption("cachepact_max_examples", None),
        "instances": config.getoption("cachepact_instances", None),
        "step_timeout": config.getoption("cachepact_step_timeout", None),
        "redis": config.getoption("cachepact_redis", None),
        "db": config.getoption("cachepact_db", None),
    }


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A ``conformance_test`` runs its check with this run's command-line options as defaults."""
    from .conformance._testcase import RUN  # light: it imports only the error tree

    run = getattr(pyfuncitem.obj, RUN, None)
    if run is None:
        return None  # any other test: pytest calls it
    run(pyfuncitem.config.stash.get(OPTIONS, {}))
    return True


class _Crash:
    def __init__(self, message: str) -> None:
        self.message = message


class KitReport:
    """A failing check as pytest shows it: the kit's report in full, and in the short summary the
    invariant and what broke it (pytest reads ``reprcrash.message``), not the report's first line."""

    def __init__(self, text: str, message: str) -> None:
        self.text = text
        self.reprcrash = _Crash(message)

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and isinstance(call.excinfo.value, ConformanceFailure):
        failure = call.excinfo.value
        finding = failure.result.finding
        report.longrepr = KitReport(str(failure), f"{finding.invariant}: {finding.message}")
