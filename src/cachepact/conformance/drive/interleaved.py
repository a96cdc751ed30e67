"""One concurrent run: several operations in flight under the controlled scheduler, judged afterwards.

The drivers (``_exhaustive``, ``_schedules``) and ``--replay`` all run through ``run_interleaved``;
they differ only in how they choose which operation steps next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ..judge.findings import Finding
from ..runtime.scheduler import Chooser, Participant, Scheduler
from .replay import ConcurrentScenario
from .run import Run
from .world import Setup, World, return_step


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
    def uncontrolled(self) -> int:
        """Times a thread blocked where the kit could not see (a lock made before the run)."""
        return self.world.uncontrolled

    @property
    def overlapped(self) -> bool:
        """A fill happened while a write of the same key was in flight."""
        return "fill-during-write" in self.world.reached

    def as_run(self) -> Run:
        return self.world.as_run(replay=self.replay, columns=tuple(self.names))


def run_interleaved(
    setup: Setup, scenario: ConcurrentScenario, choose: Chooser, *, probe: list | None = None
) -> InterleavedRun:
    """Run ``scenario``: its prefix one operation at a time, then its operations in flight together,
    each on a thread of its app instance, ``choose`` deciding at every step who goes next."""
    world = World(setup)
    try:
        return _interleave(world, scenario, choose, probe)
    finally:
        world.close()


def _interleave(world: World, scenario: ConcurrentScenario, choose: Chooser, probe: list | None) -> InterleavedRun:
    for kind, arg, instance in scenario.prefix:
        if world.run(kind, arg, instance):
            return InterleavedRun(world, scenario, [], [])

    rec, judge = world.harness.recorder, world.judge
    begun = [world.name_op(kind, key, instance) for kind, key, instance in scenario.ops]
    names = [name for name, _ in begun]
    values = [value for _, value in begun]
    started: dict[int, int] = {}
    ended: dict[int, int] = {}

    def body(i: int) -> Callable[[], None]:
        kind, key, _ = scenario.ops[i]
        run = world.body(names[i], kind, key, values[i])

        def op() -> None:
            with rec.lock:
                started[i] = len(rec.steps)
                world.start(names[i], kind, key, values[i])
            try:
                run()
            finally:
                with rec.lock:
                    if names[i] in judge.op_index and names[i] not in world.returned:
                        # It raised: a row for it still, so the table has it end.
                        rec.steps.append(return_step(names[i], kind, key, values[i], None))
                    ended[i] = len(rec.steps) - 1

        return op

    def on_finish(p: Participant) -> None:
        # At rest when every thread is done and every operation ended: judge the cache against the DB.
        if scheduler.live == 0 and not judge.in_flight() and len(ended) == len(names):
            judge.at_rest(world.harness.cache.peek, names[p.op], ended[p.op], steps=rec.steps)

    scheduler = world.scheduler(choose, on_finish)
    slots: dict[int, int] = {}
    for i, (_, _, instance) in enumerate(scenario.ops):
        slot = slots[instance] = slots.get(instance, -1) + 1  # operations in flight on one instance: a thread each
        scheduler.add(i, body(i), world.deployment.thread(instance, slot), world.context(names[i]))
    if probe is not None:
        probe[0] = InFlight(world, scenario, names, scheduler, started, ended, values)
    world.perform(scheduler)
    if scheduler.aborting and world.finding is None:
        return InterleavedRun(world, scenario, names, scheduler.choices, pruned=True)
    return InterleavedRun(world, scenario, names, scheduler.choices)


# -- choosing ----------------------------------------------------------------------------------


class replaying:
    """The chooser that replays recorded choices. ``matched`` says afterwards whether the run offered
    each of them: a replay string printed by another version of the adapter or of the kit may name
    a choice the run does not offer, and then the run is not the one it names. (A choice past the
    run's last decision, where one participant was left, is harmless.)"""

    def __init__(self, picks: list[int]) -> None:
        self.picks = picks
        self.matched = True

    def __call__(self, d: int, options: tuple[int, ...], default: int) -> int:
        if d < len(self.picks):
            if self.picks[d] in options:
                return self.picks[d]
            self.matched = False
        return default


def switching(schedule: list[int]) -> Chooser:
    """Hypothesis' encoding: 0 takes the default (the current thread goes on), k > 0 switches to the
    k-th other option. Shrinking toward zeros is shrinking toward fewer context switches."""

    def choose(d: int, options: tuple[int, ...], default: int) -> int:
        if d < len(schedule) and schedule[d] > 0:
            others = [i for i in options if i != default]
            if others:
                return others[(schedule[d] - 1) % len(others)]
        return default

    return choose
