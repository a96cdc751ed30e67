"""A finding, and each invariant's status read off the declarations (``cachepact.model._properties``)."""

from __future__ import annotations

from typing import Any

import attrs

from ...model import Pattern
from ...model._properties import invariant_names
from ...model._properties import statuses as declared_statuses


def statuses(
    pattern: Pattern,
    finding: Finding | None,
    reached: set[str] | frozenset[str],
    *,
    also_failed: tuple[str, ...] = (),
    faults: bool = False,
) -> tuple[tuple[str, str], ...]:
    """Each invariant of ``pattern``: ``fail`` (the finding's, and ``also_failed``), ``pass`` (its
    situations were reached and it held) or ``not-run`` (the run never reached a situation that could
    break it)."""
    failed = ((finding.invariant,) if finding is not None else ()) + tuple(also_failed)
    return declared_statuses(pattern, failed, reached, faults=faults)


@attrs.frozen(kw_only=True)
class Finding:
    """What broke, where: the invariant (or ``adapter-error``, ``timeout``, ``deadlock``), one
    sentence, the culprit step and what the model allowed there."""

    invariant: str
    message: str
    op: str
    culprit: int | None = None  # index into the run's steps; None when the operation made none
    allowed: tuple[str, ...] = ()
    key: Any = None  # for coherent-at-rest: the cache key whose entry is stale
    hint: str = ""  # how to close it, when the pattern itself allowed the culprit (a race)


# Every invariant's name, as declared (public: ``cachepact.INVARIANTS``; a pattern's own are
# ``cachepact.model.invariant_names(pattern)``).
INVARIANTS: tuple[str, ...] = invariant_names()

__all__ = ["INVARIANTS", "Finding", "statuses"]
