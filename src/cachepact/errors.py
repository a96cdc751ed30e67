"""Every exception cachepact raises, in one tree.

``CachepactError`` is the base of everything the kit raises on purpose. Each error also subclasses
the built-in a caller would expect (``TypeError`` for something unusable as written, ``ValueError``
for a value out of range, ``ImportError`` for a missing package, ``AssertionError`` for a failed
check), so ``except ValueError`` keeps working. Errors carry structured fields; messages speak of
the Python API's parameters, and the command line renders the same fields with its own flags.

The last section holds the kit's internal control-flow signals. They are not errors and never reach
a caller; they live here so that this one module lists every exception the kit defines.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CachepactError",
    "ConformanceFailure",
    "DefinitionError",
    "InvalidArgument",
    "MissingDependency",
    "StateSpaceTooLarge",
    "UsageError",
]


class CachepactError(Exception):
    """Base class of every error cachepact raises on purpose."""


class DefinitionError(CachepactError, TypeError):
    """The adapter, its factory or the target naming it is unusable as written.

    Raised before any checking starts, with a message that names the fix. ``target`` is the
    factory's name or ``TARGET`` string when known; ``field`` the ``Adapter`` field at fault, if one.
    """

    def __init__(self, message: str, *, target: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.target = target
        self.field = field


class InvalidArgument(CachepactError, ValueError):
    """A parameter has a value the kit cannot use.

    ``str()`` reads ``"<parameter> <problem>"``; the command line prints the same ``problem`` after
    its own flag for ``parameter`` (``max_ops`` becomes ``--max-ops``).
    """

    def __init__(self, parameter: str, value: Any, problem: str) -> None:
        super().__init__(f"{parameter} {problem}")
        self.parameter = parameter
        self.value = value
        self.problem = problem


class StateSpaceTooLarge(CachepactError, ValueError):
    """The explored scenario has more reachable states than ``max_states`` allows."""

    def __init__(self, scenario: Any, max_states: int) -> None:
        super().__init__(
            f"the state space of '{scenario.name}' passes max_states={max_states}; "
            "raise max_states or lower readers, writers or keys"
        )
        self.scenario = scenario
        self.max_states = max_states


class MissingDependency(CachepactError, ImportError):
    """An optional capability was asked for without the package it needs.

    ``needed_for`` says what asked (``"format='png'"``); when a parameter's value asked, ``parameter``,
    ``value`` and the values that need nothing more (``instead``) let the CLI speak of its flag.
    """

    def __init__(
        self,
        package: str,
        requirement: str,
        *,
        needed_for: str,
        parameter: str | None = None,
        value: Any = None,
        instead: tuple[str, ...] = (),
    ) -> None:
        self.package = package
        self.requirement = requirement
        self.needed_for = needed_for
        self.parameter = parameter
        self.value = value
        self.instead = instead
        hint = f"pip install '{requirement}'"
        if parameter and instead:
            hint += f" or use {parameter}={'|'.join(instead)}"
        super().__init__(f"{needed_for} needs {package}; {hint}")


class UsageError(CachepactError, ValueError):
    """A command line that cannot run: the message is the one line the CLI prints (exit code 2)."""


class ConformanceFailure(CachepactError, AssertionError):
    """A conformance check failed; ``str()`` is the full report and ``result`` the ``Result``."""

    def __init__(self, result: Any) -> None:
        super().__init__(result.report())
        self.result = result


# -- internal signals: never raised to a caller ------------------------------------------------------


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


def one_line(e: BaseException) -> str:
    """An exception as one line, ``Type: message``, for the one-line errors the kit prints."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
