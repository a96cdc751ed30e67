"""The one entry call: ``check(make, pattern=...) -> Result``."""

from __future__ import annotations

import time
from typing import Any, Callable

from hypothesis import settings as hypothesis_settings

from .concurrent import ConcurrentRun, parse_concurrent_replay, replaying, run_concurrent, run_hypothesis_concurrent
from .result import Result
from .sequential import Progress, run_sequential
from .target import resolve_pattern, validate_factory
from .world import World, parse_replay, replay_string

DEFAULT_STEPS = 25
SMOKE_EXAMPLES = 10
MAX_OPS = 6  # operations in flight: past this, schedules outgrow any useful budget


def check(
    make: Callable[..., Any],
    pattern: Any = "cache-aside",
    *,
    max_examples: int | None = None,
    steps: int | None = None,
    seed: int | None = None,
    replay: str | None = None,
    concurrency: bool = True,
    target: str | None = None,
    progress: Progress | None = None,
    backends: Callable[[], tuple] | None = None,
    max_ops: int = 3,
    exhaustive_limit: int = 5_000,
) -> Result:
    """Check the adapter built by ``make(env)`` against ``pattern``.

    Definition mistakes (a factory that raises, returns no ``Adapter``, a bad ``cache_code``)
    raise ``DefinitionError`` before any checking. A broken invariant is a failing ``Result``
    whose ``report()`` is the minimal counterexample; the adapter raising is the finding
    ``adapter-error``. ``max_examples`` and ``steps`` default to the active Hypothesis profile.
    """
    p = resolve_pattern(pattern)
    if not 2 <= max_ops <= MAX_OPS:
        raise ValueError(f"--max-ops must be between 2 and {MAX_OPS}, not {max_ops}")
    label = target or getattr(make, "__qualname__", repr(make))
    validate_factory(make, p, backends, target=label)
    progress = progress or Progress()
    started = time.perf_counter()
    if replay is not None:
        found = _replay(make, p, replay, progress, backends)
    else:
        profile = hypothesis_settings()
        examples = max_examples or profile.max_examples
        budget = dict(
            steps=steps or min(profile.stateful_step_count, DEFAULT_STEPS), seed=seed, progress=progress, backends=backends
        )
        found = _search(make, p, examples, budget, concurrency, max_ops, exhaustive_limit)
    elapsed = time.perf_counter() - started
    common = dict(pattern=p.name, target=label, elapsed=elapsed, seed=seed, concurrent=concurrency)
    if found is None:
        return Result(
            finding=None, reached=_ordered(progress.reached, concurrency), examples=progress.examples,
            operations=progress.operations, **common,
        )
    world = found.world if isinstance(found, ConcurrentRun) else found
    progress.reached |= world.judge.reached
    return Result(
        finding=found.finding,
        steps=tuple(world.steps),
        replay=found.replay if isinstance(found, ConcurrentRun) else replay_string(world.ops),
        final_state=tuple(world.final_state()),
        reached=_ordered(progress.reached, concurrency),
        examples=progress.examples,
        operations=progress.operations,
        columns=tuple(found.names) if isinstance(found, ConcurrentRun) else (),
        **common,
    )


def _replay(make: Callable, p: Any, replay: str, progress: Progress, backends: Any) -> World | ConcurrentRun | None:
    """Rerun exactly what a failing run printed: a sequence, or a scenario with its schedule."""
    progress.examples = 1
    if replay.startswith("con/"):
        scenario, picks = parse_concurrent_replay(replay)
        run = run_concurrent(make, p, scenario, replaying(picks), backends=backends)
        progress.operations = len(scenario.prefix) + len(scenario.ops)
        progress.reached |= run.world.judge.reached
        return run if run.finding else None
    world = World(make, p, backends=backends)
    for kind, key in parse_replay(replay):
        progress.operations += 1
        if world.read(key) if kind == "r" else world.write(key):
            break
    progress.reached |= world.judge.reached
    return world if world.finding else None


def _search(
    make: Callable, p: Any, examples: int, budget: dict, concurrency: bool, max_ops: int, limit: int
) -> World | ConcurrentRun | None:
    """The phases of a check, cheapest evidence first.

    A short sequential pass, then the small exhaustive interleavings (milliseconds, and where races
    live), then the full sequential budget, then Hypothesis over scenarios and schedules. A race is
    reported about as fast as a plain sequential bug, and a sequential bug keeps its minimal
    sequential program.
    """
    progress, backends = budget["progress"], budget["backends"]
    found: World | ConcurrentRun | None = None
    if concurrency:
        found = run_sequential(make, p, max_examples=min(SMOKE_EXAMPLES, examples), **budget)
        if found is None:
            found = _exhaustive(make, p, progress, backends, limit)
    if found is None and (examples > SMOKE_EXAMPLES or not concurrency):
        found = run_sequential(make, p, max_examples=examples, **budget)
    if found is None and concurrency:
        found = run_hypothesis_concurrent(
            make, p, max_examples=examples, max_ops=max_ops, seed=budget["seed"], progress=progress, backends=backends
        )
    return found


def _exhaustive(make: Callable, p: Any, progress: Progress, backends: Any, limit: int) -> Any:
    from .concurrent import EXHAUSTIVE_SCENARIOS, explore_schedules

    for scenario in EXHAUSTIVE_SCENARIOS:
        ex = explore_schedules(make, p, scenario, limit=limit, backends=backends, on_run=_counting(progress))
        if ex.failing is not None:
            return ex.failing
    return None


def _counting(progress: Progress) -> Callable:
    def count(run: Any) -> None:
        progress.examples += 1
        progress.operations += len(run.scenario.prefix) + len(run.scenario.ops)
        progress.reached |= run.world.judge.reached
        if progress.tick:
            progress.tick(progress)

    return count


def _ordered(reached: set[str], concurrency: bool) -> tuple[str, ...]:
    from .judge import CONCURRENT_SITUATIONS, SITUATIONS

    names = SITUATIONS + (CONCURRENT_SITUATIONS if concurrency else ())
    return tuple(s for s in names if s in reached)
