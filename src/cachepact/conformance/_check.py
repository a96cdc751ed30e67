"""The one entry call: ``check(make, pattern=...) -> Result``, which runs the phases of a check."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..errors import InvalidArgument
from ..model import Pattern, pattern_named
from ._clock import VirtualClock
from ._exhaustive import search_exhaustive
from ._findings import CONCURRENT_SITUATIONS, EXTRA_SITUATIONS, SITUATIONS, statuses
from ._hypothesis import profile_budget
from ._interleaved import replaying, run_interleaved
from ._progress import Progress
from ._replay import MAX_OPS, parse_concurrent, parse_sequence, validate_replay
from ._result import Result
from ._run import Run
from ._schedules import search_schedules
from ._sequences import search_sequences
from ._world import World, rerun_sequence

DEFAULT_STEPS = 25
SMOKE_EXAMPLES = 10

CheckPhase = Callable[[], "Run | None"]


def check(
    make: Callable[..., Any],
    pattern: Pattern | str = "cache-aside",
    *,
    max_examples: int | None = None,
    steps: int | None = None,
    seed: int | None = None,
    replay: str | None = None,
    concurrency: bool = True,
    max_ops: int = 3,
    target: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Check the adapter built by ``make(env)`` against ``pattern`` ("cache-aside" or "read-through").

    ``max_examples`` sequences (and, with ``concurrency``, as many concurrent scenarios) of up to
    ``steps`` operations each (defaults: the active Hypothesis profile's ``max_examples``, and its
    ``stateful_step_count`` up to 25). ``seed`` picks which examples are drawn (the same seed, the
    same run); ``replay`` reruns exactly the run a failing report printed. ``max_ops`` (2 to 6)
    bounds the operations in flight together. ``target`` names the adapter in reports (default:
    ``module:qualname`` of the factory). ``on_progress(examples, operations)`` is called as the check goes.

    A definition mistake (a factory that raises or returns no ``Adapter``, a bad ``cache_code``)
    raises ``DefinitionError``, and a bad parameter ``InvalidArgument``, before any checking. A
    broken invariant is a failing ``Result`` whose ``report()`` shows the minimal counterexample; an
    adapter raising mid-operation is the finding ``adapter-error``. See spec/contract.md.
    """
    _validate(max_examples=max_examples, steps=steps, max_ops=max_ops, replay=replay)
    p, label = resolve(make, pattern, target)
    progress = Progress(on_progress)
    started = time.perf_counter()
    with VirtualClock() as clock:
        if replay is not None:
            phases = [_replay_phase(make, p, replay, progress, label, clock)]
        else:
            profile_examples, profile_steps = profile_budget()
            phases = _phases(
                make,
                p,
                examples=max_examples or profile_examples,
                steps=steps or min(profile_steps, DEFAULT_STEPS),
                seed=seed,
                concurrency=concurrency,
                max_ops=max_ops,
                progress=progress,
                label=label,
                clock=clock,
            )
        run = next((r for r in (phase() for phase in phases) if r is not None), None)
    return result_of(
        run,
        pattern=p,
        target=label,
        progress=progress,
        elapsed=time.perf_counter() - started,
        seed=seed,
        concurrent=concurrency,
    )


def result_of(
    run: Run | None,
    *,
    pattern: Pattern,
    target: str,
    progress: Progress,
    elapsed: float,
    seed: int | None = None,
    concurrent: bool = True,
) -> Result:
    """The ``Result`` of a check whose failing run (or None) and counts are known."""
    if run is not None:
        progress.reached.update(run.reached)
    names = (*SITUATIONS, *(CONCURRENT_SITUATIONS if concurrent else ()))
    names += tuple(s for s in EXTRA_SITUATIONS if s not in names)
    return Result(
        pattern=pattern.name,
        target=target,
        finding=run.finding if run else None,
        steps=run.steps if run else (),
        replay=run.replay if run else "",
        final_state=run.final_state if run else (),
        columns=run.columns if run else (),
        context_switches=run.switches if run else 0,
        failing_operations=run.operations if run else 0,
        reached=tuple(s for s in names if s in progress.reached),
        statuses=statuses(run.finding if run else None, progress.reached, also_failed=run.also_failed if run else ()),
        examples=progress.examples,
        operations=progress.operations,
        elapsed=elapsed,
        seed=seed,
        concurrent=concurrent,
    )


def resolve(make: Callable, pattern: Pattern | str, target: str | None) -> tuple[Pattern, str]:
    """The pattern and the adapter's name in reports, once the factory is known to build an Adapter."""
    p = _pattern(pattern)
    label = target or target_name(make)
    with VirtualClock():
        World(make, p, label=label)  # a definition mistake fails here, before any checking
    return p, label


def target_name(make: Callable) -> str:
    """How reports name a factory: ``module:qualname``, the TARGET that reruns it, when it has one."""
    qualname = getattr(make, "__qualname__", None) or repr(make)
    module = getattr(make, "__module__", None)
    if module and module != "__main__" and "<" not in qualname:
        return f"{module}:{qualname}"
    return qualname


def _pattern(pattern: Pattern | str) -> Pattern:
    return pattern if isinstance(pattern, Pattern) else pattern_named(pattern)


def _validate(*, max_examples: int | None, steps: int | None, max_ops: int, replay: str | None) -> None:
    for name, value in (("max_examples", max_examples), ("steps", steps)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InvalidArgument(name, value, f"must be a whole number of at least 1, not {value!r}")
    if not isinstance(max_ops, int) or not 2 <= max_ops <= MAX_OPS:
        raise InvalidArgument("max_ops", max_ops, f"must be between 2 and {MAX_OPS}, not {max_ops!r}")
    if replay is not None:
        validate_replay(replay)


def _phases(
    make: Callable,
    p: Pattern,
    *,
    examples: int,
    steps: int,
    seed: int | None,
    concurrency: bool,
    max_ops: int,
    progress: Progress,
    label: str,
    clock: VirtualClock,
) -> list[CheckPhase]:
    """The phases of a check, cheapest evidence first.

    A short sequential pass, then the small exhaustive interleavings (milliseconds, and where races
    live), then the full sequential budget, then Hypothesis over scenarios and schedules. A race is
    reported about as fast as a plain sequential bug, and a sequential bug keeps its minimal
    sequential program.
    """

    def sequences(n: int) -> CheckPhase:
        return lambda: search_sequences(
            make, p, max_examples=n, steps=steps, seed=seed, progress=progress, label=label, clock=clock
        )

    if not concurrency:
        return [sequences(examples)]
    phases = [
        sequences(min(SMOKE_EXAMPLES, examples)),
        lambda: search_exhaustive(make, p, progress=progress, label=label, clock=clock),
    ]
    if examples > SMOKE_EXAMPLES:
        phases.append(sequences(examples))
    phases.append(
        lambda: search_schedules(
            make, p, max_examples=examples, max_ops=max_ops, seed=seed, progress=progress, label=label, clock=clock
        )
    )
    return phases


def _replay_phase(
    make: Callable, p: Pattern, replay: str, progress: Progress, label: str, clock: VirtualClock
) -> CheckPhase:
    """Rerun exactly what a failing run printed: a sequence, or a scenario with its schedule."""

    def phase() -> Run | None:
        if replay.startswith("con/"):
            scenario, picks = parse_concurrent(replay)
            run = run_interleaved(make, p, scenario, replaying(picks), label=label, clock=clock).as_run()
        else:
            run = rerun_sequence(make, p, parse_sequence(replay), label=label, clock=clock)
        progress.add_run(run)
        return run if run.finding else None

    return phase
