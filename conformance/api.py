"""The one entry call: ``check(make, pattern=...) -> Result``."""

from __future__ import annotations

import time
from typing import Any, Callable

from hypothesis import settings as hypothesis_settings

from .result import Result
from .sequential import Progress, run_sequential
from .target import resolve_pattern, validate_factory
from .world import World, parse_replay, replay_string

DEFAULT_STEPS = 25
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
    if replay is not None and replay.startswith("con/"):
        from .concurrent import parse_concurrent_replay, replaying, run_concurrent

        scenario, picks = parse_concurrent_replay(replay)
        run = run_concurrent(make, p, scenario, replaying(picks), backends=backends)
        progress.examples, progress.operations = 1, len(scenario.prefix) + len(scenario.ops)
        progress.reached |= run.world.judge.reached
        return _concurrent_result(run, p, label, progress, time.perf_counter() - started, seed, concurrency=True)
    if replay is not None:
        world: World | None = World(make, p, backends=backends)
        assert world is not None
        for kind, key in parse_replay(replay):
            found = world.read(key) if kind == "r" else world.write(key)
            progress.operations += 1
            if found:
                break
        progress.examples = 1
        progress.reached |= world.judge.reached
        if world.finding is None:
            world = None
    else:
        profile = hypothesis_settings()
        world = run_sequential(
            make,
            p,
            max_examples=max_examples or profile.max_examples,
            steps=steps or min(profile.stateful_step_count, DEFAULT_STEPS),
            seed=seed,
            progress=progress,
            backends=backends,
        )
    if world is None and concurrency and replay is None:
        from .concurrent import EXHAUSTIVE_SCENARIOS, explore_schedules, run_hypothesis_concurrent

        failing = None
        for scenario in EXHAUSTIVE_SCENARIOS:
            ex = explore_schedules(make, p, scenario, limit=exhaustive_limit, backends=backends, on_run=_counting(progress))
            if ex.failing is not None:
                failing = ex.failing
                break
        if failing is None:
            failing = run_hypothesis_concurrent(
                make, p, max_examples=max_examples or hypothesis_settings().max_examples, max_ops=max_ops,
                seed=seed, progress=progress, backends=backends,
            )
        if failing is not None:
            return _concurrent_result(failing, p, label, progress, time.perf_counter() - started, seed, concurrency=True)
    elapsed = time.perf_counter() - started
    common = dict(
        pattern=p.name,
        target=label,
        examples=progress.examples,
        operations=progress.operations,
        elapsed=elapsed,
        seed=seed,
    )
    if world is None:
        return Result(finding=None, reached=_ordered(progress.reached, concurrency), concurrent=concurrency, **common)
    progress.reached |= world.judge.reached
    return Result(
        finding=world.finding,
        steps=tuple(world.steps),
        replay=replay_string(world.ops),
        final_state=tuple(world.final_state()),
        reached=_ordered(progress.reached, concurrency),
        concurrent=concurrency,
        **common,
    )


def _counting(progress: Progress) -> Callable:
    def count(run: Any) -> None:
        progress.examples += 1
        progress.operations += len(run.scenario.prefix) + len(run.scenario.ops)
        progress.reached |= run.world.judge.reached
        if progress.tick:
            progress.tick(progress)

    return count


def _concurrent_result(run: Any, p: Any, label: str, progress: Progress, elapsed: float, seed: int | None, *, concurrency: bool) -> Result:
    return Result(
        pattern=p.name,
        target=label,
        finding=run.finding,
        steps=tuple(run.world.steps),
        replay=run.replay,
        final_state=tuple(run.world.final_state()),
        reached=_ordered(progress.reached | run.world.judge.reached, concurrency),
        examples=progress.examples,
        operations=progress.operations,
        elapsed=elapsed,
        seed=seed,
        columns=tuple(run.names),
        concurrent=concurrency,
    )


def _ordered(reached: set[str], concurrency: bool) -> tuple[str, ...]:
    from .judge import CONCURRENT_SITUATIONS, SITUATIONS

    names = SITUATIONS + (CONCURRENT_SITUATIONS if concurrency else ())
    return tuple(s for s in names if s in reached)
