"""One world against a user's adapter: fresh stores, its app instances, the judge, the ops so far.

Every operation runs on a thread of its app instance under the scheduler (``_scheduler``), alone or
with others in flight (``_interleaved``); threads it starts are its helpers. The judge sees every
call the moment it happens (the recorder hands it over), each operation's return, and every moment
nothing is in flight.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import attrs

from ..._argtypes import DEFAULT_STEP_TIMEOUT
from ...model import APP, Actor, Pattern, Step
from ...model._participants import READ, WRITE
from ...model._steps import CLOCK
from ..judge.findings import Finding
from ..judge.judge import Judge
from ..record.env import OUTSIDE, Effect, Env, Harness, OpContext, build, run_operation
from ..record.servers import Servers
from ..record.sites import innermost, of_traceback
from ..runtime.clock import VirtualClock
from ..runtime.control import controlled
from ..runtime.scheduler import Chooser, Participant, Scheduler
from ..runtime.session import Session
from ..runtime.signals import Pruned, ServerLost, Stalled
from ..runtime.threads import AppThread, Deployment
from .replay import INITIAL, TICK, Op, replay_of_sequence
from .run import Run


@attrs.frozen(kw_only=True)
class Setup:
    """What every world of one check is built from: the factory, the pattern, how reports name the
    factory, the virtual clock, the app instances each world runs, the step timeout, the stores, and
    the check's ``session`` (its mutable state; a fresh one for worlds run outside ``check``)."""

    make: Callable[[Env], Any]
    pattern: Pattern
    label: str = "the factory"
    clock: VirtualClock | None = None
    instances: int = 1
    step_timeout: float = DEFAULT_STEP_TIMEOUT
    servers: Servers = attrs.field(factory=Servers)  # where env's stores live (the caller closes them)
    session: Session = attrs.field(factory=Session, repr=False)


def go_on(d: int, options: tuple[int, ...], default: int) -> int:
    """The chooser of an operation alone: the scheduler's default (the current thread goes on)."""
    return default


class World:
    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.session = setup.session
        # Every world runs in its session, which holds the process for it (a check holds it throughout).
        with self.session.claim(), controlled():  # locks the factory makes are the kit's
            # An adapter that draws from ``random`` (a jittered TTL, an early refresh) draws the same
            # numbers in every world, as Hypothesis seeds its examples: a replay is the run it names.
            random.seed(0)
            self.harness: Harness = build(
                setup.make,
                initial=INITIAL,
                label=setup.label,
                instances=setup.instances,
                servers=setup.servers,
                session=self.session,
            )
        adapters = self.harness.adapters
        self.judge = Judge(
            setup.pattern, adapters[0], peek=self.harness.cache.peek, session=self.session, others=tuple(adapters[1:])
        )
        self.harness.recorder.on_step = self._observe
        self.clock = setup.clock
        self.deployment = Deployment(setup.instances, self.session)
        self.ops: list[Op] = []  # in order: the replay
        self.instance_of: dict[str, int] = {}  # operation -> the app instance it ran on
        self.uncontrolled = 0  # steps a thread blocked out of the kit's sight (taken over)
        self._counts = {READ: 0, WRITE: 0}
        self._values = 0
        # Operations that returned while work they handed to other threads still runs: judged as
        # ended only when the last of it is done (op -> its result and its return row).
        self.returned: dict[str, tuple[Any, int]] = {}
        self.calls: dict[str, str] = {}  # op -> the adapter call it is, as tables show it

    @property
    def steps(self) -> list[Step]:
        return self.harness.recorder.steps

    @property
    def finding(self) -> Finding | None:
        return self.judge.finding

    @property
    def operations(self) -> int:
        return sum(kind != TICK for kind, _, _ in self.ops)

    @property
    def reached(self) -> set[str]:
        return self.judge.reached

    def _observe(self, index: int, step: Step, effect: Effect) -> None:
        self.judge.observe(index, step, effect)

    def name_op(self, kind: str, key: Any, instance: int = 0) -> tuple[str, Any]:
        """Name a new operation (r1, w1, ...) and, for a write, give it a value never written before."""
        self._counts[kind] += 1
        self.ops.append(Op(kind, key, instance))
        value = None
        if kind == WRITE:
            self._values += 1
            value = f"{key}.v{self._values}"
        name = f"{kind}{self._counts[kind]}"
        self.instance_of[name] = instance
        self.calls[name] = f"read({key})" if kind == READ else f"write({key}, {value})"
        return name, value

    def start(self, op: str, kind: str, key: Any, value: Any) -> None:
        """The operation begins now (a read learns which values are already too old to return)."""
        self.judge.begin(op, kind, key, value)

    def context(self, op: str) -> OpContext:
        return OpContext(op, self.harness.attributions[self.instance_of[op]])

    def body(self, op: str, kind: str, key: Any, value: Any) -> Callable[[], None]:
        """What runs on the operation's thread: the adapter call, then its return, judged."""
        adapter = self.harness.adapters[self.instance_of[op]]
        recorder = self.harness.recorder

        def run() -> None:
            try:
                result = run_operation(*invocation(adapter, kind, key, value))
            except Pruned:
                raise
            except BaseException as e:  # the adapter's own failure is a finding, never the kit's crash
                with recorder.lock:
                    self.judge.keep(adapter_error(e, op, self.last_step_of(op)))
                return
            with recorder.lock:
                self.steps.append(return_step(op, kind, key, value, result))
                self.returned[op] = (result, len(self.steps) - 1)

        return run

    def scheduler(self, choose: Chooser, on_finish: Callable | None = None) -> Scheduler:
        def finished(p: Participant) -> None:
            self._settle(scheduler, p.context.op)
            if on_finish is not None:
                on_finish(p)

        scheduler = Scheduler(
            choose,
            session=self.session,
            step_timeout=self.setup.step_timeout,
            contexts=self.harness.recorder.threads,
            helper_context=_helper_context,
            on_finish=finished,
        )
        return scheduler

    def _settle(self, scheduler: Scheduler, op: str) -> None:
        """A thread of ``op`` is done: when it was the last (its helpers included) and the operation
        has returned, the operation ends, so a fill its background thread makes is still its own."""
        if op not in self.returned or scheduler.live_of[op]:
            return
        result, index = self.returned.pop(op)
        with self.harness.recorder.lock:
            self.judge.finish(op, result, index)

    def perform(self, scheduler: Scheduler, first: Any = None, next_op: Callable | None = None) -> bool:
        """Run what ``scheduler`` was given (or the sequence from ``first``), controlled; False when it
        stalled (its finding is kept)."""
        recorder = self.harness.recorder
        recorder.running = True
        try:
            with self.session.claim(), controlled():
                if first is not None and next_op is not None:
                    scheduler.run_sequence(first, next_op)
                else:
                    scheduler.run()
        except Stalled as e:
            self._strand(scheduler)
            if self.session.refused is not None:  # what it sent the kit refused: that, not a timeout
                raise ServerLost(self.session.refused) from None
            first = len(self.steps)
            for op in e.ops:  # a row for each operation that never returned, so the table shows it
                if op in self.judge.op_index and op not in self.returned:
                    self.steps.append(blocked_step(op, self.calls[op]))
            self.judge.keep(stalled(e, self.setup.step_timeout, first if first < len(self.steps) else first - 1))
            return False
        finally:
            recorder.running = False
            self.uncontrolled += scheduler.uncontrolled
        if self.harness.recorder.lost is not None:
            raise ServerLost(self.harness.recorder.lost)
        if self.judge.broken is not None:  # the adapter's decode or cache_key is unusable as written
            raise self.judge.broken
        if self.session.refused is not None:  # it sent what the kit cannot record, even if it swallowed the refusal
            raise ServerLost(self.session.refused)
        self.setup.servers.check_alive()
        if recorder.strays and self.finding is None:
            self.judge.keep(
                Finding(
                    invariant="adapter-error",
                    op=recorder.strays[0].op,
                    culprit=self.steps.index(recorder.strays[0]),
                    message="a thread the kit does not run called env (one started in make(env), or before the "
                    "check); every call must come from read or write, or a thread they start",
                )
            )
        return True

    def _strand(self, scheduler: Scheduler) -> None:
        """Threads left blocked out of sight are never given work again, nor scheduled: if they wake,
        they run on as any thread the kit does not run."""
        for p in scheduler.stranded():
            if p.ident is not None:
                self.session.scheduled.pop(p.ident, None)
            if isinstance(p.thread, AppThread):
                p.thread.stranded = True

    def run(self, kind: str, arg: Any, instance: int = 0) -> Finding | None:
        """Run one operation alone on ``instance``, or move the clock on; judged as it goes and at rest after."""
        return self.run_sequence([(kind, arg, instance)])

    def run_sequence(self, ops: list[Op] | tuple[Op, ...]) -> Finding | None:
        """Run ``ops`` one at a time, each on its app instance's thread, judging each as it goes and at
        rest after it (and its helpers) end; stop at the first finding."""
        pending = iter(ops)
        last: list[str] = []
        scheduler = self.scheduler(go_on)

        def next_op() -> Any:
            if last and not self.judge.in_flight() and self.finding is None:
                self.judge.at_rest(self.harness.cache.peek, last[-1], len(self.steps) - 1)
            for kind, arg, instance in pending:
                if self.finding is not None:
                    return None
                if kind == TICK:
                    self.advance(arg)
                    continue
                op, value = self.name_op(kind, arg, instance)
                self.start(op, kind, arg, value)
                last.append(op)
                return scheduler.add(
                    len(last) - 1,
                    self.body(op, kind, arg, value),
                    self.deployment.next_thread(instance, writes=kind == WRITE),
                    self.context(op),
                )
            return None

        first = next_op()
        if first is not None:
            self.perform(scheduler, first, next_op)
        return self.finding

    def close(self) -> None:
        """The world is done with: its app threads end."""
        self.deployment.close()

    def advance(self, seconds: int) -> None:
        """The kit moves the adapter's clock on; entries whose TTL ran out are gone."""
        if self.clock is None:
            raise RuntimeError("moving the clock needs a check's VirtualClock")
        self.ops.append(Op(TICK, seconds))
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
            instances=tuple(self.instance_of.items()),
            uncontrolled=self.uncontrolled,
        )


def _helper_context(starter: OpContext) -> OpContext:
    """A thread an operation starts works for the same operation; its calls are the Cache's when the
    code that started it was (a library handing its loader to a thread pool)."""
    inherited = starter.inherited if starter.inherited is Actor.CACHE else starter.attribution.actor(1)
    return OpContext(starter.op, starter.attribution, inherited)


def stalled(e: Stalled, step_timeout: float, last: int) -> Finding:
    ops = " and ".join(e.ops) or "an operation"
    if e.kind == "deadlock":
        message = f"{ops} cannot take a next step: {e}"
    elif e.kind == "stuck":  # blocked for good, and the kit can tell without waiting the timeout out
        message = f"{ops} would wait forever: {e}"
    else:
        message = f"{ops} made no progress for {step_timeout:g} s (--step-timeout): {e}"
    op = e.ops[0] if e.ops else OUTSIDE
    invariant = "deadlock" if e.kind == "deadlock" else "timeout"
    hint = OUT_OF_SIGHT if e.kind == "timeout" else ""
    return Finding(invariant=invariant, message=message, op=op, culprit=last if last >= 0 else None, hint=hint)


OUT_OF_SIGHT = (
    "it waits where the kit cannot see (a lock or event made before the check, such as at import, "
    "I/O, a C call): if it would finish, raise --step-timeout; if it is a lock or event, make it in "
    "make(env) so the kit schedules around it"
)


def rerun_sequence(setup: Setup, ops: list[Op]) -> Run:
    """Rerun a printed sequence exactly, stopping at its first finding."""
    world = World(setup)
    try:
        for kind, arg, instance in ops:
            if world.run(kind, arg, instance):
                break
        return world.as_run()
    finally:
        world.close()


def invocation(adapter: Any, kind: str, key: Any, value: Any) -> tuple:
    """The adapter call for an operation, as arguments for ``run_operation``."""
    return (adapter.read, key) if kind == READ else (adapter.write, key, value)


def return_step(op: str, kind: str, key: Any, value: Any, result: Any) -> Step:
    """The row that marks an operation returning, so tables show every operation and its result."""
    action = "read" if kind == READ else "write"
    return Step(
        op=op,
        actor=Actor.APP,
        target=APP,
        action=action,
        key=key,
        value=value,
        result=None if kind == WRITE else result,
    )


def blocked_step(op: str, call: str) -> Step:
    """The row of an operation that never returned: a hang or a deadlock."""
    return Step(op=op, actor=Actor.APP, target=APP, action="blocked", key=None, value=call)


def adapter_error(e: BaseException, op: str, culprit: int | None = None) -> Finding:
    text = str(e)
    message = f"{op} raised {type(e).__name__}" + (f": {text}" if text else "") + _raised_at(e)
    return Finding(invariant="adapter-error", message=message, op=op, culprit=culprit)


def _raised_at(e: BaseException) -> str:
    """Where the adapter's code raised: its innermost line in the traceback."""
    where = innermost(of_traceback(e.__traceback__))
    return f", at {where}" if where else ""
