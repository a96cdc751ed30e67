"""Counting what a check did, in one place, and telling an observer as it goes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

import attrs

from ..runtime.interrupts import InterruptLatch


class Counted(Protocol):
    """What every run the drivers make can say about itself (a ``World``, an ``InterleavedRun``, a ``Run``)."""

    @property
    def operations(self) -> int: ...

    @property
    def reached(self) -> Iterable[str]: ...

    @property
    def uncontrolled(self) -> int: ...


@attrs.frozen(kw_only=True)
class Unfinished:
    """A small race of the exhaustive phase explored only to its limit of schedules: it has more."""

    race: str  # as ``ConcurrentScenario.describe`` names it
    schedules: int  # run and cut: the limit it met
    faulted: bool = False  # a race with a fault (``--faults``), whose limit is a tenth of the others'

    def __str__(self) -> str:
        return f"{self.race} ({self.schedules:,} schedules)"


class Progress:
    """Examples and operations run so far, and the situations reached; every driver reports here."""

    def __init__(
        self, on_progress: Callable[[int, int], None] | None = None, *, interrupts: InterruptLatch | None = None
    ) -> None:
        self.examples = 0
        self.operations = 0
        self.reached: set[str] = set()
        self.uncontrolled = 0  # times a thread blocked where the kit could not see, over every run
        # The exhaustive phase's small races explored without a failure (and, with faults, its
        # races with a fault that fired), and those of them whose schedules outnumbered the phase's
        # limit (``Unfinished``): a pass says how far it went.
        self.races = 0
        self.fault_races = 0
        self.unfinished: list[Unfinished] = []
        self._on_progress = on_progress
        self._interrupts = interrupts

    def add_run(self, run: Counted) -> None:
        """One more example done: count its operations and the situations it reached."""
        self.add(examples=1, operations=run.operations, reached=run.reached, uncontrolled=run.uncontrolled)

    def add_race(self, scenario: str, *, complete: bool, schedules: int, faulted: bool = False) -> None:
        """One small race explored without a failure: to the end, or to ``schedules`` (its limit)."""
        if faulted:
            self.fault_races += 1
        else:
            self.races += 1
        if not complete:
            self.unfinished.append(Unfinished(race=scenario, schedules=schedules, faulted=faulted))

    def add(self, *, examples: int, operations: int, reached: Iterable[str], uncontrolled: int) -> None:
        """Examples done elsewhere (another process), counted as they would have been here."""
        self.examples += examples
        self.operations += operations
        self.reached.update(reached)
        self.uncontrolled += uncontrolled
        if self._on_progress is not None:
            self._on_progress(self.examples, self.operations)
        if self._interrupts is not None:  # between runs: nothing here can swallow it again
            self._interrupts.raise_if_pending()
