"""The vocabulary of verdicts: invariant names, the situations a run can reach, and a finding."""

from __future__ import annotations

from typing import Any

import attrs

# Public names (spec/contract.md): reports, JSON and JUnit use them.
INVARIANTS = (
    "who-loads",
    "who-populates",
    "write-order",
    "invalidate-not-update",
    "fresh-read",
    "coherent-at-rest",
    "hit-after-fill",
    "single-load",
)
# Situations a run can reach; a pass that never reached one says nothing about that path.
SITUATIONS = ("miss", "hit", "fill", "write-invalidate", "absent-read")
CONCURRENT_SITUATIONS = ("fill-overlapped-write",)


@attrs.frozen(kw_only=True)
class Finding:
    """What broke, where: the invariant (or ``adapter-error``, ``timeout``, ``deadlock``), one
    sentence, the culprit step and what the model allowed there."""

    invariant: str
    message: str
    op: str
    culprit: int | None = None  # index into the run's steps; None when the operation's end is the culprit
    allowed: tuple[str, ...] = ()
    key: Any = None  # for coherent-at-rest: the cache key whose entry is stale
