"""Every schedule of a small concurrent scenario, with state caching: a proof within its bounds."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from typing import Any

import attrs

from ..._argtypes import FAULT_MIN, FAULT_SHARE, MAX_SCHEDULES, MIN_SCHEDULES, SCHEDULES_PER_EXAMPLE
from ...model._participants import READ, WRITE
from ..record.redis_commands import RANDOM_TOKEN
from ..report.progress import Progress
from ..runtime.scheduler import ABORT
from .interleaved import InFlight, InterleavedRun, run_interleaved
from .replay import MAX_TICK, TICK, TICKS, ConcurrentScenario, Fault, Op
from .run import Run
from .world import Setup

R1, W1 = Op(READ, "k1"), Op(WRITE, "k1")
# The scenarios a check proves first: small, fast (milliseconds), and where the races live.
EXHAUSTIVE_SCENARIOS = (
    ConcurrentScenario(ops=(R1, W1)),
    ConcurrentScenario(ops=(R1, R1, W1)),
    ConcurrentScenario(ops=(R1, W1, W1)),
    ConcurrentScenario(prefix=(R1,), ops=(R1, W1)),
)


def spread(ops: tuple[Op, ...], instances: int) -> tuple[Op, ...]:
    """The operations placed on the app instances in turn: the first on 1, the next on 2, ..."""
    return tuple(Op(kind, arg, i % instances) for i, (kind, arg, _) in enumerate(ops))


def together(ops: tuple[Op, ...]) -> tuple[Op, ...] | None:
    """The two operations of one kind on one app instance, the rest on the next: what two requests
    of one process share (an in-flight load they coalesce on, a lock, a memo) raced against another
    process. None when no kind appears twice."""
    kinds = [kind for kind, _, _ in ops]
    twice = next((k for k in kinds if kinds.count(k) == 2), None)
    if twice is None:
        return None
    return tuple(Op(kind, arg, 0 if kind == twice else 1) for kind, arg, _ in ops)


def scenarios_for(
    instances: int, *, ageing: int | None = None, flushes: bool = False
) -> tuple[ConcurrentScenario, ...]:
    """With several app instances, the operations in flight are spread over them (what a lock or a
    memo of one process cannot cover); the race between two on one instance is tried first.

    ``ageing`` (refresh-ahead): seconds that age a cached entry past its refresh point without
    expiring it. A read then hits an aged entry and starts its refresh while a write is in flight:
    the stale refresh race."""
    scenarios = EXHAUSTIVE_SCENARIOS
    if ageing is not None:
        scenarios += (ConcurrentScenario(prefix=(R1, Op(TICK, ageing)), ops=(R1, W1)),)
    if instances == 1:
        return scenarios
    first, spread_out = scenarios[:1], [attrs.evolve(s, ops=spread(s.ops, instances)) for s in scenarios]
    # Then two requests of one process against a third elsewhere (a read that starts after a write
    # returned and coalesces on a load its process began before the write).
    spread_out += [attrs.evolve(s, ops=t) for s in scenarios if len(s.ops) == 3 and (t := together(s.ops))]
    if flushes:
        # Write-behind: first two writes on two instances, a flusher each (where flushes cross: about
        # ten schedules), then the rest. A flusher per instance makes every scenario with a read cost
        # more than this race does (the first one alone, 140 schedules).
        return (ConcurrentScenario(ops=spread((W1, W1), instances)), *first, *spread_out)
    return (*first, *spread_out)


def ageing_tick(setup: Setup) -> int | None:
    """For a pattern with refreshes: just short of the shortest TTL the check has seen set (past any
    refresh point, which comes before expiry), or 301 s (past a five-minute one) when none was."""
    if setup.pattern.background_named("refresh") is None:
        return None
    ttl = setup.session.shortest_ttl
    return TICKS[1] if ttl is None else max(1, min(MAX_TICK, math.ceil(ttl) - 1))


# How many schedules of each small race a check explores follows its budget (``_argtypes``): the
# fast profile of a CI run explores less, a nightly one more. A race with more schedules than its
# limit is reported as unfinished (``Result.unfinished``), never passed in silence.
LIMIT = SCHEDULES_PER_EXAMPLE * 100  # at Hypothesis' default budget; a proof of 2r+2w takes about 2,400


def schedule_limit(examples: int) -> int:
    """Schedules explored of each small race by a check of ``examples`` examples."""
    return min(MAX_SCHEDULES, max(MIN_SCHEDULES, SCHEDULES_PER_EXAMPLE * examples))


@attrs.frozen
class _State:
    """A state's parts, before they are made one key: the stores, one part per operation (in the
    scenario's order) and per background worker, and the renamings of write values to try."""

    stores: str
    per_op: tuple[str, ...]
    workers: tuple[str, ...]
    renamings: tuple[Callable[[str], str], ...]

    def key(self) -> str:
        everything = (*self.per_op, *self.workers)
        key = min((rename(self.stores), tuple(sorted(rename(p) for p in everything))) for rename in self.renamings)
        return _rename_tokens(repr(key))

    def swappable(self, a: int, b: int) -> bool:
        """Whether operations ``a`` and ``b`` are interchangeable here: a renaming of write values
        maps the state to itself and ``a``'s part to ``b``'s (two reads of a key at the same point
        with the same results; two writes of a key at the same point, up to which value is whose).
        Stepping either then leads to states that are one state (``key``)."""
        everything = sorted((*self.per_op, *self.workers))
        for rename in self.renamings:
            if rename(self.per_op[a]) != self.per_op[b] or rename(self.stores) != self.stores:
                continue
            if rename is _same or sorted(rename(p) for p in everything) == everything:
                return True
        return False


def _state_key(live: InFlight) -> Any:
    return _state_of(live).key()


def _state_of(live: InFlight) -> _State:
    """Everything the rest of a run can depend on, at a point where every operation is paused.

    An adapter is deterministic code whose only inputs are env results, so an operation's future is
    fixed by the results it has seen; add the stores, each operation's scheduling state, and (for
    ``fresh-read``) which writes completed before each read started. Two schedules that reach the
    same key (for instance, two orders of independent steps) have the same futures, and only the
    first is continued.
    """
    world, scenario, names, started, ended = live.world, live.scenario, live.names, live.started, live.ended
    h = world.harness
    parts = live.scheduler.parts
    # A lease token matters only by whether it can still fill: live or voided. Naming tokens by
    # issue order would split states that cannot behave differently.
    tokens = h.cache.live_tokens()
    seen: dict[str, list] = {n: [] for n in names}
    # Background workers (a refresh, a flush) are the Cache's threads: what they have seen is part
    # of the state as an operation's is (a refresh that loaded before a write is not one that loaded
    # after it).
    seen.update((w, []) for w in world.judge.workers)
    for s in world.steps:
        if s.op in seen:
            result = s.result
            if s.action == "lease_get" and result[1] is not None:
                result = (result[0], "live" if result[1] in tokens else "void")
            seen[s.op].append((s.target, s.action, _hashable(s.key), _hashable(result), s.fault))
    stores = repr((sorted(h.db.snapshot().items(), key=repr), h.cache.state_key()))
    # A write is known by its value, so that renaming values renames writes.
    values = live.values
    before = [
        sorted(values[w] for w in ended if scenario.ops[w][0] == WRITE and ended[w] < started[r])
        if r in started
        else None
        for r in range(len(names))
    ]
    # Each operation with the threads working for it (its own, and helpers it started).
    threads: list[list[tuple[str, int]]] = [[] for _ in names]
    for p in parts:
        threads[p.op].append((p.state, p.parks))
    # What a read may take from another read's load (request coalescing) is its state too: one that
    # began before another's load is not one that began after it returned.
    joins = [world.judge.joinable(n) for n in names]
    # An operation a planned fault is on is not its unfaulted twin (``fault_scenarios``): faults are
    # numbered by operation, the prefix's first.
    planned, first = scenario.fault_plan, scenario.operations - len(scenario.ops)
    per_op = tuple(
        repr((scenario.ops[i], threads[i], seen[n], before[i], values[i], joins[i], planned.get(first + i)))
        for i, n in enumerate(names)
    )
    workers = tuple(repr((w, seen[w])) for w in world.judge.workers)
    if live.scheduler.clock is not None:  # what time can still do: jumps left, and what will expire when
        stores += repr(live.scheduler.clock.state())
    # Reads of one key run the same code with no input of their own, so states that differ only by
    # which of them is which are one state. Writes of one key run the same code too, each with a
    # value of its own that the adapter treats as opaque: states that differ only by a renaming of
    # those values (which write is which) are one state as well. The key is the least of them.
    return _State(stores, per_op, workers, tuple(_renamings(scenario, values)))


def _distinct(options: tuple, default: Any, live: InFlight, state: _State) -> list:
    """The options other than ``default`` worth a schedule of their own: of operations that are
    interchangeable here (``_State.swappable``), only the first. Stepping the other would reach, at
    its next decision, a state the first one's schedules reach (a renaming of it), and be cut there:
    a whole run replayed for nothing. (Few runs are saved so: most cut runs reach a known state by
    steps taken in another order, not by a twin stepping; 2% of the 3r+2w lease proof's.) Helpers,
    daemons and spinning retries are always their own."""
    parts = live.scheduler.parts
    threads: dict[int, int] = {}
    for p in parts:
        if p.state != "done":
            threads[p.op] = threads.get(p.op, 0) + 1

    def op_of(option: Any) -> int | None:
        if not isinstance(option, int) or not 0 <= option < len(parts):
            return None
        p = parts[option]
        return p.op if not (p.helper or p.daemon) and threads.get(p.op) == 1 else None

    kept = [default]
    out = []
    for option in options:
        if option == default:
            continue
        op = op_of(option)
        if op is not None and any(
            (other := op_of(k)) is not None
            and live.scenario.ops[other] == live.scenario.ops[op]
            and state.swappable(other, op)
            for k in kept
        ):
            continue
        kept.append(option)
        out.append(option)
    return out


def _rename_tokens(text: str) -> str:
    """``text`` with each random token named by the order it first appears in.

    Code compares such tokens only for equality (redis-py's ``Lock`` checks its own uuid before
    releasing), so two states that differ by a renaming of tokens have the same futures. Without
    this, the fresh uuid each run makes would keep every state apart and nothing would be pruned.
    """
    names: dict[str, str] = {}
    return RANDOM_TOKEN.sub(lambda m: names.setdefault(m.group(0), f"<token {len(names) + 1}>"), text)


PICK, JUMP = "pick", "jump"  # the two kinds of decision: who steps next; whether the clock moves on first


def _depth_first(
    prefix: list[tuple[str, Any]], stack: list[list], visited: set, split_at: int | None = None, symmetry: bool = True
) -> tuple[Callable, list, list, list]:
    """The chooser for one schedule: replay ``prefix``, then at each new decision point stop if the
    state was seen before, else take the default (the current operation goes on; the clock stands
    still) and push the alternatives on ``stack``. A decision is who steps next, or, where the clock
    offers a jump (something will expire), whether it moves on first: both are branches explored.

    Also returned: the decisions the run takes, as it takes them (a schedule another search can
    replay), and, with ``split_at``, where a new decision at that depth is not taken but the run
    stops, the decisions that led to it (a subtree, explored elsewhere)."""
    depth = [0]
    probe: list = [None]  # run_interleaved puts its live view here
    taken: list[tuple[str, Any]] = []
    split: list = []

    def decide(kind: str, options: tuple, default: Any) -> Any:
        k = depth[0]
        depth[0] += 1
        if k < len(prefix):
            was, pick = prefix[k]
            pick = pick if was == kind else default  # the run went otherwise: its default, as replaying does
            taken.append((kind, pick))
            return pick
        live = probe[0]
        state = _state_of(live)
        key = (kind, state.key())
        if key in visited and live.world.finding is None:
            return ABORT  # its future was explored already (a finding in its past is kept, not cut)
        visited.add(key)
        if k == split_at:
            split.append(tuple(taken))
            return ABORT
        if symmetry and kind == PICK:
            alternatives = _distinct(options, default, live, state)
        else:
            alternatives = [p for p in options if p != default]
        stack.append([kind, options, default, alternatives])
        taken.append((kind, default))
        return default

    def choose(d: int, options: tuple[int, ...], default: int) -> int:
        return decide(PICK, options, default)

    def jump(d: int, offered: int) -> int | None:
        return decide(JUMP, (None, offered), None)

    choose.jump = jump  # type: ignore[attr-defined]
    return choose, probe, taken, split


def _renamings(scenario: ConcurrentScenario, values: list[Any]) -> list[Callable[[str], str]]:
    """Each way of swapping the values of writes of the same key, as a text substitution (a value
    appears in a state's text as the token itself, plain, in JSON or pickled)."""
    groups: dict[Any, list[str]] = {}
    for (kind, key, _), value in zip(scenario.ops, values):
        if kind == WRITE:
            groups.setdefault(key, []).append(value)
    if all(len(g) < 2 for g in groups.values()) or any(len(g) > 3 for g in groups.values()):
        return [_same]  # nothing to swap (or too many orders to try: no reduction then)
    out = []
    for perms in itertools.product(*(itertools.permutations(g) for g in groups.values())):
        mapping = {a: b for g, p in zip(groups.values(), perms) for a, b in zip(g, p) if a != b}
        if not mapping:
            out.append(_same)
            continue
        # (?!\d): k1.v1 must not match the start of k1.v12
        pattern = re.compile("(?:" + "|".join(re.escape(v) for v in mapping) + r")(?!\d)")
        out.append(lambda text, m=mapping, p=pattern: p.sub(lambda hit: m[hit.group(0)], text))
    return out


def _same(text: str) -> str:
    return text


def _hashable(x: Any) -> Any:
    """``x`` itself when it can be part of a state key (keys and results almost always can)."""
    try:
        hash(x)
    except TypeError:
        return repr(x)
    return x


@attrs.define
class Exhaustive:
    """What an exhaustive exploration did: schedules run to the end, ones cut short, any failure.

    ``failing_schedule`` is the failing run's decisions (``under`` them, a search runs it first).
    Explored with ``split_at``, ``subtrees`` are the decisions that lead to each subtree left for
    others to explore, in depth-first order: all of them come before a failure the search found."""

    scenario: ConcurrentScenario
    runs: int = 0
    pruned: int = 0
    states: int = 0
    complete: bool = True
    failing: InterleavedRun | None = None
    failing_schedule: tuple[tuple[str, Any], ...] = ()
    processes: int = 1  # the processes it ran on (``drive/split.py``)
    subtrees: list[tuple[tuple[str, Any], ...]] = attrs.Factory(list)


def explore_schedules(
    setup: Setup,
    scenario: ConcurrentScenario,
    *,
    limit: int = 20_000,
    on_run: Callable[[InterleavedRun], None] | None = None,
    under: tuple[tuple[str, Any], ...] = (),
    visited: set | None = None,
    split_at: int | None = None,
    symmetry: bool = True,
) -> Exhaustive:
    """Every schedule of ``scenario``, depth first, stateless: each schedule is a fresh run that
    replays a prefix of choices, so any adapter works. A run that reaches a state an earlier one
    already explored (``_state_key``) is cut there: orders that differ only by swapping
    independent steps end in the same state, so each is explored once.

    ``under``: only the schedules that begin with these decisions (a subtree of ``split_at``).
    ``visited``: the states explored already, shared by the searches of one process's subtrees.
    ``split_at``: decisions at that depth are not explored but listed (``Exhaustive.subtrees``)."""
    result = Exhaustive(scenario=scenario)
    visited = set() if visited is None else visited
    stack: list[list] = []  # per decision: [kind, options, chosen, untried alternatives]
    prefix: list[tuple[str, Any]] = list(under)
    while True:
        choose, probe, taken, split = _depth_first(prefix, stack, visited, split_at, symmetry)
        run = run_interleaved(setup, scenario, choose, probe=probe)
        if split:
            result.subtrees.append(split[0])
        elif run.pruned:
            result.pruned += 1
        else:
            result.runs += 1
            if on_run:
                on_run(run)
            if run.finding is not None:
                result.failing, result.failing_schedule = run, tuple(taken)
                result.states = len(visited)
                return result
        while stack and not stack[-1][3]:
            stack.pop()
        if not stack:
            result.states = len(visited)
            return result
        node = stack[-1]
        node[2] = node[3].pop(0)
        prefix = [*under, *((n[0], n[2]) for n in stack)]
        if result.runs + result.pruned >= limit:
            result.complete, result.states = False, len(visited)
            return result


def search_exhaustive(
    setup: Setup,
    *,
    limit: int = LIMIT,
    progress: Progress,
    spread: Callable[[tuple[ConcurrentScenario, ...]], InterleavedRun | None] | None = None,
) -> Run | None:
    """The check's exhaustive phase: every schedule of each small scenario (up to ``limit`` each); the
    first failure, or None. With faults, then every schedule of the smallest race with each single
    fault (``fault_scenarios``, a tenth of ``limit`` each). ``spread``: explores the scenarios over
    processes instead (``drive/spread.py``), with the same answer. Each race explored without a
    failure is counted in ``progress`` (``add_race``), unfinished if it met the limit."""
    flushes = setup.pattern.background_named("flush") is not None
    scenarios = scenarios_for(setup.instances, ageing=ageing_tick(setup), flushes=flushes)
    if spread is not None:
        failing = spread(scenarios)
        if failing is not None:
            return failing.as_run()
    for scenario in scenarios if spread is None else ():
        ex = explore_schedules(setup, scenario, limit=limit, on_run=progress.add_run)
        if ex.failing is not None:
            return ex.failing.as_run()
        count_race(progress, scenario, ex)
    if setup.faults:
        return search_fault_schedules(setup, progress=progress, limit=fault_limit(limit))
    return None


def count_race(progress: Progress, scenario: ConcurrentScenario, explored: Any) -> None:
    """``scenario`` explored without a failure, to the end or to its limit: ``explored`` is what its
    search gave, here (``Exhaustive``) or in another process (``split.Explored``)."""
    progress.add_race(
        scenario.describe(),
        complete=explored.complete,
        schedules=explored.runs + explored.pruned,
        faulted=bool(scenario.faults),
    )


# An operation's first calls: where a read looks, loads, fills; a write puts (or commits), invalidates.
FAULT_CALLS = tuple(range(1, 9))


def fault_limit(limit: int) -> int:
    """Schedules explored of each faulted race by a check whose races get ``limit`` (at least 500: a
    second delete failing after a read filled between the deletes takes a few hundred to reach)."""
    return max(FAULT_MIN, limit // FAULT_SHARE)


def fault_scenarios(instances: int) -> list[tuple[ConcurrentScenario, int]]:
    """A read and a write in flight (on two app instances when there are two), each single fault on
    one of their first calls, failing before taking effect or with its reply lost: where a failure
    and a race meet (a second delete that fails after a read between the first and the put). Each
    with the operation the fault is on."""

    def placed(ops: tuple[Op, ...]) -> ConcurrentScenario:
        return ConcurrentScenario(ops=spread(ops, instances) if instances > 1 else ops)

    out = []
    # The write first (its failed invalidation is what must converge), then the read; then the
    # write's faults with a second read, which may begin once the write returned (fresh-read).
    for base, faulted in ((placed((R1, W1)), (1, 0)), (placed((R1, R1, W1)), (2,))):
        for op in faulted:
            for call in FAULT_CALLS:
                for took_effect in (False, True):
                    fault = Fault(call=call, took_effect=took_effect)
                    out.append((attrs.evolve(base, faults=((op, fault),)), op))
    return out


def search_fault_schedules(setup: Setup, *, progress: Progress, limit: int = FAULT_MIN) -> Run | None:
    """Every schedule of each faulted scenario of ``fault_scenarios``; the first failure, or None. A
    fault on a call its operation never makes is skipped after the first schedule shows it."""
    skipped: set[tuple[tuple, int, int]] = set()
    for scenario, op in fault_scenarios(setup.instances):
        if len(scenario.ops) > 2 and not setup.session.stale_after_acknowledged:
            # A read after the write returned can only see the old value if a failed invalidation of a
            # write that returned left an entry stale with a time to live (without one, the smaller
            # races fail first; a write that raised is acknowledged to nobody): no such entry in any
            # run so far, no fresh-read to find with a second read (nine tenths of this phase's cost).
            break
        call = scenario.faults[0][1].call
        if any(ops == scenario.ops and o == op and c <= call for ops, o, c in skipped):
            continue
        fired: list[bool] = []

        def seen(run: InterleavedRun, fired: list[bool] = fired) -> None:
            fired.append(bool(run.world.faults_used))
            progress.add_run(run)

        ex = explore_schedules(setup, scenario, limit=limit, on_run=seen)
        if ex.failing is not None:
            return ex.failing.as_run()
        if any(fired):  # a fault on a call the operation never makes is no race of its own
            count_race(progress, scenario, ex)
        if fired and not any(fired):
            skipped.add((scenario.ops, op, call))
    return None
