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
    """A run can go no further: ``kind`` is "deadlock" (the unfinished threads wait on each other's
    locks), "stuck" (one waits for what nothing left running can give, such as an Event never set)
    or "timeout" (nothing happened for the step timeout); ``ops`` are the operations left unfinished."""

    def __init__(self, kind: str, message: str, ops: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.ops = ops


class Abandoned(BaseException):
    """Ends a Hypothesis search at once, without shrinking: a run timed out (each try would cost
    another timeout, and its threads cannot be stopped). ``run`` is the run that timed out."""

    def __init__(self, run: Any) -> None:
        super().__init__("a run timed out")
        self.run = run


class ServerLost(BaseException):
    """Ends the whole check at once: a server or database behind ``env`` went away (or cannot run
    what the adapter sends). Not an ``Exception``, so Hypothesis does not shrink on it (every try
    would fail differently, and the check would read as flaky); ``error`` is the ``BackendError``
    the caller gets."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class Pruned(SystemExit):
    """Unwinds the operations of a redundant schedule. Not an ``Exception``, so that an adapter's
    ``except Exception`` cannot swallow it and carry on; a ``SystemExit``, so that an event loop
    (asyncio re-raises SystemExit and KeyboardInterrupt from callbacks, and logs anything else)
    passes it on instead of printing it, and a thread it escapes from ends silently."""


def raised_unwinding(e: BaseException) -> bool:
    """Whether ``e`` was raised while the kit unwound a redundant schedule: the adapter's own cleanup
    failing as ``Pruned`` went through it (``except BaseException: future.set_exception(e)`` on a
    future the unwinding had cancelled). What the kit cut short is no finding of the adapter's."""
    seen: set[int] = set()
    cause: BaseException | None = e
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, Pruned):
            return True
        seen.add(id(cause))
        cause = cause.__context__
    return False
