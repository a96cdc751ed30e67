"""``controlled()``: what the adapter's code runs under while the kit builds and drives it.

``threading``'s primitives and ``time.sleep`` become the kit's (``primitives``), and threads and
executor work an operation starts become its helpers (``helpers``), for the duration.
"""

from __future__ import annotations

from . import primitives
from .helpers import adopt_threads


class _Controlled:
    """Entered around every operation, so it costs a few attribute stores; nests."""

    __slots__ = ("depth",)

    def __init__(self) -> None:
        self.depth = 0

    def __enter__(self) -> None:
        if self.depth == 0:
            primitives.patch(True)
            adopt_threads(True)
        self.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth == 0:
            adopt_threads(False)
            primitives.patch(False)


# Process-wide, as the patches it counts are: a factory a check left blocked inside it (past its
# step timeout) leaves it only later, maybe during the next check, and must then not take the
# patches away from under that check, so the nesting is counted for the process, not per check.
_CONTROLLED = _Controlled()


def controlled() -> _Controlled:
    """Make ``threading``'s primitives and ``time.sleep`` the kit's, and threads an operation starts
    its helpers, for the duration (the adapter's code and its libraries')."""
    return _CONTROLLED
