"""The canonical flows of each pattern (read hit, read miss, write), run on the model itself.

The responsibility table in ``spec/`` and the diagrams are produced from these traces, so the
documentation cannot say something the model does not do.
"""

from __future__ import annotations

from ..errors import InvalidArgument
from ._patterns import PATTERNS, Pattern
from ._steps import Step, Trace, render_table
from ._system import Scenario, System

FLOWS = ("read-hit", "read-miss", "write", "stale-set")
# The stale-set race, as the order in which its two operations step: the reader looks up and
# loads, the writer writes and invalidates, the reader fills.
RACE = ("r1", "r1", "w1", "w1", "r1")


def flow(pattern: Pattern, name: str, *, leases: bool = False) -> Trace:
    """Run one operation alone, from the state the flow starts in, and return its steps."""
    if name not in FLOWS:
        raise InvalidArgument("flow", name, f"{name!r} is unknown; use one of: {', '.join(FLOWS)}")
    if name == "stale-set":
        return race(pattern, leases=leases)
    reading = name != "write"
    system = System(Scenario(pattern=pattern, leases=leases, readers=int(reading), writers=int(not reading), keys=1))
    state = system.initial()
    if name == "read-hit":
        state = state._replace(cache=(0,))  # the entry is already cached
    steps: list[Step] = []
    while True:
        successors = system.successors(state)
        if not successors:
            break
        label, state, _ = successors[0]  # one operation on one key: the flow is deterministic
        steps.append(system.step_of(label))
    lease = " with leases" if leases else ""
    return Trace(steps=tuple(steps), title=f"{pattern.name}{lease}: {name}")


def race(pattern: Pattern, *, leases: bool = False) -> Trace:
    """The stale-set interleaving on the model; with leases it shows the refused fill instead."""
    system = System(Scenario(pattern=pattern, leases=leases, readers=1, writers=1, keys=1))
    state = system.initial()
    steps: list[Step] = []
    for op in RACE:
        label, state, _ = next(t for t in system.successors(state) if system.op_names[t[0][0]] == op)
        steps.append(system.step_of(label))
    lease = " with leases" if leases else ""
    return Trace(steps=tuple(steps), title=f"{pattern.name}{lease}: stale-set race")


def _cell(steps: list[Step]) -> str:
    return "; ".join(f"{s.actor}: {s.describe()}" + (f" -> {s.shown_result}" if s.shown_result else "") for s in steps)


RESPONSIBILITY_ROWS = ("read, hit", "read, miss: load", "read, miss: populate", "write")


def responsibilities(pattern: Pattern, *, leases: bool = False) -> dict[str, str]:
    """Who does what, per row of the seed's table, read off the model's own flows."""
    hit = list(flow(pattern, "read-hit", leases=leases))
    miss = list(flow(pattern, "read-miss", leases=leases))
    write = list(flow(pattern, "write", leases=leases))
    load = [s for s in miss if s.target == "db"]
    populate = miss[miss.index(load[-1]) + 1 :]
    return {
        "read, hit": _cell(hit),
        "read, miss: load": _cell(load),
        "read, miss: populate": _cell(populate),
        "write": _cell(write),
    }


def program_table(patterns: list[Pattern] | None = None, *, markdown: bool = False) -> str:
    """Each pattern's read and write programs, as the model defines them: step, kind, who."""
    patterns = patterns or list(PATTERNS.values())
    rows = []
    for p in patterns:
        for name, program in (("read", p.read), ("write", p.write)):
            for n, instr in enumerate(program, 1):
                who = str(instr.by) if instr.strict else "App or Cache"  # not strict: either may make it
                rows.append((p.name, name, str(n), instr.kind.value, who))
    return render_table(("pattern", "operation", "step", "does", "made by"), rows, markdown=markdown)


def responsibility_table(patterns: list[Pattern] | None = None, *, leases: bool = False, markdown: bool = False) -> str:
    patterns = patterns or list(PATTERNS.values())
    columns = [responsibilities(p, leases=leases) for p in patterns]
    header = ("step", *(p.name for p in patterns))
    rows = [(row, *(c[row] for c in columns)) for row in RESPONSIBILITY_ROWS]
    return render_table(header, rows, markdown=markdown)


__all__ = [
    "FLOWS",
    "RACE",
    "RESPONSIBILITY_ROWS",
    "flow",
    "program_table",
    "race",
    "responsibilities",
    "responsibility_table",
]
