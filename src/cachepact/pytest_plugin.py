"""pytest plugin (registered by entry point): options, collection and report hooks, nothing else.

Loaded into every pytest run of an environment where cachepact is installed, so it imports nothing
heavy: the kit loads when a ``conformance_test`` is collected and runs. A ``conformance_test`` is
collected as one test per invariant of its pattern (``test_my_cache::fresh-read``), after a test
``check`` that runs the check once for all of them: pytest's terminal, ``-k`` and ``--junitxml``
then show each invariant with its status (a failure, a pass, or skipped with why it was not run).
A failing check shows the same report as ``cachepact check``, and an error (a factory that cannot
build, an unreachable Redis) one line, without a traceback through the kit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from ._argtypes import DEFAULT_STEP_TIMEOUT, MAX_INSTANCES, MAX_STEP_TIMEOUT, MAX_WORKERS, seconds, whole_number
from .errors import CachepactError, ConformanceFailure


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
        "--cachepact-workers",
        type=whole_number(1, MAX_WORKERS),
        default=None,
        metavar="N",
        help="each check explores its exhaustive phase's scenarios over N processes (same verdicts)",
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
    group.addoption(
        "--cachepact-example-db",
        default=None,
        metavar="URL",
        help="keep shrunk failures in this Redis (redis://host:port/N) and try them first: CI runners share them",
    )
    group.addoption(
        "--cachepact-strict",
        action="store_true",
        default=None,
        help="fail a check that was not complete: an invariant not run, a wait out of the kit's control, a Redis "
        "command whose effect the kit could not observe (also: the cachepact_strict ini option)",
    )
    group.addoption(
        "--cachepact-faults",
        type=whole_number(1, 10),
        nargs="?",
        const=3,
        default=None,
        metavar="N",
        help="make calls to the stores fail, at most N a run (default 3), and judge the fault invariants",
    )
    parser.addini(
        "cachepact_strict",
        type="bool",
        default=False,
        help="cachepact conformance tests run strict (as --cachepact-strict); strict=False in one test overrides it",
    )


# Where this pytest run keeps its --cachepact-* options: on its config, so each run (a pytester run in
# the same process included) has its own, and nothing outlives the run.
OPTIONS = pytest.StashKey[dict[str, Any]]()


def pytest_configure(config: pytest.Config) -> None:
    strict = config.getoption("cachepact_strict", None) or config.getini("cachepact_strict")
    config.stash[OPTIONS] = {
        "seed": config.getoption("cachepact_seed", None),
        "max_examples": config.getoption("cachepact_max_examples", None),
        "instances": config.getoption("cachepact_instances", None),
        "step_timeout": config.getoption("cachepact_step_timeout", None),
        "redis": config.getoption("cachepact_redis", None),
        "db": config.getoption("cachepact_db", None),
        "example_db": config.getoption("cachepact_example_db", None),
        "workers": config.getoption("cachepact_workers", None),
        "strict": True if strict else None,  # None: what the test says, else not strict
        "faults": config.getoption("cachepact_faults", None),
    }


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    """A ``conformance_test`` is a check's tests, one per invariant; anything else is pytest's."""
    from .conformance._testcase import RUN  # light: it imports only the error tree

    try:
        run = getattr(obj, RUN, None)
    except Exception:  # an object whose __getattr__ raises: not ours
        return None
    if run is None or not isinstance(collector, pytest.Module | pytest.Class):
        return None
    if not collector.istestfunction(obj, name):
        return None
    return ConformanceCheck.from_parent(collector, name=name, obj=obj)


class ConformanceCheck(pytest.Collector):
    """One ``conformance_test``: its check runs once, for the first of its tests that runs, and each
    test reads its own verdict off the ``Result``."""

    def __init__(self, *, obj: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.obj = obj
        # Marks on the test function (pytest.mark.slow(conformance_test(...))) hold for every test.
        self.own_markers.extend(m for m in getattr(obj, "pytestmark", []) if isinstance(m, pytest.Mark))
        self.invariants: tuple[str, ...] = ()
        self._outcome: Any = None  # the Result, or what the check raised
        self.ran_by = ""  # the test that ran it

    def collect(self) -> Iterator[pytest.Item]:
        from .conformance._testcase import FAULTS, PATTERN
        from .model import invariant_names, pattern_named

        yield CheckTest.from_parent(self, name="check")
        faults = getattr(self.obj, FAULTS, False) or bool(self.config.stash[OPTIONS].get("faults"))
        try:
            self.invariants = invariant_names(pattern_named(getattr(self.obj, PATTERN)), faults=faults)
        except CachepactError:
            return  # an unknown pattern: the test check says so, in one line
        for invariant in self.invariants:
            yield InvariantTest.from_parent(self, name=invariant)

    def result(self, item: pytest.Item) -> Any:
        """The check's ``Result``; what stopped it is one line for the test that ran it, and the
        others are skipped, pointing there."""
        from .conformance._testcase import RUN

        if self._outcome is None:
            self.ran_by = item.nodeid
            try:
                self._outcome = getattr(self.obj, RUN)(item.config.stash.get(OPTIONS, {}))
            except Exception as e:
                self._outcome = e
        if not isinstance(self._outcome, Exception):
            return self._outcome
        if self.ran_by != item.nodeid:
            pytest.skip(f"not run: the check could not run (see {self.ran_by})")
        if isinstance(self._outcome, CachepactError):  # one line naming the fix, as the CLI prints it
            line = f"{type(self._outcome).__name__}: {' '.join(str(self._outcome).split())}"
            raise _KitFailure(line, line)
        raise self._outcome


class _KitFailure(Exception):
    """A test that fails with the kit's report (``text``); ``message`` is the short summary's."""

    def __init__(self, text: str, message: str) -> None:
        super().__init__(message)
        self.text = text
        self.message = message


class _ConformanceTest(pytest.Item):
    parent: ConformanceCheck

    def reportinfo(self) -> tuple[Any, int | None, str]:
        """The line that made the conformance test (0-based, as pytest counts), not the kit's."""
        from .conformance._testcase import WHERE

        file, line = getattr(self.parent.obj, WHERE, (None, None))
        same_file = file is not None and os.path.abspath(file) == os.path.abspath(self.path)
        return self.path, line - 1 if same_file else None, self.nodeid.split("::", 1)[-1]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, _KitFailure):
            return KitReport(excinfo.value.text, excinfo.value.message)
        return super().repr_failure(excinfo, style=style)


class CheckTest(_ConformanceTest):
    """The check itself: it runs, and ends in verdicts on the invariants. It fails when the check
    cannot run (one line), on a finding that is no invariant's (``adapter-error``, ``timeout``,
    ``deadlock``), and under strict when a wait was out of the kit's control or a command's effect
    was not observed; an invariant's own failure is that invariant's test's."""

    def runtest(self) -> None:
        result = self.parent.result(self)
        f = result.finding
        if f is not None and f.invariant not in self.parent.invariants:
            raise _KitFailure(result.report(), f"{f.invariant}: {f.message}")
        if result.strict and f is None and (result.uncontrolled or result.unobserved):
            raise _KitFailure(result.report(), "strict: the check was not complete (see the Strict: lines)")


class InvariantTest(_ConformanceTest):
    """One invariant's verdict: a failure with the report, a pass, or skipped with why it was not run
    (a failure under strict, when nothing else failed)."""

    def runtest(self) -> None:
        result = self.parent.result(self)
        status = result.status(self.name)
        if status == "fail":
            f = result.finding
            same = f.invariant == self.name
            raise _KitFailure(result.report(), f.message if same else f"broken in the run that broke {f.invariant}")
        if status == "not-run":
            why = f"not run: {result.why_not_run(self.name)}"
            if result.strict and result.finding is None:
                line = f"{why}; strict asks every invariant to run"
                raise _KitFailure(line, line)
            pytest.skip(why)


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
    """A ``conformance_test``'s skips point at its line; called by hand inside a test of the user's, it
    fails with the report too."""
    outcome = yield
    report = outcome.get_result()
    if isinstance(item, _ConformanceTest) and report.skipped and isinstance(report.longrepr, tuple):
        path, line, _ = item.reportinfo()  # a skip is the test's, not the plugin line that raised it
        report.longrepr = (os.fspath(path), None if line is None else line + 1, report.longrepr[2])
    if call.excinfo is not None and isinstance(call.excinfo.value, ConformanceFailure):
        failure = call.excinfo.value
        finding = failure.result.finding
        message = f"{finding.invariant}: {finding.message}" if finding else "strict: the check was not complete"
        report.longrepr = KitReport(str(failure), message)
