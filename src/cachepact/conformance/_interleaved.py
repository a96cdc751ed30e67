"""One concurrent run: several operations in flight under the controlled scheduler, judged afterwards.

The drivers (``_exhaustive``, ``_schedules``) and ``--replay`` all run through ``run_interleaved``;
they differ only in how they choose which operation steps next.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import attrs

from ..model import Pattern
from . import _primitives
from ._clock import VirtualClock
from ._env import run_operation
from ._findings import Finding
from ._primitives import controlled
from ._replay import ConcurrentScenario
from ._run import Run
from ._scheduler import Scheduler, prepare
from ._signals import Pruned, Stalled
from ._world import World, adapter_error, invocation, return_step

# A chooser: (decision number, runnable ops, what each would do next, the op that ran last) -> op.
Chooser = Callable[[int, tuple[int, ...], dict[int, tuple], "int | None"], int]


@attrs.define
class InFlight:
    """A live view of a run while it goes: what ``_exhaustive`` reads to recognise a state."""

    world: World
    scenario: ConcurrentScenario
    names: list[str]
    scheduler: Scheduler
    started: dict[int, int]  # op -> trace index when it was first scheduled
    ended: dict[int, int]  # op -> trace index of its return row
    values: list[Any]  # the value each op writes (None for a read)


@attrs.define
class InterleavedRun:
    world: World
    scenario: ConcurrentScenario
    names: list[str]
    choices: list[int]
    pruned: bool = False  # cut short: it reached a state an earlier schedule had explored
    uncontrolled: int = 0  # steps where an operation blocked outside the kit's view (timeout fallback)

    @property
    def finding(self) -> Finding | None:
        return None if self.pruned else self.world.finding

    @property
    def replay(self) -> str:
        return self.scenario.replay(self.choices)

    @property
    def operations(self) -> int:
        return self.world.operations

    @property
    def reached(self) -> set[str]:
        return self.world.reached

    @property
    def overlapped(self) -> bool:
        """A fill happened while a write of the same key was in flight."""
        return "fill-during-write" in self.world.reached

    def as_run(self) -> Run:
        return self.world.as_run(replay=self.replay, columns=tuple(self.names))


def run_interleaved(
    make: Callable,
    pattern: Pattern,
    scenario: ConcurrentScenario,
    choose: Chooser,
    *,
    label: str = "the factory",
    clock: VirtualClock | None = None,
    step_timeout: float = 0.5,
    stall_timeout: float = 5.0,
    probe: list | None = None,
) -> InterleavedRun:
    with controlled():  # the adapter's own locks, made by the factory, are kit primitives
        world = World(make, pattern, label=label, clock=clock)
    for kind, arg in scenario.prefix:
        if world.run(kind, arg):
            return InterleavedRun(world, scenario, [], [])

    rec, judge = world.harness.recorder, world.judge
    begun = [world.name_op(kind, key) for kind, key in scenario.ops]
    names = [name for name, _ in begun]
    values = [value for _, value in begun]
    started: dict[int, int] = {}
    ended: dict[int, int] = {}
    pruned = [False]

    def body(i: int) -> Callable[[], None]:
        kind, key = scenario.ops[i]

        def run() -> None:
            rec.op_of_thread[threading.get_ident()] = names[i]
            started[i] = len(rec.steps)
            world.start(names[i], kind, key, values[i])
            result = None
            try:
                result = run_operation(*invocation(world.harness.adapter, kind, key, values[i]))
            except Exception as e:  # the adapter's failure is a finding
                judge.keep(adapter_error(e, names[i], world.last_step_of(names[i])))
                rec.steps.append(return_step(names[i], kind, key, values[i], None))
            except Pruned:
                pruned[0] = True
                raise
            else:
                world.end(names[i], kind, key, values[i], result)
            finally:
                ended[i] = len(rec.steps) - 1
                rec.op_of_thread.pop(threading.get_ident(), None)

        return run

    def on_finish(i: int) -> None:
        if not judge.in_flight() and all(j in ended for j in started):
            judge.at_rest(world.harness.cache.peek, names[i], ended[i], steps=rec.steps)

    scheduler = Scheduler(
        [body(i) for i in range(len(names))],
        choose,
        on_finish=on_finish,
        step_timeout=step_timeout,
        stall_timeout=stall_timeout,
    )
    rec.park = scheduler.park
    _primitives.foreign[0] = False
    if probe is not None:
        probe[0] = InFlight(world, scenario, names, scheduler, started, ended, values)
    prepare(len(names))  # worker threads are made outside the patched window
    try:
        with controlled():
            scheduler.run()
    except Stalled as e:
        scheduler.retire_unfinished()
        judge.keep(_stalled(e, scheduler, names, stall_timeout, len(rec.steps)))
    finally:
        rec.park = None
        rec.op_of_thread.clear()

    if pruned[0] or scheduler.aborting:
        return InterleavedRun(world, scenario, names, scheduler.choices, pruned=True)
    if rec.strays:
        judge.keep(
            Finding(
                invariant="adapter-error",
                op=names[0],
                culprit=rec.steps.index(rec.strays[0]),
                message="a thread the kit did not start called env; every call must happen inside read or write",
            )
        )
    return InterleavedRun(world, scenario, names, scheduler.choices, uncontrolled=scheduler.uncontrolled)


def _stalled(e: Stalled, scheduler: Scheduler, names: list[str], stall_timeout: float, n_steps: int) -> Finding:
    stuck = [names[i] for i, st in enumerate(scheduler.state) if st != "done"]
    message = (
        f"{' and '.join(stuck)} wait on each other's locks: no operation can take its next step"
        if e.kind == "deadlock"
        else f"{' and '.join(stuck)} blocked outside the kit's control (not a kit-visible lock) for {stall_timeout:g} s"
    )
    return Finding(
        invariant=e.kind, message=message, op=stuck[0] if stuck else names[0], culprit=n_steps - 1 if n_steps else None
    )


# -- choosing ----------------------------------------------------------------------------------


def continue_current(current: int | None, runnable: tuple[int, ...]) -> int:
    """The default beyond any given choices: keep running the same operation (fewest switches)."""
    return current if current in runnable else runnable[0]


def replaying(picks: list[int]) -> Chooser:
    def choose(d: int, runnable: tuple[int, ...], pending: dict, current: int | None) -> int:
        return picks[d] if d < len(picks) and picks[d] in runnable else continue_current(current, runnable)

    return choose


def switching(schedule: list[int]) -> Chooser:
    """Hypothesis' encoding: 0 keeps the current operation, k > 0 switches to the k-th other one.
    Shrinking toward zeros is shrinking toward fewer context switches."""

    def choose(d: int, runnable: tuple[int, ...], pending: dict, current: int | None) -> int:
        if d < len(schedule) and schedule[d] > 0:
            others = [i for i in runnable if i != current]
            if others:
                return others[(schedule[d] - 1) % len(others)]
        return continue_current(current, runnable)

    return choose
