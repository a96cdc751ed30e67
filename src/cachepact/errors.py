"""Every exception cachepact raises, in one tree.

``CachepactError`` is the base of everything the kit raises on purpose. Each error also subclasses
the built-in a caller would expect (``TypeError`` for something unusable as written, ``ValueError``
for a value out of range, ``ImportError`` for a missing package, ``AssertionError`` for a failed
check), so ``except ValueError`` keeps working. ``Interrupted`` (Ctrl-C during a check) is a
``KeyboardInterrupt`` instead, carrying the partial result. Errors carry structured fields; messages speak of
the Python API's parameters, and the command line renders the same fields with its own flags.

The kit's internal control-flow signals, which never reach a caller, are not errors and live with
the machinery that raises them (``conformance/_signals.py``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BackendError",
    "CacheError",
    "CachepactError",
    "ConformanceFailure",
    "DBError",
    "DefinitionError",
    "Interrupted",
    "InvalidArgument",
    "MissingDependency",
    "StateSpaceTooLarge",
    "StoreError",
    "UsageError",
]


class CachepactError(Exception):
    """Base class of every error cachepact raises on purpose."""

    def __reduce__(self) -> tuple:
        # Pickled as it is (a process of check(workers=N) or prove(workers=N) sends it to the
        # parent), whatever the subclass's constructor takes: its args and its fields.
        return _rebuilt, (type(self), self.args, self.__dict__)


def _rebuilt(cls: type, args: tuple, fields: dict) -> CachepactError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(fields)
    return error


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


class BackendError(CachepactError, ConnectionError):
    """A server or database behind ``env`` that the kit cannot use: unreachable, refusing the
    credentials, not empty, an unknown URL scheme, or lost during a run.

    ``parameter`` is the API's (``redis`` or ``db``; the command line shows ``--redis``/``--db``),
    ``url`` the URL with any password masked, ``problem`` what is wrong and the fix.
    """

    def __init__(self, parameter: str, url: str, problem: str) -> None:
        super().__init__(f"{parameter} {url}: {problem}")
        self.parameter = parameter
        self.url = url
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
    """A command line that cannot run: the message is the one line the CLI prints (exit code 2).

    Also a call that cannot run now: ``check`` or ``prove`` while another runs in the same process
    (the kit patches ``threading``, ``time`` and redis-py process-wide), refused at once, the fix named.
    """


class ConformanceFailure(CachepactError, AssertionError):
    """A conformance check failed; ``str()`` is the full report and ``result`` the ``Result``."""

    def __init__(self, result: Any) -> None:
        super().__init__(result.report())
        self.result = result


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a check: ``result`` is the ``Result`` of what ran before it (``interrupted``
    set, no verdict on what did not run). A ``KeyboardInterrupt``, so an interrupt still ends the
    program that does not look for it; not a ``CachepactError``, which ``except Exception`` catches."""

    def __init__(self, result: Any) -> None:
        super().__init__("interrupted")
        self.result = result


class StoreError(CachepactError, ConnectionError):
    """A store behind ``env`` failed a call: injected by a check run with faults (``--faults``), as a
    network or a server fails in production. The adapter under test is expected to meet it (catch
    it, retry, or let it reach the caller); catch it as the ``ConnectionError`` it is.

    ``call`` is the call as a report shows it (``cache.delete(k1)``); ``took_effect`` says whether the
    store did what was asked before its reply was lost (True), or failed before taking effect.
    """

    def __init__(self, call: str, *, took_effect: bool) -> None:
        how = "lost reply: it took effect" if took_effect else "it failed before taking effect"
        super().__init__(f"{call} failed ({how})")
        self.call = call
        self.took_effect = took_effect


class CacheError(StoreError):
    """``env.cache`` failed a call (``--faults``)."""


class DBError(StoreError):
    """``env.db`` failed a call (``--faults``); the SQL backends raise it too."""
