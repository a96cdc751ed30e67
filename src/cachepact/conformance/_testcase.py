"""``conformance_test``: a pytest test function from one line, failing with the kit's report.

It imports nothing from pytest. The plugin (``cachepact.pytest_plugin``) puts the ``--cachepact-*``
options of the pytest command line in ``OPTIONS`` when pytest starts; the returned function takes no
arguments, so it also runs when called directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ConformanceFailure

# Set by the pytest plugin from the command line: the defaults for options a test does not give.
OPTIONS: dict[str, Any] = {}


def conformance_test(make: Callable, pattern: str = "cache-aside", **options: Any) -> Callable[[], None]:
    """A pytest test function that checks ``make`` against ``pattern`` and fails with the report.

    ``options`` are ``check``'s keyword arguments (``target=`` included); ``--cachepact-seed`` and
    ``--cachepact-max-examples`` on the pytest command line fill in those not given here.
    """

    def test() -> None:
        from ._check import check

        kwargs = {**{k: v for k, v in OPTIONS.items() if v is not None}, **options}
        result = check(make, pattern, **kwargs)
        if not result.passed:
            raise ConformanceFailure(result)

    test.__name__ = f"test_{getattr(make, '__name__', 'adapter')}_conforms_to_{pattern.replace('-', '_')}"
    return test
