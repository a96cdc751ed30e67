"""Counting what a check did, in one place, and telling an observer as it goes."""

from __future__ import annotations

from collections.abc import Callable, Iterable


class Progress:
    """Examples and operations run so far, and the situations reached; every driver reports here."""

    def __init__(self, on_progress: Callable[[int, int], None] | None = None) -> None:
        self.examples = 0
        self.operations = 0
        self.reached: set[str] = set()
        self._on_progress = on_progress

    def add(self, *, examples: int = 0, operations: int = 0, reached: Iterable[str] = ()) -> None:
        self.examples += examples
        self.operations += operations
        self.reached.update(reached)
        if self._on_progress is not None:
            self._on_progress(self.examples, self.operations)
