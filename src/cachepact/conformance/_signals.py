"""The kit's internal control-flow signals: raised and caught inside a check, never reaching a caller.

They are not errors (``cachepact.errors`` holds those); they unwind an example, a run or a schedule.
"""

from __future__ import annotations

from typing import Any


class Violation(AssertionError):
    """Fails a Hypothesis example so that it shrinks; the driver keeps the failing run itself."""

    def __init__(self, finding: Any) -> None:
        super().__init__(f"{finding.invariant}: {finding.message}")
        self.finding = finding


class Stalled(Exception):
    """No operation of a concurrent run can take a step: ``kind`` is "deadlock" or "timeout"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Pruned(BaseException):
    """Unwinds the operations of a redundant schedule. A BaseException so that an adapter's
    ``except Exception`` cannot swallow it and carry on."""
