"""The canonical flows of each pattern (read hit, read miss, write), run on the model itself.

The responsibility table in ``spec/`` and the diagrams are produced from these traces, so the
documentation cannot say something the model does not do.
"""

from __future__ import annotations

from ..errors import InvalidArgument
from ._patterns import PATTERNS, Kind, Pattern
from ._steps import Step, Trace, render_table
from ._system import Scenario, System

FLOWS = ("read-hit", "read-miss", "write", "stale-set", "crossed-writes")
# The races, as the order in which their operations step. Stale set: the reader looks up and loads,
# the writer writes and makes its cache step, the reader fills. Crossed writes (a write that stores
# its value): two writers put in one order and store in the other.
RACES = {
    "stale-set": (("r1", "r1", "w1", "w1", "r1"), 1, 1),
    "crossed-writes": (("w1", "w2", "w2", "w1"), 0, 2),
}
RACE = RACES["stale-set"][0]


def flows_of(pattern: Pattern) -> tuple[str, ...]:
    """The flows ``pattern`` has: crossed writes only where a write stores its value."""
    return tuple(f for f in FLOWS if f != "crossed-writes" or pattern.has(Kind.STORE))


def flow(pattern: Pattern, name: str, *, leases: bool = False, locks: bool = False) -> Trace:
    """Run one operation alone, from the state the flow starts in, and return its steps."""
    known = flows_of(pattern)
    if name not in known:
        raise InvalidArgument("flow", name, f"{name!r} is not a flow of {pattern.name}; use one of: {', '.join(known)}")
    if name in RACES:
        return race(pattern, leases=leases, locks=locks, name=name)
    reading = name != "write"
    scenario = Scenario(
        pattern=pattern, leases=leases, locks=locks, readers=int(reading), writers=int(not reading), keys=1
    )
    system = System(scenario)
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
    return Trace(steps=tuple(steps), title=f"{pattern.name}{_variant(leases, locks)}: {name}")


def race(pattern: Pattern, *, leases: bool = False, locks: bool = False, name: str = "stale-set") -> Trace:
    """A race's interleaving on the model. With a fix the order cannot always be kept (a lock makes an
    operation wait): a step the order asks of a waiting operation goes to the next one that can
    move, and every operation is run to its end, so the trace shows how the fix plays out."""
    order, readers, writers = RACES[name]
    system = System(Scenario(pattern=pattern, leases=leases, locks=locks, readers=readers, writers=writers, keys=1))
    state = system.initial()
    steps: list[Step] = []
    wanted = list(order)
    while (wanted or locks) and len(steps) < 4 * len(order):
        successors = system.successors(state)
        if not successors:
            break
        pick = next((t for t in successors if wanted and system.op_names[t[0][0]] == wanted[0]), None)
        if pick is not None:
            wanted.pop(0)
        else:
            pick = successors[0]  # the op the order names waits (a lock), or the order is done
        label, state, _ = pick
        steps.append(system.step_of(label))
    return Trace(steps=tuple(steps), title=f"{pattern.name}{_variant(leases, locks)}: {name} race")


def _variant(leases: bool, locks: bool) -> str:
    return " with leases" if leases else " with locks" if locks else ""


def _cell(steps: list[Step]) -> str:
    return "; ".join(f"{s.actor}: {s.describe()}" + (f" -> {s.shown_result}" if s.shown_result else "") for s in steps)


RESPONSIBILITY_ROWS = ("read, hit", "read, miss: load", "read, miss: populate", "write")


def responsibilities(pattern: Pattern, *, leases: bool = False, locks: bool = False) -> dict[str, str]:
    """Who does what, per row of the seed's table, read off the model's own flows."""
    hit = list(flow(pattern, "read-hit", leases=leases, locks=locks))
    miss = list(flow(pattern, "read-miss", leases=leases, locks=locks))
    write = list(flow(pattern, "write", leases=leases, locks=locks))
    # The load row is what comes after the lookup up to the DB read (a lock, with the serialising fix).
    loaded_at = max(n for n, s in enumerate(miss) if s.target == "db")
    load = miss[1 : loaded_at + 1]
    populate = miss[loaded_at + 1 :]
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


def responsibility_table(
    patterns: list[Pattern] | None = None, *, leases: bool = False, locks: bool = False, markdown: bool = False
) -> str:
    patterns = patterns or list(PATTERNS.values())
    columns = [responsibilities(p, leases=leases, locks=locks) for p in patterns]
    header = ("step", *(p.name for p in patterns))
    rows = [(row, *(c[row] for c in columns)) for row in RESPONSIBILITY_ROWS]
    return render_table(header, rows, markdown=markdown)


__all__ = [
    "FLOWS",
    "RACE",
    "RACES",
    "RESPONSIBILITY_ROWS",
    "flow",
    "flows_of",
    "program_table",
    "race",
    "responsibilities",
    "responsibility_table",
]
