"""The vocabulary of verdicts: invariant names, the situations a run can reach, and a finding."""

from __future__ import annotations

from typing import Any

import attrs

from ..model._refinement import EXERCISED_BY, INVARIANTS

# Situations every check can reach and reports as reached or never reached; a pass that never
# reached one says nothing about that path. (Others, such as eviction or expiry, depend on the
# adapter and are listed only when reached.)
SITUATIONS = ("miss", "hit", "load", "fill", "write", "invalidate", "absent-read", "read-after-write")
CONCURRENT_SITUATIONS = ("fill-during-write",)
EXTRA_SITUATIONS = ("negative-fill", "lease-wait", "fill-refused", "eviction", "expiry")


def statuses(
    finding: Finding | None, reached: set[str] | frozenset[str], *, also_failed: tuple[str, ...] = ()
) -> tuple[tuple[str, str], ...]:
    """Each invariant's verdict: ``fail`` (the finding's, and ``also_failed``), ``pass`` (its
    situations were reached and it held) or ``not-run`` (the run never reached a situation that could
    break it)."""
    out = []
    for name in INVARIANTS:
        if (finding is not None and finding.invariant == name) or name in also_failed:
            out.append((name, "fail"))
        elif any(s in reached for s in EXERCISED_BY[name]):
            out.append((name, "pass"))
        else:
            out.append((name, "not-run"))
    if finding is not None and finding.invariant not in INVARIANTS:
        out.append((finding.invariant, "fail"))
    return tuple(out)


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


__all__ = [
    "CONCURRENT_SITUATIONS",
    "EXERCISED_BY",
    "EXTRA_SITUATIONS",
    "INVARIANTS",
    "SITUATIONS",
    "Finding",
    "statuses",
]
