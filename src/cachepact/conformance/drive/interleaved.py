"""One concurrent run: several operations in flight under the controlled scheduler, judged afterwards.

The drivers (``_exhaustive``, ``_schedules``) and ``--replay`` all run through ``run_interleaved``;
they differ only in how they choose which operation steps next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ..judge.findings import Finding
from ..runtime.scheduler import ALONE, Chooser, Participant, Scheduler
from . import replay
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
    jumps: list[tuple[int, int]] = attrs.Factory(list)  # the clock's jumps inside the race: (choice number, seconds)

    @property
    def finding(self) -> Finding | None:
        return None if self.pruned else self.world.finding

    @property
    def replay(self) -> str:
        # Only the faults that fired: a planned fault on a call the run never made names nothing.
        used = tuple(sorted(self.world.faults_used.items()))
        return attrs.evolve(self.scenario, faults=used).replay(self.choices, self.jumps)

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
        # Background work (a refresh, a flush) is a column of its own, after the operations.
        workers = self.world.judge.workers
        busy = tuple(dict.fromkeys(s.op for s in self.world.steps if s.op in workers))
        return self.world.as_run(replay=self.replay, columns=(*self.names, *busy))


def run_interleaved(
    setup: Setup,
    scenario: ConcurrentScenario,
    choose: Chooser,
    *,
    probe: list | None = None,
    jumps: int | None = None,
) -> InterleavedRun:
    """Run ``scenario``: its prefix one operation at a time, then its operations in flight together,
    each on a thread of its app instance, ``choose`` deciding at every step who goes next, and (a
    chooser with ``jump``) whether the clock moves on there, at most ``jumps`` times (default
    ``replay.RACE_JUMPS``, read now, so a benchmark can set it to 0)."""
    world = World(setup)
    try:
        return _interleave(world, scenario, choose, probe, replay.RACE_JUMPS if jumps is None else jumps)
    finally:
        world.close()


def _interleave(
    world: World, scenario: ConcurrentScenario, choose: Chooser, probe: list | None, jumps: int
) -> InterleavedRun:
    world.fault_plan = scenario.fault_plan
    for kind, arg, instance in scenario.prefix:
        if world.run(kind, arg, instance):
            return InterleavedRun(world, scenario, [], [])

    rec, judge = world.harness.recorder, world.judge
    expiring = world.harness.cache.ttl_bounds  # what bounds a stale entry (a real server's TTLs too)
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
                    if (
                        names[i] in judge.op_index
                        and names[i] not in world.returned
                        and names[i] not in world.raised_rows
                    ):
                        # It raised: a row for it still, so the table has it end.
                        rec.steps.append(return_step(names[i], kind, key, values[i], None))
                    ended[i] = len(rec.steps) - 1

        return op

    def on_finish(p: Participant) -> None:
        # At rest when every thread is done and every operation ended: judge the cache against the DB.
        if scheduler.live == 0 and not judge.in_flight() and len(ended) == len(names):
            judge.at_rest(world.harness.cache.peek, names[p.op], ended[p.op], steps=rec.steps, expiring=expiring)

    scheduler = world.scheduler(choose, on_finish, jumps=jumps)
    if scheduler.on_quiet is not None:  # daemons never end: at rest once they are idle instead
        daemons_idle = scheduler.on_quiet

        def on_quiet() -> None:
            daemons_idle()
            if not judge.in_flight() and len(ended) == len(names):
                last = max(ended, key=ended.__getitem__)
                judge.at_rest(
                    world.harness.cache.peek, names[last], len(rec.steps) - 1, steps=rec.steps, expiring=expiring
                )

        scheduler.on_quiet = on_quiet
    slots: dict[int, int] = {}
    for i, (_, _, instance) in enumerate(scenario.ops):
        slot = slots[instance] = slots.get(instance, -1) + 1  # operations in flight on one instance: a thread each
        scheduler.add(i, body(i), world.deployment.thread(instance, slot), world.context(names[i]))
    if probe is not None:
        probe[0] = InFlight(world, scenario, names, scheduler, started, ended, values)
    if world.perform(scheduler) and not scheduler.aborting:
        world.drain()  # the adapter's flush=, if it has one
        world.settle()
    if scheduler.aborting and world.finding is None:
        return InterleavedRun(world, scenario, names, scheduler.choices, pruned=True, jumps=scheduler.jumps)
    return InterleavedRun(world, scenario, names, scheduler.choices, jumps=scheduler.jumps)


# -- choosing ----------------------------------------------------------------------------------


class replaying:
    """The chooser that replays recorded choices and clock jumps. ``matched`` says afterwards whether
    the run offered each of them: a replay string printed by another version of the adapter or of
    the kit may name a choice the run does not offer (or a jump where nothing was left to expire),
    and then the run is not the one it names. (A choice past the run's last decision, where one
    participant was left, is harmless.) A jump moves the clock by the seconds the string names."""

    def __init__(self, picks: list[int], jumps: list[tuple[int, int]] | tuple = ()) -> None:
        self.picks = picks
        self.pending = list(jumps)  # (choice number, seconds), in order
        self._offered = True

    @property
    def matched(self) -> bool:
        return self._offered and not self.pending

    def __call__(self, d: int, options: tuple[int, ...], default: int) -> int:
        if d < len(self.picks):
            if self.picks[d] in options:
                return self.picks[d]
            self._offered = False
        return default

    def jump(self, d: int, offered: int) -> int | None:
        if self.pending and self.pending[0][0] == d:
            return self.pending.pop(0)[1]
        return None


_JUST_JUMPED = -1


class switching:
    """Hypothesis' encoding: 0 takes the default (the current thread goes on), k > 0 switches to the
    k-th other option. Shrinking toward zeros is shrinking toward fewer context switches.

    ``jumps`` count the points that offer a jump (something will expire): the clock moves on at the
    n-th of them for each n drawn, and the thread that was going on there stalls: the others step
    (switching among themselves as drawn) until none of them can, and then it goes on. A holder
    paused past its lock's or lease's timeout while the others run is the race time shows.
    Shrinking them away is shrinking toward time standing still, and toward zero, toward the first
    such point."""

    def __init__(self, schedule: list[int], jumps: list[int] | tuple = ()) -> None:
        self.schedule = schedule
        self.jumps = sorted(jumps)
        self.offers = 0
        self.stalled: int | None = None

    def __call__(self, d: int, options: tuple[int, ...], default: int) -> int:
        if self.stalled == _JUST_JUMPED:
            self.stalled = default
        if self.stalled is not None:
            rest = tuple(i for i in options if i != self.stalled and i < ALONE)
            if rest:
                options = rest
                default = default if default in rest else rest[0]
            else:
                self.stalled = None  # nothing else can step: it goes on
        schedule = self.schedule
        if d < len(schedule) and schedule[d] > 0:
            others = [i for i in options if i != default]
            if others:
                return others[(schedule[d] - 1) % len(others)]
        return default

    def jump(self, d: int, offered: int) -> int | None:
        n, self.offers = self.offers, self.offers + 1
        if self.jumps and self.jumps[0] <= n:
            self.jumps.pop(0)
            self.stalled = _JUST_JUMPED
            return offered
        return None
