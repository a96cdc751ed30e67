"""``conformance_test``: a pytest test function from one line, failing with the kit's report.

It imports nothing from pytest: the test it returns asks for pytest's ``pytestconfig`` fixture to
read the ``--cachepact-*`` options the plugin (``cachepact.pytest_plugin``) registers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ConformanceFailure


def conformance_test(make: Callable, pattern: str = "cache-aside", **options: Any) -> Callable[..., None]:
    """A pytest test function that checks ``make`` against ``pattern`` and fails with the report.

    ``options`` are ``check``'s keyword arguments; ``--cachepact-seed`` and
    ``--cachepact-max-examples`` on the pytest command line fill in those not given here.
    """

    def test(pytestconfig: Any) -> None:
        from ._check import check

        given = {
            "seed": pytestconfig.getoption("cachepact_seed", None),
            "max_examples": pytestconfig.getoption("cachepact_max_examples", None),
        }
        kwargs = {**{k: v for k, v in given.items() if v is not None}, **options}
        result = check(make, pattern, target=getattr(make, "__qualname__", None), **kwargs)
        if not result.passed:
            raise ConformanceFailure(result)

    test.__name__ = f"test_{getattr(make, '__name__', 'adapter')}_conforms_to_{pattern.replace('-', '_')}"
    return test
