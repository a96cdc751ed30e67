"""The one shape of a finished run, sequential or concurrent: what every phase of a check returns."""

from __future__ import annotations

import itertools

import attrs

from ...model import Step
from ..judge.findings import Finding


@attrs.frozen(kw_only=True)
class Run:
    """A run the kit judged: its finding (None when it held), its steps, how to replay it exactly,
    the operations that were in flight together (``columns``; empty for a sequential run), how many
    operations it performed, the situations it reached and what it left in the DB and cache."""

    finding: Finding | None
    steps: tuple[Step, ...]
    replay: str
    operations: int
    reached: frozenset[str] = frozenset()
    columns: tuple[str, ...] = ()
    final_state: tuple[tuple[str, ...], ...] = ()
    also_failed: tuple[str, ...] = ()  # invariants the run broke besides its finding's
    instances: tuple[tuple[str, int], ...] = ()  # each operation and the app instance it ran on
    uncontrolled: int = 0  # times a thread blocked where the kit could not see (a lock made before the run)

    @property
    def switches(self) -> int:
        """Context switches: consecutive steps of two different operations in flight."""
        ops = [s.op for s in self.steps if s.op in self.columns]
        return sum(1 for a, b in itertools.pairwise(ops) if a != b)
