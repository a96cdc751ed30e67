"""``conformance_test``: a pytest test function from one line, failing with the kit's report.

It imports nothing from pytest. The returned function takes no arguments, so it also runs when called
directly; under pytest, the plugin (``cachepact.pytest_plugin``) collects it as one test per
invariant of its ``PATTERN`` instead, and runs its check once through its ``RUN`` attribute, handing
it the ``--cachepact-*`` options of that pytest run (which the plugin keeps on pytest's config, not
here: two pytest runs in one process each have their own).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConformanceFailure

RUN = "_cachepact_run"  # the attribute of a conformance test: its check, given the command line's options
PATTERN = "_cachepact_pattern"  # and the pattern it checks, whose invariants the plugin makes tests of
WHERE = "_cachepact_where"  # and the line that made it (file, 1-based line), where pytest reports it
FAULTS = "_cachepact_faults"  # and whether it was given faults= (its fault invariants are tests too)


def conformance_test(make: Callable, pattern: str = "cache-aside", **options: Any) -> Callable[[], None]:
    """A pytest test function that checks ``make`` against ``pattern`` and fails with the report.

    ``options`` are ``check``'s keyword arguments (``target=`` and ``strict=`` included); the
    ``--cachepact-*`` options on the pytest command line fill in those not given here. Under pytest
    it is one test per invariant of ``pattern`` (pass, fail, or skipped when not run) after a test
    ``check`` that fails when the check cannot run or ends in a finding that is no invariant's.
    Without ``target=``, reports name a module-level factory by its file (``tests/test_cache.py:make``),
    which is how ``cachepact check`` reruns it from the project's folder.
    """

    def run(defaults: Mapping[str, Any]) -> Any:
        """The check's ``Result``, with ``defaults`` (the pytest command line's) for the options not given."""
        from ._check import check, importable

        kwargs = {**{k: v for k, v in defaults.items() if v is not None}, **options}
        kwargs.setdefault("target", _file_target(make))
        if "workers" not in options and (kwargs.get("redis") or kwargs.get("db") or not importable(make)):
            # --cachepact-workers speeds up the tests it can: one on a server, or with a factory a new
            # process cannot import, runs in one process, as its own options allow.
            kwargs.pop("workers", None)
        return check(make, pattern, **kwargs)

    def test() -> None:
        result = run({})
        if not result.passed:
            raise ConformanceFailure(result)

    test.__name__ = f"test_{getattr(make, '__name__', 'adapter')}_conforms_to_{pattern.replace('-', '_')}"
    setattr(test, RUN, run)
    setattr(test, PATTERN, pattern)
    setattr(test, FAULTS, bool(options.get("faults")))
    caller = sys._getframe(1)  # the user's line, test_x = conformance_test(...): not the kit's
    setattr(test, WHERE, (caller.f_code.co_filename, caller.f_lineno))
    return test


def _file_target(make: Callable) -> str | None:
    """The TARGET that reruns a factory from the project's folder, or None (reports use its name).

    pytest imports a test file in a folder without ``__init__.py`` under its bare name, with that
    folder put on ``sys.path``; the command line does not see that folder, so such a factory is
    named by its file (``tests/test_cache.py:make``). Anything else is ``module:name``.
    """
    import os

    name = getattr(make, "__qualname__", "")
    module = sys.modules.get(getattr(make, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    if not name.isidentifier() or module is None or path is None:
        return None  # nested (a.b) or local (<locals>): no TARGET reaches it
    folder = os.path.dirname(os.path.abspath(path))
    if module.__name__ != "__main__" and ("." in module.__name__ or folder == os.getcwd()):
        return f"{module.__name__}:{name}"
    relative = os.path.relpath(path)
    return f"{path if relative.startswith('..') else relative}:{name}"
