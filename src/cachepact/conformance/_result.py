"""The outcome of a check: a frozen value, rendered by ``_report`` as text, JSON and JUnit XML."""

from __future__ import annotations

from typing import Any

import attrs

from ..model import Step
from . import _report
from ._findings import CONCURRENT_SITUATIONS, SITUATIONS, Finding


@attrs.frozen(kw_only=True)
class Result:
    """What ``check`` found. ``passed`` is the verdict; ``report()`` the text the CLI prints.

    For a failure: the ``finding``, the counterexample's ``steps``, the ``replay`` string that reruns
    it, the operations that were in flight together (``columns``, one table column each; empty for
    a sequential counterexample), its ``context_switches`` and ``failing_operations``, and the
    ``final_state`` it left (key, DB, the cache entry decoded, and raw when that differs). For every
    check: each invariant's status (``statuses``: ``pass``, ``fail`` or ``not-run``, the last when
    nothing the run did could have broken it), the situations ``reached``, and the ``examples`` and
    ``operations`` run.
    """

    pattern: str
    target: str
    finding: Finding | None
    steps: tuple[Step, ...] = ()
    replay: str = ""
    final_state: tuple[tuple[str, ...], ...] = ()
    columns: tuple[str, ...] = ()
    context_switches: int = 0
    failing_operations: int = 0
    reached: tuple[str, ...] = ()
    statuses: tuple[tuple[str, str], ...] = ()
    examples: int = 0
    operations: int = 0
    elapsed: float = 0.0
    seed: int | None = None
    diagram: str | None = None
    concurrent: bool = False

    @property
    def passed(self) -> bool:
        return self.finding is None

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    def status(self, invariant: str) -> str:
        return dict(self.statuses).get(invariant, "not-run")

    @property
    def not_reached(self) -> tuple[str, ...]:
        names = SITUATIONS + (CONCURRENT_SITUATIONS if self.concurrent else ())
        return tuple(s for s in names if s not in self.reached)

    @property
    def replay_command(self) -> str:
        return f"cachepact check {self.target} --pattern {self.pattern} --replay '{self.replay}'"

    def report(self) -> str:
        """The text report: a contract the tests pin (spec/contract.md, "Reports")."""
        return _report.text(self)

    def checks(self) -> list[dict[str, Any]]:
        """One entry per invariant: ``{"invariant", "status", "counterexample"}``."""
        return _report.checks(self)

    def to_json(self) -> str:
        return _report.to_json(self)

    def to_junit(self) -> str:
        return _report.to_junit(self)
