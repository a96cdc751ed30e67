"""The canonical flows of each pattern (read hit, read miss, write), run on the model itself.

The responsibility table in ``spec/`` and the diagrams are produced from these traces, so the
documentation cannot say something the model does not do.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ..errors import InvalidArgument
from ._patterns import NAMED, Kind, Pattern
from ._steps import Step, Trace, render_table
from ._system import AGED, NOBODY, Scenario, State, System

FLOWS = (
    "read-hit",
    "read-miss",
    "write",
    "refresh",
    "flush",
    "stale-set",
    "crossed-writes",
    "stale-refresh",
    "crossed-flushes",
    "lost-write",
)


def _stale_set(p: Pattern) -> tuple[str, ...]:
    # The reader looks up and loads, the writer runs its whole program, the reader fills.
    return ("r1", "r1", *("w1",) * len(p.write), "r1")


def _stale_refresh(p: Pattern) -> tuple[str, ...]:
    # A hit on an aged entry starts the refresh, which loads; the writer runs; the refresh stores.
    return ("r1", "rf1", *("w1",) * len(p.write), "rf1")


@attrs.frozen(kw_only=True)
class Race:
    """A race as the order its operations step in (``-`` a step no operation makes: an eviction),
    the operations it needs, and the state it starts in (``aged``: k1's entry cached and aged)."""

    order: Callable[[Pattern], tuple[str, ...]]
    readers: int
    writers: int
    has: Callable[[Pattern], bool]
    aged: bool = False
    evictions: bool = False


RACES = {
    "stale-set": Race(order=_stale_set, readers=1, writers=1, has=lambda p: True),
    # Crossed writes (a write that puts and then stores its value): two writers put in one order
    # and store in the other.
    "crossed-writes": Race(
        order=lambda p: ("w1", "w2", "w2", "w1"),
        readers=0,
        writers=2,
        has=lambda p: {i.kind for i in p.write} >= {Kind.PUT, Kind.STORE},
    ),
    "stale-refresh": Race(order=_stale_refresh, readers=1, writers=1, has=lambda p: p.has(Kind.REFRESH), aged=True),
    # Two flushes of one key take in the write order and put in the other.
    "crossed-flushes": Race(
        order=lambda p: ("w1", "fl1", "w2", "fl2", "fl2", "fl1"),
        readers=0,
        writers=2,
        has=lambda p: p.has(Kind.TAKE),
    ),
    # A dirty entry dropped before its flush.
    "lost-write": Race(
        order=lambda p: ("w1", "-"), readers=0, writers=1, has=lambda p: p.has(Kind.TAKE), evictions=True
    ),
}
RACE = _stale_set(NAMED[0])
# Flows that run one operation and then the background work it leaves: a refresh its hit starts, the
# flush of its write.
_BACKGROUND_FLOWS = {"refresh": Kind.REFRESH, "flush": Kind.TAKE}


def flows_of(pattern: Pattern) -> tuple[str, ...]:
    """The flows ``pattern`` has: its background work's, and the races its programs allow."""
    return tuple(
        f
        for f in FLOWS
        if (f in RACES and RACES[f].has(pattern))
        or (f in _BACKGROUND_FLOWS and pattern.has(_BACKGROUND_FLOWS[f]))
        or f in ("read-hit", "read-miss", "write")
    )


def flow(pattern: Pattern, name: str, *, leases: bool = False, locks: bool = False) -> Trace:
    """Run one operation alone, from the state the flow starts in, and return its steps (for
    ``refresh`` and ``flush``, with the background work it started, run to its end)."""
    known = flows_of(pattern)
    if name not in known:
        raise InvalidArgument("flow", name, f"{name!r} is not a flow of {pattern.name}; use one of: {', '.join(known)}")
    if name in RACES:
        return race(pattern, leases=leases, locks=locks, name=name)
    reading = name in ("read-hit", "read-miss", "refresh")
    scenario = Scenario(
        pattern=pattern, leases=leases, locks=locks, readers=int(reading), writers=int(not reading), keys=1
    )
    system = System(scenario)
    state = system.initial()
    if name in ("read-hit", "refresh"):
        state = _cached(state, aged=name == "refresh")  # the entry is already cached
    steps: list[Step] = []
    background = name in _BACKGROUND_FLOWS
    while True:
        # One operation on one key: the flow is deterministic. The plain flows stop when it ends
        # (a flush or refresh may follow, but is not this flow's).
        successors = [t for t in system.successors(state) if t[0][0] != NOBODY]
        if not background:
            successors = [t for t in successors if t[0][0] == 0]
        if not successors:
            break
        label, state, _ = successors[0]
        steps.append(system.step_of(label))
    return Trace(steps=tuple(steps), title=f"{pattern.name}{_variant(leases, locks)}: {name}")


def _cached(state: State, *, aged: bool) -> State:
    return state._replace(cache=(0,), marks=(AGED if aged else 0,))


def race(pattern: Pattern, *, leases: bool = False, locks: bool = False, name: str = "stale-set") -> Trace:
    """A race's interleaving on the model. With a fix the order cannot always be kept (a lock makes an
    operation wait): a step the order asks of a waiting operation goes to the next one that can
    move, and every operation is run to its end, so the trace shows how the fix plays out."""
    spec = RACES[name]
    order = spec.order(pattern)
    scenario = Scenario(
        pattern=pattern,
        leases=leases,
        locks=locks,
        readers=spec.readers,
        writers=spec.writers,
        keys=1,
        evictions=spec.evictions,
    )
    system = System(scenario)
    state = system.initial()
    if spec.aged:
        state = _cached(state, aged=True)
    steps: list[Step] = []
    wanted = list(order)
    while (wanted or locks) and len(steps) < 4 * len(order):
        # Time does not pass in a race unless the order asks for it (an aged entry is set up).
        successors = [t for t in system.successors(state) if t[0][3] != "tick"]
        if not successors:
            break
        pick = next((t for t in successors if wanted and _name(system, t) == wanted[0]), None)
        if pick is not None:
            wanted.pop(0)
        else:
            # The op the order names waits (a lock), or the order is done: the next op moves (not
            # the cache dropping an entry on its own).
            pick = next((t for t in successors if t[0][0] != NOBODY), None)
            if pick is None:
                break
        label, state, _ = pick
        steps.append(system.step_of(label))
    return Trace(steps=tuple(steps), title=f"{pattern.name}{_variant(leases, locks)}: {name} race")


def _name(system: System, t: tuple) -> str:
    i = t[0][0]
    return "-" if i == NOBODY else system.op_names[i]


def _variant(leases: bool, locks: bool) -> str:
    return " with leases" if leases else " with locks" if locks else ""


def _cell(steps: list[Step]) -> str:
    return "; ".join(f"{s.actor}: {s.describe()}" + (f" -> {s.shown_result}" if s.shown_result else "") for s in steps)


RESPONSIBILITY_ROWS = ("read, hit", "read, miss: load", "read, miss: populate", "write", "background")


def responsibilities(pattern: Pattern, *, leases: bool = False, locks: bool = False) -> dict[str, str]:
    """Who does what, per row of the seed's table, read off the model's own flows."""
    hit = list(flow(pattern, "read-hit", leases=leases, locks=locks))
    miss = list(flow(pattern, "read-miss", leases=leases, locks=locks))
    write = list(flow(pattern, "write", leases=leases, locks=locks))
    # The load row is what comes after the lookup up to the DB read (a lock, with the serialising fix).
    loaded_at = max(n for n, s in enumerate(miss) if s.target == "db")
    load = miss[1 : loaded_at + 1]
    populate = miss[loaded_at + 1 :]
    # Background work: the steps its flow adds after the operation that started it.
    background = []
    for name, kind in _BACKGROUND_FLOWS.items():
        if pattern.has(kind):
            steps = list(flow(pattern, name, leases=leases, locks=locks))
            ours = [s for s in steps if s.op != steps[0].op]
            background.append(f"{name}: {_cell(ours)}")
    return {
        "read, hit": _cell(hit),
        "read, miss: load": _cell(load),
        "read, miss: populate": _cell(populate),
        "write": _cell(write),
        "background": " / ".join(background) or "-",
    }


def program_table(patterns: list[Pattern] | None = None, *, markdown: bool = False) -> str:
    """Each pattern's read and write programs, as the model defines them: step, kind, who."""
    patterns = patterns or list(NAMED)
    rows = []
    for p in patterns:
        programs = (("read", p.read), ("write", p.write), *((b.name, b.program) for b in p.background))
        for name, program in programs:
            for n, instr in enumerate(program, 1):
                who = str(instr.by) if instr.strict else "App or Cache"  # not strict: either may make it
                rows.append((p.name, name, str(n), instr.kind.value, who))
    return render_table(("pattern", "operation", "step", "does", "made by"), rows, markdown=markdown)


def responsibility_table(
    patterns: list[Pattern] | None = None, *, leases: bool = False, locks: bool = False, markdown: bool = False
) -> str:
    patterns = patterns or list(NAMED)
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
