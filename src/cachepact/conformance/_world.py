"""One world against a user's adapter: fresh stores, the recording env, the judge, the ops so far."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ..model import APP, Actor, Pattern, Step, show
from ._env import OUTSIDE, Env, Harness, build, run_operation
from ._findings import Finding
from ._judge import Judge
from ._replay import INITIAL, KEYS, Op, replay_of_sequence
from ._run import Run


class World:
    def __init__(self, make: Callable[[Env], Any], pattern: Pattern, *, label: str = "the factory") -> None:
        self.harness: Harness = build(make, initial=INITIAL, label=label)
        self.judge = Judge(pattern, INITIAL, KEYS)
        self.ops: list[Op] = []  # in order: the replay
        self.finding: Finding | None = None
        self._counts = {"r": 0, "w": 0}
        self._values = 0

    @property
    def steps(self) -> list[Step]:
        return self.harness.recorder.steps

    @property
    def operations(self) -> int:
        return len(self.ops)

    @property
    def reached(self) -> set[str]:
        return self.judge.reached

    def begin(self, kind: str, key: Any) -> tuple[str, Any]:
        """Name a new operation (r1, w1, ...) and, for a write, give it a value never written before."""
        self._counts[kind] += 1
        self.ops.append((kind, key))
        value = None
        if kind == "w":
            self._values += 1
            value = f"v{self._values}"
        return f"{kind}{self._counts[kind]}", value

    def run(self, kind: str, key: Any) -> Finding | None:
        """Run one operation alone, then judge it and the state it left at rest."""
        op, value = self.begin(kind, key)
        h, judge = self.harness, self.judge
        floor = judge.floor(key)
        cached = any(h.cache.get(ck) is not None for ck in judge.cache_keys[key])
        first = len(self.steps)
        h.recorder.op = op
        try:
            result = run_operation(*invocation(h.adapter, kind, key, value))
        except Exception as e:  # the adapter's own failure is a finding, never the kit's crash
            return self._found(adapter_error(e, op))
        finally:
            h.recorder.op = OUTSIDE
        steps = [(i, self.steps[i]) for i in range(first, len(self.steps))]
        self.steps.append(return_step(op, kind, key, value, result))
        if kind == "r":
            found = judge.read(op, key, steps, result, floor=floor, cached_at_start=cached)
        else:
            found = judge.write(op, key, value, steps)
        return self._found(_at_return(found or judge.at_rest(h.db, h.cache, op), len(self.steps) - 1))

    def _found(self, finding: Finding | None) -> Finding | None:
        if finding is not None and self.finding is None:
            self.finding = finding
        return finding

    def final_state(self) -> tuple[tuple[str, str, str], ...]:
        """(key, DB value, cache entry) for every key the run knows, cache keys as the adapter named them."""
        rows = []
        for key in KEYS:
            cache_keys = sorted(self.judge.cache_keys[key], key=repr)
            entries = [(ck, self.harness.cache.get(ck)) for ck in cache_keys]
            shown = [
                f"{show(ck)}={show(v)}" if ck != key else show(v) for ck, v in entries if v is not None or ck == key
            ]
            rows.append((show(key), show(self.harness.db.get(key)), ", ".join(shown)))
        return tuple(rows)

    def as_run(self, *, replay: str | None = None, columns: tuple[str, ...] = ()) -> Run:
        return Run(
            finding=self.finding,
            steps=tuple(self.steps),
            replay=replay if replay is not None else replay_of_sequence(self.ops),
            operations=self.operations,
            reached=frozenset(self.reached),
            columns=columns,
            final_state=self.final_state(),
        )


def rerun_sequence(make: Callable, pattern: Pattern, ops: list[Op], *, label: str) -> Run:
    """Rerun a printed sequence exactly, stopping at its first finding."""
    world = World(make, pattern, label=label)
    for kind, key in ops:
        if world.run(kind, key):
            break
    return world.as_run()


def _at_return(finding: Finding | None, index: int) -> Finding | None:
    """A finding about how an operation ended points at its return row."""
    if finding is not None and finding.culprit is None:
        return attrs.evolve(finding, culprit=index)
    return finding


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
