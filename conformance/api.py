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
) -> Result:
    """Check the adapter built by ``make(env)`` against ``pattern``.

    Definition mistakes (a factory that raises, returns no ``Adapter``, a bad ``cache_code``)
    raise ``DefinitionError`` before any checking. A broken invariant is a failing ``Result``
    whose ``report()`` is the minimal counterexample; the adapter raising is the finding
    ``adapter-error``. ``max_examples`` and ``steps`` default to the active Hypothesis profile.
    """
    p = resolve_pattern(pattern)
    label = target or getattr(make, "__qualname__", repr(make))
    validate_factory(make, p, backends, target=label)
    progress = progress or Progress()
    started = time.perf_counter()
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
        return Result(finding=None, reached=_ordered(progress.reached), **common)
    progress.reached |= world.judge.reached
    return Result(
        finding=world.finding,
        steps=tuple(world.steps),
        replay=replay_string(world.ops),
        final_state=tuple(world.final_state()),
        reached=_ordered(progress.reached),
        **common,
    )


def _ordered(reached: set[str]) -> tuple[str, ...]:
    from .judge import SITUATIONS

    return tuple(s for s in SITUATIONS if s in reached)
