"""Stores that fail, in the model: what each step of a pattern asks when its call fails, and which
designs of a write's recovery converge, proved by exploring the model's failure transitions
(``Scenario.faults``, ``recovery``, ``ttl``).

The explorer fails a write's cache step (its invalidation or store) before it takes effect, within
the scenario's budget; the write then gives up, retries, leaves the invalidation to an outbox, or
(delete-twice) had deleted before its put too. A time to live lets any entry expire at any moment.
``no-stale-after-failed-invalidate`` holds when no entry a failed invalidation left can stay stale
with nothing in flight; ``fresh-read`` says whether a read after the write returned may still see the
old value meanwhile (the bound's price).
"""

from __future__ import annotations

import attrs

from ._explorer import explore
from ._patterns import Kind, Pattern
from ._system import RECOVERIES, Scenario

# What a pattern asks of an operation when the call of one of its steps fails (the kit's fault
# invariants and contract say the same, judged on runs).
ON_FAILURE: dict[Kind, str] = {
    Kind.LOOKUP: "a miss: load from the DB",
    Kind.LOAD: "raise (fill nothing: no-poisoned-fill; return no stand-in: no-phantom-read)",
    Kind.FILL: "return what was loaded; the entry stays empty",
    Kind.PUT: "raise: the write is indeterminate (its value may or may not have landed)",
    Kind.INVALIDATE: "converge: retry, or hand it to an outbox; a time to live bounds the staleness",
    Kind.STORE: "converge: retry, or delete the entry; a time to live bounds the staleness",
}

DESIGN_MEANING: dict[str, str] = {
    "give-up": "log the failure and return",
    "retry": "retry the cache step until it succeeds",
    "outbox": "record the invalidation with the put; a relay makes it later, retrying",
    "delete-twice": "delete before the put and after it; give up if the second fails",
}

CONVERGES = "no-stale-after-failed-invalidate"


@attrs.frozen(kw_only=True)
class DesignResult:
    """One recovery design, explored: whether each property held, over how many states."""

    recovery: str
    ttl: bool
    scenario: Scenario
    verdicts: tuple[tuple[str, bool], ...]
    states: int

    @property
    def converges(self) -> bool:
        return dict(self.verdicts)[CONVERGES]

    @property
    def fresh(self) -> bool:
        return dict(self.verdicts).get("fresh-read", True)

    @property
    def name(self) -> str:
        return f"{self.recovery}{' + time to live' if self.ttl else ''}"


def designs_for(pattern: Pattern) -> tuple[str, ...]:
    """The recovery designs that apply to ``pattern``'s write (an outbox and a second delete need a
    write that invalidates)."""
    if not any(instr.kind is Kind.PUT for instr in pattern.write):
        return ()  # write-behind: the write's store is its only step, no entry is left beside a put
    invalidates = any(instr.kind is Kind.INVALIDATE for instr in pattern.write)
    return tuple(r for r in RECOVERIES if invalidates or r in ("give-up", "retry"))


def convergence(pattern: Pattern, *, readers: int = 2, writers: int = 1, faults: int = 1) -> tuple[DesignResult, ...]:
    """Explore every recovery design, with and without a time to live, where ``faults`` calls may
    fail. Reads fill through leases (the write-through family, whose stores leases do not guard,
    through locks), so what the exploration shows is the failure's doing, not the stale-set race."""
    guard = {"locks": True} if any(instr.kind is Kind.STORE for instr in pattern.write) else {"leases": True}
    out = []
    for recovery in designs_for(pattern):
        for ttl in (False, True):
            scenario = Scenario(
                pattern=pattern, readers=readers, writers=writers, faults=faults, recovery=recovery, ttl=ttl, **guard
            )
            result = explore(scenario)
            verdicts = tuple((p.name, p.holds) for p in result.properties)
            out.append(
                DesignResult(recovery=recovery, ttl=ttl, scenario=scenario, verdicts=verdicts, states=result.states)
            )
    return tuple(out)


__all__ = ["CONVERGES", "DESIGN_MEANING", "ON_FAILURE", "DesignResult", "convergence", "designs_for"]
