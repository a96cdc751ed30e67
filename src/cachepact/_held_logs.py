"""What the adapter's libraries log while a check runs from the command line: counted, not printed.

A check with ``--faults`` makes a library log every error it swallows (aiocache's "Couldn't
retrieve", Flask-Caching's "Exception possibly due to cache backend", cashews' "can not execute
command"), each with its traceback: thousands of lines around a one-screen report. Python prints
them through its last-resort handler only because nobody configured logging; where the user did
(``logging.basicConfig()`` in ``make``, a framework's settings), their handlers get every record as
before.
"""

from __future__ import annotations

import logging
from collections import Counter


class HeldLogs(logging.Handler):
    """While entered, Python's last-resort handler (what prints a record no handler of the user's
    takes, at WARNING and above): it counts records per logger instead of printing them. A handler
    the user configures, even during the check, takes its records as before."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self._was: logging.Handler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.name] += 1

    def __enter__(self) -> HeldLogs:
        self._was, logging.lastResort = logging.lastResort, self
        return self

    def __exit__(self, *exc: object) -> None:
        logging.lastResort = self._was

    def summary(self) -> str | None:
        """One line for stderr, or None when nothing was held."""
        total = sum(self.counts.values())
        if not total:
            return None
        top = ", ".join(f"{name} {n:,}" for name, n in self.counts.most_common(3))
        more = ", ..." if len(self.counts) > 3 else ""
        return (
            f"cachepact: the adapter's code logged {total:,} warnings or errors during the check, not shown "
            f"({top}{more}); configure logging in make (logging.basicConfig()) to see them"
        )
