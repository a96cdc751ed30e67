"""One world against a user's adapter: fresh stores, the recording env, the judge, the ops so far.

The judge sees every call the moment it happens (the recorder hands it over), each operation's
return, and every moment nothing is in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..model import APP, Actor, Pattern, Step
from ..model._steps import CLOCK
from ._clock import VirtualClock
from ._env import OUTSIDE, Effect, Env, Harness, build, run_operation
from ._findings import Finding
from ._judge import Judge
from ._replay import INITIAL, Op, replay_of_sequence
from ._run import Run


class World:
    def __init__(
        self,
        make: Callable[[Env], Any],
        pattern: Pattern,
        *,
        label: str = "the factory",
        clock: VirtualClock | None = None,
    ) -> None:
        self.harness: Harness = build(make, initial=INITIAL, label=label)
        self.judge = Judge(pattern, self.harness.adapter, peek=self.harness.cache.peek)
        self.harness.recorder.on_step = self._observe
        self.clock = clock
        self.ops: list[Op] = []  # in order: the replay
        self._counts = {"r": 0, "w": 0}
        self._values = 0

    @property
    def steps(self) -> list[Step]:
        return self.harness.recorder.steps

    @property
    def finding(self) -> Finding | None:
        return self.judge.finding

    @property
    def operations(self) -> int:
        return sum(kind != "t" for kind, _ in self.ops)

    @property
    def reached(self) -> set[str]:
        return self.judge.reached

    def _observe(self, index: int, step: Step, effect: Effect) -> None:
        self.judge.observe(index, step, effect)

    def name_op(self, kind: str, key: Any) -> tuple[str, Any]:
        """Name a new operation (r1, w1, ...) and, for a write, give it a value never written before."""
        self._counts[kind] += 1
        self.ops.append((kind, key))
        value = None
        if kind == "w":
            self._values += 1
            value = f"{key}.v{self._values}"
        return f"{kind}{self._counts[kind]}", value

    def start(self, op: str, kind: str, key: Any, value: Any) -> None:
        """The operation begins now (a read learns which values are already too old to return)."""
        self.judge.begin(op, kind, key, value)

    def run(self, kind: str, arg: Any) -> Finding | None:
        """Run one operation alone, or move the clock on; judged as it goes and at rest after."""
        if kind == "t":
            self.advance(arg)
            return self.finding
        op, value = self.name_op(kind, arg)
        self.start(op, kind, arg, value)
        h = self.harness
        h.recorder.op = op
        try:
            result = run_operation(*invocation(h.adapter, kind, arg, value))
        except Exception as e:  # the adapter's own failure is a finding, never the kit's crash
            return self.judge.keep(adapter_error(e, op, self.last_step_of(op)))
        finally:
            h.recorder.op = OUTSIDE
        self.end(op, kind, arg, value, result)
        if not self.judge.in_flight():
            self.judge.at_rest(h.cache.peek, op, len(self.steps) - 1)
        return self.finding

    def end(self, op: str, kind: str, key: Any, value: Any, result: Any) -> None:
        """The operation returned: its row in the table, and the judge's verdict on how it ended."""
        self.steps.append(return_step(op, kind, key, value, result))
        self.judge.finish(op, result, len(self.steps) - 1)

    def advance(self, seconds: int) -> None:
        """The kit moves the adapter's clock on; entries whose TTL ran out are gone."""
        if self.clock is None:
            raise RuntimeError("moving the clock needs a check's VirtualClock")
        self.ops.append(("t", seconds))
        self.clock.advance(seconds)
        self.judge.clock_moved()
        self.steps.append(Step(op=OUTSIDE, actor=Actor.CACHE, target=CLOCK, action="advance", key=None, value=seconds))
        for ck in self.harness.cache.expire():
            self.steps.append(Step(op=OUTSIDE, actor=Actor.CACHE, target="cache", action="expire", key=ck))
            self.judge.evicted(ck, expired=True)

    def last_step_of(self, op: str) -> int | None:
        return max((n for n, s in enumerate(self.steps) if s.op == op), default=None)

    def final_state(self) -> tuple[tuple[str, ...], ...]:
        return self.judge.final_state(self.harness.db.get, self.harness.cache.peek)

    def as_run(self, *, replay: str | None = None, columns: tuple[str, ...] = ()) -> Run:
        failed: tuple[str, ...] = ()
        if self.finding is not None and self.judge.incoherent(self.harness.cache.peek):
            failed = ("coherent-at-rest",)  # what the final state shows, whatever the finding
        return Run(
            finding=self.finding,
            also_failed=failed,
            steps=tuple(self.steps),
            replay=replay if replay is not None else replay_of_sequence(self.ops),
            operations=self.operations,
            reached=frozenset(self.reached),
            columns=columns,
            final_state=self.final_state(),
        )


def rerun_sequence(make: Callable, pattern: Pattern, ops: list[Op], *, label: str, clock: VirtualClock) -> Run:
    """Rerun a printed sequence exactly, stopping at its first finding."""
    world = World(make, pattern, label=label, clock=clock)
    for kind, arg in ops:
        if world.run(kind, arg):
            break
    return world.as_run()


def invocation(adapter: Any, kind: str, key: Any, value: Any) -> tuple:
    """The adapter call for an operation, as arguments for ``run_operation``."""
    return (adapter.read, key) if kind == "r" else (adapter.write, key, value)


def return_step(op: str, kind: str, key: Any, value: Any, result: Any) -> Step:
    """The row that marks an operation returning, so tables show every operation and its result."""
    action = "read" if kind == "r" else "write"
    return Step(
        op=op,
        actor=Actor.APP,
        target=APP,
        action=action,
        key=key,
        value=value,
        result=None if kind == "w" else result,
    )


def adapter_error(e: BaseException, op: str, culprit: int | None = None) -> Finding:
    text = str(e)
    message = f"{op} raised {type(e).__name__}" + (f": {text}" if text else "")
    return Finding(invariant="adapter-error", message=message, op=op, culprit=culprit)
