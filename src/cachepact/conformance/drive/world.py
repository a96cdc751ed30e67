"""One world against a user's adapter: fresh stores, its app instances, the judge, the ops so far.

Every operation runs on a thread of its app instance under the scheduler (``_scheduler``), alone or
with others in flight (``_interleaved``); threads it starts are its helpers. The judge sees every
call the moment it happens (the recorder hands it over), each operation's return, and every moment
nothing is in flight.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable
from typing import Any

import attrs

from ..._argtypes import DEFAULT_STEP_TIMEOUT
from ...model import APP, Actor, Pattern, Step
from ...model._participants import FLUSH, READ, REFRESH, WRITE, OpKind
from ...model._steps import CLOCK
from ..judge.expiry import claim_ran_out, lease_ran_out
from ..judge.findings import Finding
from ..judge.judge import RAISED, Judge
from ..record.coroutines import as_worker
from ..record.env import OUTSIDE, Effect, Env, Harness, OpContext, build, run_operation
from ..record.servers import Servers
from ..record.sites import innermost, of_traceback
from ..runtime.clock import VirtualClock
from ..runtime.control import controlled
from ..runtime.helpers import real_join
from ..runtime.scheduler import Chooser, Participant, Scheduler
from ..runtime.session import Session
from ..runtime.signals import Pruned, ServerLost, Stalled, raised_unwinding
from ..runtime.threads import WRITER, AppThread, Deployment
from .replay import INITIAL, KEYS, RACE_HORIZON, TICK, Faults, Op, replay_of_sequence
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
    faults: int = 0  # calls that may fail in a run (``--faults``); 0: none ever does


def go_on(d: int, options: tuple[int, ...], default: int) -> int:
    """The chooser of an operation alone: the scheduler's default (the current thread goes on)."""
    return default


class World:
    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.session = setup.session
        # Every world runs in its session, which holds the process for it (a check holds it throughout).
        background = bool(setup.pattern.background)
        with self.session.claim(), controlled():  # locks the factory makes are the kit's
            # An adapter that draws from ``random`` (a jittered TTL, an early refresh) draws the same
            # numbers in every world, as Hypothesis seeds its examples: a replay is the run it names.
            random.seed(0)
            if background:
                self.session.daemons = []  # threads the factory starts are this world's daemons
            try:
                self.harness: Harness = build(
                    setup.make,
                    initial=INITIAL,
                    keys=KEYS,
                    label=setup.label,
                    instances=setup.instances,
                    servers=setup.servers,
                    session=self.session,
                )
            finally:
                started, self.session.daemons = self.session.daemons or [], None
        adapters = self.harness.adapters
        if not background and any(a.flush is not None for a in adapters):
            self.session.unused_flush = True
        self.judge = Judge(
            setup.pattern,
            adapters[0],
            peek=self.harness.cache.peek,
            session=self.session,
            others=tuple(adapters[1:]),
            faults=bool(setup.faults),
        )
        self.harness.recorder.on_step = self._observe
        self.clock = setup.clock
        self.deployment = Deployment(setup.instances, self.session)
        self.ops: list[Op] = []  # in order: the replay
        self.instance_of: dict[str, int] = {}  # operation -> the app instance it ran on
        self.uncontrolled = 0  # steps a thread blocked out of the kit's sight (taken over)
        self._counts = {READ: 0, WRITE: 0}
        self._values = 0
        # Faults (``--faults``): the run's plan (operation number -> the call of it that fails), each
        # operation's number and how many calls it has made, and the operations a fault reached.
        self.fault_plan: Faults = {}
        self._number: dict[str, int] = {}
        self._calls_made: dict[str, int] = {}
        self.faulted: set[str] = set()
        self.fired = 0  # calls failed so far in this world's runs (at most ``setup.faults``)
        self._failed_ops: set[int] = set()  # the numbers of the operations a fault reached
        if setup.faults:
            self.harness.recorder.fault = self._fails
            self.harness.recorder.unfault = self._never_ran
        # Operations that returned while work they handed to other threads still runs: judged as
        # ended only when the last of it is done (op -> its result and its return row).
        self.returned: dict[str, tuple[Any, int]] = {}
        self.raised_rows: set[str] = set()  # operations that raised, with their row in the steps
        self.calls: dict[str, str] = {}  # op -> the adapter call it is, as tables show it
        # Background work (refresh-ahead, write-behind): what a thread an operation of each kind
        # starts is (a read's: a refresh; a write's: a flush), and the workers named so far.
        pattern = setup.pattern
        self.worker_kinds: dict[str, OpKind] = {}
        if pattern.background_named("refresh") is not None:
            self.worker_kinds[READ] = REFRESH
        if pattern.background_named("flush") is not None:
            self.worker_kinds[WRITE] = FLUSH
        self._worker_counts: dict[OpKind, int] = {}
        # The factory's threads (a flusher draining a queue, a periodic loop), run by each scheduler
        # of this world in turn: not yet started, then their participants.
        self._new_daemons = [(t, self._daemon_context(instance)) for t, instance in started]
        self.daemons: list[Participant] = []

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
        if step.ttl is not None:
            self.session.expiring = True  # the check's races draw clock jumps (``RaceClock``)
            shortest = self.session.shortest_ttl
            if step.ttl > 0 and (shortest is None or step.ttl < shortest):
                self.session.shortest_ttl = step.ttl
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
        self._number[name] = len(self._number)
        self.instance_of[name] = instance
        self.calls[name] = f"read({key})" if kind == READ else f"write({key}, {value})"
        return name, value

    def _fails(self, op: str) -> bool | None:
        """Whether ``op``'s next call to the stores fails, as the run's plan says (a helper thread's
        calls count as its operation's; background workers' never fail)."""
        n = self._number.get(op)
        fault = self.fault_plan.get(n) if n is not None else None
        if fault is None:
            return None
        made = self._calls_made[op] = self._calls_made.get(op, 0) + 1
        hit = made == fault.call or (fault.outage and made > fault.call)
        if not hit or self.fired >= self.setup.faults:
            return None
        self.fired += 1
        self.faulted.add(op)
        self._failed_ops.add(n)
        return fault.took_effect

    def _never_ran(self, op: str) -> None:
        if self._calls_made.get(op):
            self._calls_made[op] -= 1

    @property
    def faults_used(self) -> Faults:
        """The plan's faults that fired: what the replay string names."""
        return {n: f for n, f in self.fault_plan.items() if n in self._failed_ops}

    def start(self, op: str, kind: str, key: Any, value: Any) -> None:
        """The operation begins now (a read learns which values are already too old to return)."""
        self.judge.begin(op, kind, key, value)

    def context(self, op: str) -> OpContext:
        return OpContext(op, self.harness.attributions[self.instance_of[op]])

    def body(self, op: str, kind: str, key: Any, value: Any) -> Callable[[], None]:
        """What runs on the operation's thread: the adapter call, then its return, judged."""
        adapter = self.harness.adapters[self.instance_of[op]]
        attribution = self.harness.attributions[self.instance_of[op]]
        recorder = self.harness.recorder

        def returned(result: Any) -> None:
            with recorder.lock:
                self.steps.append(return_step(op, kind, key, value, result))
                self.returned[op] = (result, len(self.steps) - 1)
                self.judge.returned(op)  # the caller's view: fresh-read counts from the return

        def left_running(tasks: list) -> None:
            # Tasks it left running when it returned are background work where its kind has some
            # (a refresh a read started in refresh-ahead), as threads it starts are.
            for task in tasks:
                worker = self._new_worker(self.context(op))
                if worker is not None:
                    as_worker(task, worker, functools.partial(self._worker_done, worker.op))

        def run() -> None:
            try:
                run_operation(
                    *invocation(adapter, kind, key, value),
                    attribution=attribution,
                    returned=returned,
                    left_running=left_running if self.worker_kinds else None,
                )
            except Pruned:
                raise
            except Exception as e:
                if raised_unwinding(e):
                    raise Pruned from None
                with recorder.lock:
                    if op in self.faulted and op not in self.returned:
                        # A fault reached it and it raised (the injected error, or its own in its
                        # place): the caller saw an error, which is allowed. A write that raised is
                        # indeterminate: its put may or may not have landed.
                        self.steps.append(raise_step(op, kind, key, value, e))
                        self.returned[op] = (RAISED, len(self.steps) - 1)
                        return
                    self.judge.keep(adapter_error(e, op, self._raised_row(op, kind, key, value, e)))
                return
            except BaseException as e:  # the adapter's own failure is a finding, never the kit's crash
                if raised_unwinding(e):
                    raise Pruned from None
                with recorder.lock:
                    self.judge.keep(adapter_error(e, op, self._raised_row(op, kind, key, value, e)))
                return

        return run

    def scheduler(self, choose: Chooser, on_finish: Callable | None = None, *, jumps: int = 0) -> Scheduler:
        """A scheduler for this world's operations; with ``jumps`` > 0, one that may move the clock on
        at a scheduling point, at most that many times (``RaceClock``)."""

        def finished(p: Participant) -> None:
            if p.context.op in self.judge.workers:
                with self.harness.recorder.lock:
                    self.judge.worker_idle(p.context.op)  # a refresh or flush thread is done
            self._settle(scheduler, p.context.op)
            if on_finish is not None:
                on_finish(p)

        scheduler = Scheduler(
            choose,
            session=self.session,
            step_timeout=self.setup.step_timeout,
            contexts=self.harness.recorder.threads,
            helper_context=self._helper_context,
            on_finish=finished,
            clock=RaceClock(self, jumps) if jumps and self.clock is not None else None,
        )
        if self.clock is not None:
            scheduler.slept = self._daemon_tick
        if self.worker_kinds:
            scheduler.spawns = self._spawns
        if self._new_daemons or self.daemons:
            self.daemons = scheduler.keep(self.daemons, self._new_daemons)
            self._new_daemons = []
            scheduler.work_left = self.judge.refinement.dirty
            scheduler.tick = self._daemon_tick
            scheduler.on_quiet = self._daemons_idle
        return scheduler

    def _daemon_context(self, instance: int) -> OpContext:
        """A thread app instance ``instance``'s factory started works for no operation: a worker of
        the pattern's background work (a flush where writes are flushed, else a refresh), the Cache's."""
        kind = FLUSH if FLUSH in self.worker_kinds.values() else REFRESH
        n = self._worker_counts[kind] = self._worker_counts.get(kind, 0) + 1
        name = f"{kind.value}{n}"
        self.judge.worker(name, kind)
        self.instance_of[name] = instance
        return OpContext(name, self.harness.attributions[instance], Actor.CACHE)

    def _daemon_tick(self, seconds: float) -> None:
        """A periodic daemon is woken for work left, or every participant waits and only time ends a
        wait: the wait's time passes on the virtual clock (whole seconds, at least one)."""
        if self.clock is not None:
            with self.harness.recorder.lock:
                self.move_clock(max(1, math.ceil(seconds)))

    def _daemons_idle(self) -> None:
        """Nothing can step and no operation is in flight: every daemon is idle, its unit of work over."""
        with self.harness.recorder.lock:
            for p in self.daemons:
                self.judge.worker_idle(p.context.op)

    @property
    def flushes(self) -> list[int]:
        """The app instances whose adapter has a ``flush=`` (patterns with background work only)."""
        if not self.setup.pattern.background:
            return []
        return [n for n, a in enumerate(self.harness.adapters) if a.flush is not None]

    def _flush(self, scheduler: Scheduler, instance: int) -> Participant:
        """App instance ``instance``'s ``flush()``, on a worker of its own: background work the kit
        runs on demand (every operation is done; the system is judged at rest after it)."""
        kind = FLUSH if FLUSH in self.worker_kinds.values() else REFRESH
        n = self._worker_counts[kind] = self._worker_counts.get(kind, 0) + 1
        name = f"{kind.value}{n}"
        with self.harness.recorder.lock:
            self.judge.worker(name, kind)
            self.judge.worker_busy(name)
        adapter = self.harness.adapters[instance]
        self.instance_of[name] = instance

        def body() -> None:
            try:
                run_operation(adapter.flush)
            except Pruned:
                raise
            except BaseException as e:  # the adapter's own failure is a finding
                if raised_unwinding(e):
                    raise Pruned from None
                with self.harness.recorder.lock:
                    self.judge.keep(adapter_error(e, name, self.last_step_of(name)))

        context = OpContext(name, self.harness.attributions[instance], Actor.CACHE)
        return scheduler.add(-1, body, self.deployment.thread(instance, WRITER), context)

    def drain(self) -> None:
        """After a concurrent run: the adapters' ``flush=``, alone, then the system judged at rest."""
        if not self.flushes or self.finding is not None:
            return
        scheduler = self.scheduler(go_on)
        to_flush = list(self.flushes)

        def next_op() -> Any:
            return self._flush(scheduler, to_flush.pop(0)) if to_flush else None

        first = next_op()
        if self.perform(scheduler, first, next_op) and self.finding is None and not self.judge.in_flight():
            self.judge.at_rest(
                self.harness.cache.peek,
                first.context.op,
                len(self.steps) - 1,
                steps=self.steps,
                expiring=self.harness.cache.ttl_bounds,
            )

    def settle(self) -> None:
        """The run is over, its background work idle: a dirty value left now is never flushed."""
        if self.finding is None and self.setup.pattern.background_named("flush") is not None:
            with self.harness.recorder.lock:
                self.judge.unflushed(len(self.steps) - 1)

    def _spawns(self, context: OpContext) -> bool:
        return context.op not in self.judge.workers and self.judge.kind_of(context.op) in self.worker_kinds

    def _helper_context(self, starter: OpContext) -> OpContext:
        """A thread an operation starts works for it, except where the pattern has background work of
        that operation's kind: a thread a read starts in refresh-ahead is a refresh, one a write
        starts in write-behind a flush (a ``Timer`` per write). That is a worker of its own (``rf1``,
        ``fl1``), the Cache's: the operation returns without it, and nothing is at rest until it is
        done."""
        return self._new_worker(starter) or helper_context(starter)

    def _new_worker(self, starter: OpContext) -> OpContext | None:
        """A worker of the background work of ``starter``'s kind, busy from now; None where that kind
        has none (or the starter is a worker itself: what it starts is its own work)."""
        kind = self.worker_kinds.get(self.judge.kind_of(starter.op)) if starter.op not in self.judge.workers else None
        if kind is None:
            return None
        n = self._worker_counts[kind] = self._worker_counts.get(kind, 0) + 1
        name = f"{kind.value}{n}"
        with self.harness.recorder.lock:
            self.judge.worker(name, kind)
            self.judge.worker_busy(name)
        if starter.op in self.instance_of:  # its process is its starter's
            self.instance_of[name] = self.instance_of[starter.op]
        return OpContext(name, starter.attribution, Actor.CACHE)

    def _worker_done(self, name: str) -> None:
        """A task that was a worker is done (a thread's end is the scheduler's to tell: ``finished``)."""
        with self.harness.recorder.lock:
            self.judge.worker_idle(name)

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
        scheduler.one_at_a_time = True

        flushed: set[str] = set()
        to_flush: list[int] = []

        def next_op() -> Any:
            if last and not self.judge.in_flight() and self.finding is None:
                if self.flushes and last[-1] not in flushed:  # each adapter's flush= drains first
                    flushed.add(last[-1])
                    to_flush[:] = self.flushes
                if to_flush:
                    return self._flush(scheduler, to_flush.pop(0))
                self.judge.at_rest(
                    self.harness.cache.peek, last[-1], len(self.steps) - 1, expiring=self.harness.cache.ttl_bounds
                )
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
        if first is not None and self.perform(scheduler, first, next_op):
            self.settle()
        return self.finding

    def close(self) -> None:
        """The world is done with: its app threads and daemons end."""
        if self.daemons:
            Scheduler.release(self.daemons)
            for p in self.daemons:  # their unwinding (a lock released) is this world's, not the next one's
                if p.thread is not None and p.thread.is_alive():
                    real_join(p.thread, self.setup.step_timeout)
        self.deployment.close()
        self.harness.redis.close_twins()

    def advance(self, seconds: int) -> None:
        """The kit moves the adapter's clock on between operations; entries whose TTL ran out are gone."""
        if self.clock is None:
            raise RuntimeError("moving the clock needs a check's VirtualClock")
        self.ops.append(Op(TICK, seconds))
        self.move_clock(seconds)

    def move_clock(self, seconds: int) -> None:
        """The clock moves on ``seconds``, between operations or inside a race (``RaceClock``): the
        judge is told, a row says so, and every entry whose TTL ran out is gone (a row each)."""
        assert self.clock is not None
        self.clock.advance(seconds)
        self.judge.clock_moved()
        self.steps.append(Step(op=OUTSIDE, actor=Actor.CACHE, target=CLOCK, action="advance", key=None, value=seconds))
        lease_for = getattr(self.harness.cache, "lease_for", None)
        for ck in self.harness.cache.expire():
            self.steps.append(Step(op=OUTSIDE, actor=Actor.CACHE, target="cache", action="expire", key=ck))
            claim_ran_out(self.judge, ck)  # before the judge forgets whose claim it was
            self.judge.evicted(ck, expired=True)
            guarded = lease_for(ck) if lease_for is not None else None
            if guarded is not None:  # a lease ran out under its reader: its token is void now
                lease_ran_out(self.judge, guarded)

    def _raised_row(self, op: str, kind: str, key: Any, value: Any, e: BaseException) -> int | None:
        """The row of an operation that raised (the finding's culprit): "read(k1) raised RuntimeError",
        where it returned nothing; one that raised after its return (a task it left) has its row."""
        if op in self.returned:
            return self.last_step_of(op)
        self.steps.append(raise_step(op, kind, key, value, e))
        self.raised_rows.add(op)
        return len(self.steps) - 1

    def last_step_of(self, op: str) -> int | None:
        return max((n for n, s in enumerate(self.steps) if s.op == op), default=None)

    def final_state(self) -> tuple[tuple[str, ...], ...]:
        return self.judge.final_state(self.harness.db.get, self.harness.cache.peek)

    def as_run(self, *, replay: str | None = None, columns: tuple[str, ...] = ()) -> Run:
        failed: tuple[str, ...] = ()
        stale = self.judge.incoherent(self.harness.cache.peek) if self.finding is not None else []
        # An entry a failed invalidation left is no-stale-after-failed-invalidate's, and a poisoned fill
        # no-poisoned-fill's: neither is coherent-at-rest's too.
        poisoned = self.finding is not None and self.finding.invariant == "no-poisoned-fill"
        if not poisoned and any(k not in self.judge.failed_invalidation for _, k, _, _ in stale):
            failed = ("coherent-at-rest",)  # what the final state shows, whatever the finding
        return Run(
            finding=self.finding,
            also_failed=failed,
            steps=tuple(self.steps),
            replay=replay if replay is not None else replay_of_sequence(self.ops, self.faults_used),
            operations=self.operations,
            reached=frozenset(self.reached),
            columns=columns,
            final_state=self.final_state(),
            instances=tuple(self.instance_of.items()),
            uncontrolled=self.uncontrolled,
        )


class RaceClock:
    """Time inside a race: the scheduler's clock hook (``runtime.scheduler.ClockHook``).

    At a scheduling point it offers a jump when something in the stores will expire within
    ``RACE_HORIZON`` seconds (an entry's TTL, a lock's timeout, a lease's expiry, read from the
    stores themselves), sized just past the soonest of them (its seconds left, rounded up, plus one:
    the sequential driver's 31 for a TTL of 30), so each jump lets the next expiry happen; at most
    ``budget`` jumps a run. A pause longer than the horizon inside one operation is an outage, not
    a race: longer TTLs run out between operations (the sequential driver's 301 s, a day). A real
    Redis server expires keys on its own clock, which the kit cannot move: its keys offer no jump.
    """

    def __init__(self, world: World, budget: int) -> None:
        self.world = world
        self.left = budget

    def offer(self) -> int | None:
        if self.left <= 0:
            return None
        soon = [left for _, left in self.world.harness.cache.expiring() if left <= RACE_HORIZON]
        if not soon:
            return None
        self.world.session.expiring = True  # the check's adapter sets short TTLs: its races draw jumps
        return math.ceil(min(soon)) + 1

    def jump(self, seconds: int) -> None:
        self.left -= 1
        with self.world.harness.recorder.lock:
            self.world.move_clock(seconds)

    def state(self) -> tuple:
        """What the clock can still do, for the exhaustive explorer's state key: the jumps left, and
        each expiring key's whole seconds left (two states that differ only there differ once time
        moves)."""
        if self.left <= 0:
            return ()
        left = sorted((repr(k), math.ceil(t)) for k, t in self.world.harness.cache.expiring())
        return (self.left, tuple(left))


def helper_context(starter: OpContext) -> OpContext:
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


def rerun_sequence(setup: Setup, ops: list[Op], faults: Faults | None = None) -> Run:
    """Rerun a printed sequence exactly (with the calls that fail in it), stopping at its first finding."""
    world = World(setup)
    world.fault_plan = dict(faults or {})
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


def raise_step(op: str, kind: str, key: Any, value: Any, error: BaseException) -> Step:
    """The row of an operation that raised (once a fault reached it, ``--faults``, or on its own)."""
    action = "read" if kind == READ else "write"
    name = type(error).__name__
    return Step(op=op, actor=Actor.APP, target=APP, action=action, key=key, value=value, fault="raised", error=name)


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
