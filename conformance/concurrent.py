"""Concurrent runs: several operations in flight under the controlled scheduler, judged afterwards.

Two drivers share one runner: Hypothesis draws scenarios and schedules (so a failure shrinks to
the fewest operations and context switches), and an exhaustive explorer enumerates every schedule
of a small scenario, pruning orders that differ only by swapping independent adjacent steps.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import attrs

from ..model import Pattern, Step
from ..model.steps import APP
from . import primitives
from .env import run_operation
from .judge import Finding
from .primitives import controlled
from .scheduler import ABORT, Pruned, Scheduler, Stalled, prepare
from .world import World, adapter_error, invocation, return_step

Op = tuple[str, str]  # ("r" | "w", key)


@attrs.frozen(kw_only=True)
class Scenario:
    """A sequential prefix (to set the stage: a filled entry, a written key), then operations in flight."""

    prefix: tuple[Op, ...] = ()
    ops: tuple[Op, ...] = ()

    def replay(self, choices: list[int]) -> str:
        ops = lambda xs: ",".join(f"{k}:{key}" for k, key in xs)  # noqa: E731
        return f"con/{ops(self.prefix)}|{ops(self.ops)}/{''.join(str(c) for c in choices)}"


def parse_concurrent_replay(text: str) -> tuple[Scenario, list[int]]:
    form = "expected 'con/PREFIX|OPS/CHOICES' as printed by a failing run"
    try:
        _, body, choices = text.split("/")
        prefix, ops = body.split("|")
        parse = lambda s: tuple(tuple(item.split(":")) for item in s.split(",") if item)  # noqa: E731
        scenario = Scenario(prefix=parse(prefix), ops=parse(ops))
        picks = [int(c) for c in choices]
    except ValueError:
        raise ValueError(f"--replay {text!r} is not a concurrent replay string; {form}") from None
    from .world import KEYS

    ops = (*scenario.prefix, *scenario.ops)
    if not scenario.ops or any(len(op) != 2 or op[0] not in ("r", "w") or op[1] not in KEYS for op in ops):
        raise ValueError(f"--replay {text!r} has a bad operation; {form}")
    if any(c >= len(scenario.ops) for c in picks):
        raise ValueError(f"--replay {text!r} chooses an operation that does not exist; {form}")
    return scenario, picks


@attrs.define
class ConcurrentRun:
    world: World
    scenario: Scenario
    names: list[str]
    finding: Finding | None
    choices: list[int]
    overlapped: bool  # a fill happened while a write of the same key was in flight
    pruned: bool = False  # cut short: it reached a state an earlier schedule had explored
    uncontrolled: int = 0  # steps where an operation blocked outside the kit's view (timeout fallback)

    @property
    def replay(self) -> str:
        return self.scenario.replay(self.choices)

    @property
    def switches(self) -> int:
        ops = [s.op for s in self.world.steps if s.op in self.names]
        return sum(1 for a, b in zip(ops, ops[1:]) if a != b)


def run_concurrent(
    make: Callable,
    pattern: Pattern,
    scenario: Scenario,
    choose: Callable[[int, tuple[int, ...], dict[int, tuple], int | None], int],
    *,
    backends: Callable[[], tuple] | None = None,
    step_timeout: float = 0.5,
    stall_timeout: float = 5.0,
    probe: list | None = None,
) -> ConcurrentRun:
    with controlled():  # the adapter's own locks, made by the factory, are kit primitives
        world = World(make, pattern, backends=backends)
    for kind, key in scenario.prefix:
        found = world.read(key) if kind == "r" else world.write(key)
        if found:
            return ConcurrentRun(world, scenario, [], found, [], False)

    rec, judge = world.harness.recorder, world.judge
    begun = [world.begin(kind, key) for kind, key in scenario.ops]
    names = [name for name, _ in begun]
    values = {i: value for i, (_, value) in enumerate(begun) if value is not None}
    started: dict[int, int] = {}  # op -> trace index when it was first scheduled
    ended: dict[int, int] = {}  # op -> trace index of its return row
    results: dict[int, Any] = {}
    errors: dict[int, BaseException] = {}
    findings: list[Finding] = []
    pruned = [False]

    def body(i: int) -> Callable[[], None]:
        kind, key = scenario.ops[i]

        def run() -> None:
            rec.op_of_thread[threading.get_ident()] = names[i]
            started[i] = len(rec.steps)
            try:
                results[i] = run_operation(*invocation(world.harness.adapter, kind, key, values.get(i)))
            except Exception as e:  # the adapter's failure is a finding
                errors[i] = e
            except Pruned:
                pruned[0] = True
                raise
            finally:
                rec.steps.append(return_step(names[i], kind, key, values.get(i), results.get(i)))
                ended[i] = len(rec.steps) - 1
                rec.op_of_thread.pop(threading.get_ident(), None)

        return run

    def on_finish(i: int) -> None:
        in_flight = [j for j in range(len(names)) if j in started and j not in ended]
        if not in_flight and not findings:
            found = judge.at_rest(world.harness.db, world.harness.cache, names[i])
            if found:
                # The culprit is the step that stored the stale entry, not the moment it was noticed.
                fills = [n for n, s in enumerate(rec.steps) if s.target == "cache" and s.key == found.key and s.action in ("set", "add", "lease_set")]
                k, v = found.key, world.harness.cache.get(found.key)
                hint = (
                    f"the same step: the pattern as the seed states it has this race; fill through a lease "
                    f"(lease_get, then lease_set({k}, {v}, token)) so the invalidation voids the stale fill"
                )
                findings.append(attrs.evolve(found, culprit=fills[-1] if fills else ended[i], allowed=(hint,)))

    scheduler = Scheduler(
        [body(i) for i in range(len(names))], choose, on_finish=on_finish,
        step_timeout=step_timeout, stall_timeout=stall_timeout,
    )
    rec.park = scheduler.park
    primitives.foreign[0] = False
    if probe is not None:
        probe[0] = lambda: _state_key(world, scenario, names, scheduler, started, ended)
    prepare(len(names))  # worker threads are made outside the patched window
    try:
        with controlled():
            scheduler.run()
    except Stalled as e:
        scheduler.retire_unfinished()
        stuck = [names[i] for i, st in enumerate(scheduler.state) if st != "done"]
        message = (
            f"{' and '.join(stuck)} wait on each other's locks: no operation can take its next step"
            if e.kind == "deadlock"
            else f"{' and '.join(stuck)} blocked outside the kit's control (not a kit-visible lock) for {stall_timeout:g} s"
        )
        findings.append(Finding(invariant=e.kind, message=message, op=stuck[0] if stuck else names[0],
                                culprit=len(rec.steps) - 1 if rec.steps else None))
    finally:
        rec.park = None
        rec.op_of_thread.clear()

    if pruned[0] or scheduler.aborting:
        return ConcurrentRun(world, scenario, names, None, scheduler.choices, False, pruned=True)
    for i, e in errors.items():
        findings.append(adapter_error(e, names[i], ended.get(i)))
    if rec.strays:
        first = rec.steps.index(rec.strays[0])
        findings.append(Finding(invariant="adapter-error", op=names[0], culprit=first,
                                message="a thread the kit did not start called env; every call must happen inside read or write"))
    findings += _judge_ops(world, scenario, names, values, results, started, ended, errors)
    overlapped = _fill_overlapped_write(world.steps, names, scenario, started, ended)
    if overlapped:
        judge.reached.add("fill-overlapped-write")
    finding = min(findings, key=lambda f: (f.culprit if f.culprit is not None else 10**9)) if findings else None
    world.finding = world.finding or finding
    return ConcurrentRun(
        world, scenario, names, finding, scheduler.choices, overlapped, uncontrolled=scheduler.uncontrolled
    )


def _judge_ops(world, scenario, names, values, results, started, ended, errors) -> list[Finding]:
    judge = world.judge
    steps = world.steps
    for s in steps:  # the DB history in the order the puts happened
        if s.op in names and s.target == "db" and s.action == "put":
            judge.history.setdefault(s.key, [None]).append(s.value)
    found: list[Finding] = []
    for i in sorted(ended, key=ended.get):
        if i in errors:
            continue
        kind, key = scenario.ops[i]
        own = [(n, s) for n, s in enumerate(steps) if s.op == names[i] and s.target != APP]
        if kind == "w":
            f = judge.write(names[i], key, values[i], own, record=False)
        else:
            floor = judge.completed[key]
            history = judge.history[key]
            for j, (k2, key2) in enumerate(scenario.ops):
                if k2 == "w" and key2 == key and j in ended and ended[j] < started[i] and values[j] in history:
                    floor = max(floor, history.index(values[j]))
            f = judge.read(names[i], key, own, results.get(i), floor=floor, cached_at_start=False)
        if f is not None:
            found.append(f if f.culprit is not None else attrs.evolve(f, culprit=ended[i]))
    return found


def _fill_overlapped_write(steps: list[Step], names: list[str], scenario: Scenario, started: dict, ended: dict) -> bool:
    """Did a read that filled (or tried to) run while a write of the same key was in flight?"""
    for r, (kind, key) in enumerate(scenario.ops):
        if kind != "r" or r not in ended:
            continue
        if not any(s.op == names[r] and s.action in ("set", "add", "lease_set") for s in steps):
            continue
        for w, (kind2, key2) in enumerate(scenario.ops):
            if kind2 == "w" and key2 == key and w in ended and started[w] < ended[r] and started[r] < ended[w]:
                return True
    return False


# -- choosing ----------------------------------------------------------------------------------


def continue_current(current: int | None, runnable: tuple[int, ...]) -> int:
    """The default beyond any given choices: keep running the same operation (fewest switches)."""
    return current if current in runnable else runnable[0]


def replaying(picks: list[int]) -> Callable:
    def choose(d: int, runnable: tuple[int, ...], pending: dict, current: int | None) -> int:
        return picks[d] if d < len(picks) and picks[d] in runnable else continue_current(current, runnable)

    return choose


def switching(schedule: list[int]) -> Callable:
    """Hypothesis' encoding: 0 keeps the current operation, k > 0 switches to the k-th other one.
    Shrinking toward zeros is shrinking toward fewer context switches."""

    def choose(d: int, runnable: tuple[int, ...], pending: dict, current: int | None) -> int:
        if d < len(schedule) and schedule[d] > 0:
            others = [i for i in runnable if i != current]
            if others:
                return others[(schedule[d] - 1) % len(others)]
        return continue_current(current, runnable)

    return choose


# -- exhaustive exploration with state caching ---------------------------------------------------


def _state_key(world: World, scenario: Scenario, names: list[str], scheduler: Scheduler, started: dict, ended: dict) -> Any:
    """Everything the rest of a run can depend on, at a point where every operation is paused.

    An adapter is deterministic code whose only inputs are env results, so an operation's future is
    fixed by the results it has seen; add the stores, each operation's scheduling state, and (for
    ``fresh-read``) which writes completed before each read started. Two schedules that reach the
    same key (for instance, two orders of independent steps) have the same futures, and only the
    first is continued.
    """
    h = world.harness
    # A lease token matters only by whether it can still fill: live or voided. Naming tokens by
    # issue order would split states that cannot behave differently.
    live = h.cache.live_tokens() if hasattr(h.cache, "live_tokens") else None
    seen: dict[str, list] = {n: [] for n in names}
    for s in world.steps:
        if s.op in seen:
            result = s.result
            if live is not None and s.action == "lease_get" and result[1] is not None:
                result = (result[0], "live" if result[1] in live else "void")
            seen[s.op].append((s.target, s.action, repr(s.key), repr(result)))
    stores = tuple(_snapshot(x) for x in (h.db, h.cache))
    before = tuple(
        frozenset(w for w in ended if scenario.ops[w][0] == "w" and ended[w] < started[r]) if r in started else None
        for r in range(len(names))
    )
    per_op = [
        (scenario.ops[i], scheduler.state[i], scheduler.parks[i], tuple(seen[n]), before[i], i if scenario.ops[i][0] == "w" else -1)
        for i, n in enumerate(names)
    ]
    # Reads of one key run the same code with no input of their own, so states that differ only by
    # which of them is which are one state. (Writes differ: each writes its own value.)
    return (stores, tuple(sorted(per_op, key=repr)))


def _snapshot(store: Any) -> Any:
    if hasattr(store, "state_key"):
        return store.state_key()
    return repr(sorted(store.snapshot().items(), key=repr))


@attrs.define
class Exhaustive:
    """What an exhaustive exploration did: schedules run to the end, ones cut short, any failure."""

    scenario: Scenario
    runs: int = 0
    pruned: int = 0
    states: int = 0
    complete: bool = True
    failing: ConcurrentRun | None = None


def explore_schedules(
    make: Callable,
    pattern: Pattern,
    scenario: Scenario,
    *,
    limit: int = 20_000,
    backends: Callable[[], tuple] | None = None,
    on_run: Callable[[ConcurrentRun], None] | None = None,
) -> Exhaustive:
    """Every schedule of ``scenario``, depth first, stateless: each schedule is a fresh run that
    replays a prefix of choices, so any adapter works. A run that reaches a state an earlier one
    already explored (``_state_key``) is cut there: orders that differ only by swapping
    independent steps end in the same state, so each is explored once."""
    result = Exhaustive(scenario=scenario)
    visited: set = set()
    stack: list[list] = []  # per decision: [runnable, chosen, untried alternatives]
    prefix: list[int] = []
    while True:
        depth = [0]
        probe: list = [None]

        def choose(d: int, runnable: tuple[int, ...], pending: dict, current: int | None) -> int:
            if len(runnable) == 1:
                return runnable[0]
            k = depth[0]
            depth[0] += 1
            if k < len(prefix):
                return prefix[k]
            key = probe[0]()
            if key in visited:
                return ABORT
            visited.add(key)
            chosen = continue_current(current, runnable)
            stack.append([runnable, chosen, [p for p in runnable if p != chosen]])
            return chosen

        run = run_concurrent(make, pattern, scenario, choose, backends=backends, probe=probe)
        if run.pruned:
            result.pruned += 1
        else:
            result.runs += 1
            if on_run:
                on_run(run)
            if run.finding is not None:
                result.failing = run
                result.states = len(visited)
                return result
        while stack and not stack[-1][2]:
            stack.pop()
        if not stack:
            result.states = len(visited)
            return result
        node = stack[-1]
        node[1] = node[2].pop(0)
        prefix = [n[1] for n in stack]
        if result.runs + result.pruned >= limit:
            result.complete, result.states = False, len(visited)
            return result


# -- Hypothesis over scenarios and schedules -------------------------------------------------------

EXHAUSTIVE_SCENARIOS = (
    Scenario(ops=(("r", "k1"), ("w", "k1"))),
    Scenario(ops=(("r", "k1"), ("r", "k1"), ("w", "k1"))),
    Scenario(ops=(("r", "k1"), ("w", "k1"), ("w", "k1"))),
    Scenario(prefix=(("r", "k1"),), ops=(("r", "k1"), ("w", "k1"))),
)


def run_hypothesis_concurrent(
    make: Callable,
    pattern: Pattern,
    *,
    max_examples: int,
    max_ops: int,
    seed: int | None,
    progress: Any,
    backends: Callable[[], tuple] | None = None,
) -> ConcurrentRun | None:
    """Hypothesis draws a prefix, the operations in flight and a schedule; the shrunk failure, or None."""
    import hypothesis.strategies as st
    from hypothesis import given

    from .sequential import Violation, kit_settings, run_seeded
    from .world import KEYS

    failing: list[ConcurrentRun] = []
    op = st.tuples(st.sampled_from(("r", "w")), st.sampled_from(KEYS[:2]))

    @kit_settings(max_examples, seed)
    @given(
        prefix=st.lists(op, max_size=2),
        ops=st.lists(op, min_size=2, max_size=max_ops),
        schedule=st.lists(st.integers(0, max_ops), max_size=6 * max_ops),
    )
    def test(prefix: list, ops: list, schedule: list) -> None:
        progress.examples += 1
        run = run_concurrent(make, pattern, Scenario(prefix=tuple(prefix), ops=tuple(ops)), switching(schedule), backends=backends)
        progress.operations += len(prefix) + len(ops)
        progress.reached |= run.world.judge.reached
        if progress.tick:
            progress.tick(progress)
        if run.finding is not None:
            failing.append(run)
            raise Violation(run.finding)

    run_seeded(test, seed)
    return failing[-1] if failing else None
