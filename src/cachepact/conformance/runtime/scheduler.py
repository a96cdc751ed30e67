"""The controlled scheduler: the threads working for operations, exactly one running at a time.

A participant is a thread working for an operation: the operation's own (on an app instance's
thread) or a helper it started (``_helpers``). A participant parks before each call on ``env.db`` /
``env.cache`` and before it blocks on a kit primitive; the scheduler then picks which participant
takes its next step. The choices are data (indices into the participants, in the order they
joined), so the same choices replay the same run. Only real choices are recorded: a moment with one
participant able to step is no choice.

The decision is made by the thread that holds control (the baton): the participant that just
parked, blocked or finished, or the main thread at the start and when something is stuck. Going
on with the same participant then costs no thread switch, and switching costs one. The main thread
watches: for the end, for a participant blocked where the kit cannot see, and for a run that stops
making progress.

A wait with a timeout (``Event.wait(5)``, ``sleep``) may end at any moment: the scheduler may let it
time out early, as a slow peer would make it, but goes on with others while any can step. Blocking
the kit cannot see (a lock made before the run, I/O) is found by the thread's CPU clock standing
still: the participant is left running uncontrolled and another is scheduled. A run that makes no
progress for ``step_timeout`` seconds ends with the finding ``timeout``.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..._argtypes import DEFAULT_STEP_TIMEOUT
from ..record.sites import innermost, of_frame
from . import primitives
from .primitives import RealRLock
from .session import Session
from .signals import Pruned, Stalled

ABORT = -3  # a chooser's answer: this run is redundant, unwind every participant now
POLL = 0.002  # how often the main thread looks at a run with more than one participant
IDLE_POLLS = 2  # a running thread that used no CPU over this many polls is blocked out of sight
IDLE_WALL = 0.05  # the same, where threads have no CPU clock: this long without progress
MAX_FORCED_TIMEOUTS = 1000  # timed waits ended with nothing else to run, before it counts as a hang
ALONE = 100  # a chooser's option ALONE + i: participant i ends its timed waits early, alone (see _decide)
MAX_SPIN = 64  # timed waits ended early in a row alone, before that branch is cut (check() says so)
MAX_DRAIN = 3  # with every operation done and work left, how often a periodic daemon's wait is ended

# A chooser: (decision number, the participants that may step, the default) -> participant.
# A chooser may also have ``jump(decision number, seconds offered) -> seconds | None | ABORT``: asked
# at a scheduling point where the run's clock hook offers a jump, whether to move the clock on first.
Chooser = Callable[[int, tuple[int, ...], int], int]


class ClockHook(Protocol):
    """What the scheduler may do with the run's virtual clock at a scheduling point."""

    def offer(self) -> int | None:
        """Seconds of a jump worth making now (just past the soonest expiry), or None."""

    def jump(self, seconds: int) -> None:
        """Move the clock on: what expired is gone, and the judge is told."""


def _machine_busy() -> bool:
    """More runnable work than cores, on average over the last minute (where the OS says)."""
    try:
        return os.getloadavg()[0] >= (os.cpu_count() or 1)
    except OSError:
        return False


def _cpu_clock(ident: int) -> int | None:
    try:
        return time.pthread_getcpuclockid(ident)
    except (AttributeError, OSError):
        return None  # a platform without per-thread CPU clocks: wall time decides


def _cpu_time(clock: int | None) -> float | None:
    if clock is None:
        return None
    try:
        return time.clock_gettime(clock)
    except OSError:
        return None


def _runnable(native: int | None) -> bool:
    """Whether the OS has thread ``native`` runnable (Linux's ``R``): waiting for a CPU, not blocked.
    False where the OS cannot say."""
    if native is None:
        return False
    try:
        with open(f"/proc/self/task/{native}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == b"R"


class Participant:
    """One thread working for an operation, as the scheduler sees it."""

    __slots__ = (
        "alone",
        "atomic",
        "body",
        "clock",
        "context",
        "cpu",
        "daemon",
        "drained",
        "first",
        "go",
        "helper",
        "ident",
        "idle",
        "index",
        "killed",
        "loop_len",
        "native",
        "op",
        "parks",
        "pending",
        "predicate",
        "scheduler",
        "since_wait",
        "state",
        "thread",
        "timed",
        "timed_out",
        "timeout",
        "unstarted",
        "waiting",
        "woke_early",
        "woken",
    )

    def __init__(self, scheduler: Scheduler, index: int, op: int, context: Any, *, helper: bool) -> None:
        self.scheduler = scheduler
        self.index = index
        self.op = op  # which operation it works for
        self.context = context  # the recorder's view of it: the operation's name, attribution
        self.helper = helper
        self.state = "new"  # new | parked | blocked | running | uncontrolled | done
        self.pending: tuple = ("start",)
        self.first = True
        # An operation in flight whose thread is given its job only when it is first chosen: until
        # then it is parked at its start, where it has touched nothing (``run``).
        self.unstarted = False
        self.parks = 0  # scheduling points passed: where it is, between env calls too
        self.atomic = 0  # inside an env call: a client library's locks there are no scheduling points
        self.predicate: Callable[[], bool] | None = None
        self.timed = False
        self.timed_out = False
        self.woke_early = False  # its timed wait was ended early, and nobody else has stepped since
        self.woken = False  # its timed wait was just ended: its next scheduling point is no decision
        self.since_wait = 0  # scheduling points passed since its last timed wait
        self.loop_len = 0  # scheduling points between its last two timed waits: a retry loop's body
        self.alone = 0  # > 0: it is retrying alone, its timed waits ended early this many times
        self.waiting: Any = None  # what it is blocked on, for messages
        self.go: queue.SimpleQueue = queue.SimpleQueue()
        self.ident: int | None = None
        self.native: int | None = None  # the OS's id of its thread (to read its scheduler state)
        self.clock: int | None = None
        self.cpu = -1.0
        self.idle = 0
        self.body: Callable[[], None] | None = None
        self.thread: Any = None
        # A daemon: a thread the factory started (a flusher draining a queue, a periodic loop). It
        # lives as long as its world, across that world's schedulers, and never has to end: blocked
        # with nothing to do, it is idle.
        self.daemon = False
        self.drained = 0  # a daemon: its timed waits ended for work left since the last operation
        self.killed = False  # its world is closed: it unwinds at its next scheduling point
        self.timeout: float | None = None  # the timeout of the wait it is blocked in

    # What primitives and the recorder call on the participant's own thread.
    def park(self, call: tuple) -> None:
        self.scheduler.park(self, call)

    def block(self, predicate: Callable[[], bool], timeout: float | None, what: Any) -> bool:
        return self.scheduler.block(self, predicate, timeout, what)


class Scheduler:
    def __init__(
        self,
        choose: Chooser,
        *,
        session: Session,
        step_timeout: float = DEFAULT_STEP_TIMEOUT,
        contexts: dict[int, Any],
        helper_context: Callable[[Any], Any],
        on_finish: Callable[[Participant], None] | None = None,
        clock: ClockHook | None = None,
    ) -> None:
        self.choose = choose
        # Time inside the race: where the chooser moved the clock on, (decision number, seconds).
        self.clock = clock
        self._ask_jump = getattr(choose, "jump", None) if clock is not None else None
        self.jumps: list[tuple[int, int]] = []
        self.session = session  # the check's: where its participants are registered, its counts kept
        self.step_timeout = step_timeout
        self.contexts = contexts  # thread ident -> context: how the recorder names a thread's calls
        self.helper_context = helper_context  # a helper's context, from its starter's
        self.on_finish = on_finish
        self.parts: list[Participant] = []
        self.live = 0  # participants not done
        self.live_of: dict[str, int] = {}  # operation -> its participants not done (helpers included)
        self.back: queue.SimpleQueue = queue.SimpleQueue()  # to the main thread
        self.choices: list[int] = []
        self.aborting = False
        self.uncontrolled = 0  # how often a participant blocked out of sight and was taken over
        self.forced = 0  # timed waits ended because nothing else could step
        self.baton: Participant | None = None  # who may decide the next step; None: the main thread
        self.current: Participant | None = None  # the participant chosen last
        self.progress = 0  # steps taken: the main thread's heartbeat
        self.hung: str | None = None  # set when timed waits keep ending with nothing else to run
        # A sequence (``run_sequence``): what starts its next operation, and the thread to run it.
        self.next_op: Callable[[], Participant | None] | None = None
        self.idle_on: int | None = None
        self._lock = RealRLock()  # reentrant: starting a sequence's next operation adds a participant
        self._waited_for_foreign = False
        # Daemons (``keep``): how many are live, whether work is left for them once every operation
        # is done (a dirty value to flush: the world says), how the clock moves when a periodic one
        # is woken for it, and what to do when everything is quiet (the world judges at rest).
        self.daemons = 0
        self.work_left: Callable[[], bool] | None = None
        self.tick: Callable[[float], None] | None = None
        self.slept: Callable[[float], None] | None = None  # the clock moves: every participant slept
        self.on_quiet: Callable[[], None] | None = None
        # Whether a thread a participant with this context starts is background work of its own (a
        # refresh a read starts, a flush a write starts): the world says, from the pattern.
        self.spawns: Callable[[Any], bool] | None = None
        # Operations one at a time (a sequence): the running one always goes on at an env call, so
        # no decision is made there (daemons and workers step when it blocks or ends).
        self.one_at_a_time = False
        self._handing = False

    # -- joining ----------------------------------------------------------------------------------

    def add(self, op: int, body: Callable[[], None], thread: Any, context: Any) -> Participant:
        """An operation to start at ``run``, on ``thread`` (anything with ``submit(job)``)."""
        p = self._join(op, context, helper=False)
        p.body, p.thread = body, thread
        for q in self.parts:
            q.drained = 0
        return p

    # -- daemons ------------------------------------------------------------------------------------

    def keep(self, daemons: list[Participant], new: list[tuple[threading.Thread, Any]]) -> list[Participant]:
        """This scheduler runs the world's daemons: those an earlier scheduler ran (blocked where they
        were: they go on in this one) and ``new`` ones, threads the factory started, which start with
        this scheduler's run. Returns the daemons' participants, for the next scheduler."""
        with self._lock:
            for p in daemons:
                if p.state == "done":
                    continue
                p.scheduler, p.index = self, len(self.parts)
                self.parts.append(p)
                self.live += 1
                self.daemons += 1
                self.live_of[p.context.op] = self.live_of.get(p.context.op, 0) + 1
            kept = [p for p in daemons if p.state != "done"]
        for thread, context in new:
            p = self._join(-1, context, helper=True)
            p.daemon = True
            self.daemons += 1
            self._wrap(thread, p)
            kept.append(p)
        return kept

    def _wrap(self, thread: threading.Thread, p: Participant) -> None:
        """``thread`` runs as participant ``p``: parked until chosen, unwound when pruned."""
        thread._cachepact_helper = p  # type: ignore[attr-defined]  (a join of it waits for p: _helpers)
        run = thread.run

        def participant_run() -> None:
            try:
                self._enter(p, announce=True)
                self._wait(p)
                run()
            except Pruned:
                pass  # an aborted run unwinds its helpers too
            except BaseException:
                # What its cleanup raised while it unwound (a lock released after its world closed):
                # the kit cut it short, nothing to report.
                if not (p.killed or p.scheduler.aborting):
                    raise
            finally:
                p.scheduler._leave(p)

        thread.run = participant_run  # type: ignore[method-assign]
        p.thread = thread

    def _start_daemons(self) -> None:
        """Start the daemons new to this run (the factory's threads), and wait until each is parked."""
        new = [p for p in self.parts if p.daemon and p.state == "new"]
        for p in new:
            primitives.real_start(p.thread)
        self._await_ready(new)

    def ops_live(self) -> int:
        return self.live - self.daemons

    def _daemon_due(self, q: Participant) -> bool:
        """Whether daemon ``q``'s timed wait may end now: while operations run (it runs when the
        clock says, which may be any moment), or once all are done while work is left (a dirty value
        to flush), a few times each: a periodic loop that does nothing more is idle."""
        if self.ops_live() > 0:
            return True
        return self.work_left is not None and q.drained < MAX_DRAIN and self.work_left()

    @staticmethod
    def release(daemons: list[Participant]) -> None:
        """The world is closed: its daemons unwind at the scheduling point each is parked at (their
        last scheduler, its run over, takes no further notice of them)."""
        for p in daemons:
            if p.state != "done":
                p.scheduler.aborting = True
                p.killed = True
                p.go.put(None)

    def _join(self, op: int, context: Any, *, helper: bool) -> Participant:
        with self._lock:
            p = Participant(self, len(self.parts), op, context, helper=helper)
            self.parts.append(p)
            self.live += 1
            self.live_of[context.op] = self.live_of.get(context.op, 0) + 1
        return p

    def in_background(self) -> bool:
        """Whether work the calling participant hands off now is background work (``spawns``)."""
        me = self.session.scheduled.get(threading.get_ident())
        return self.spawns is not None and me is not None and self.spawns(me.context)

    def adopt(self, thread: threading.Thread) -> None:
        """A participant starts ``thread``: it becomes a helper of the same operation (``_helpers``)."""
        parent = self.session.scheduled[threading.get_ident()]
        assert isinstance(parent, Participant)
        p = self._join(parent.op, self.helper_context(parent.context), helper=True)
        self._wrap(thread, p)

    def _enter(self, p: Participant, *, announce: bool) -> None:
        p.ident = threading.get_ident()
        p.native = threading.get_native_id()
        self.session.scheduled[p.ident] = p
        self.contexts[p.ident] = p.context
        if announce:
            with self._lock:
                if self.aborting:
                    raise Pruned()
                p.state = "parked"
            self.back.put(("ready", p.index))

    def _leave(self, p: Participant) -> None:
        if p.ident is not None:
            self.session.scheduled.pop(p.ident, None)
            self.contexts.pop(p.ident, None)
        self._finish(p)

    def _job(self, p: Participant, *, announce: bool) -> Callable[[], None]:
        def job() -> None:
            self._enter(p, announce=announce)
            self._body(p, wait=announce)

        return job

    def _body(self, p: Participant, *, wait: bool) -> None:
        """Run ``p``'s operation on this thread (after its first turn, if it must wait for one)."""
        try:
            if wait:
                self._wait(p)
            assert p.body is not None
            p.body()
        except Pruned:
            pass  # an aborted run unwinds
        finally:
            self._leave(p)

    def _sequence_job(self, first: Participant) -> Callable[[], None]:
        """Operations one at a time, from ``first``: each runs at once with the baton, and when it
        and its helpers are done the thread that finished it starts the next (``next_op``), on the
        spot when it belongs to this same thread, else by handing it to its own thread. A sequence
        thus costs a thread switch only where the app instance changes."""

        def job() -> None:
            p: Participant | None = first
            while p is not None:
                self._enter(p, announce=False)
                self._body(p, wait=False)
                p = self._go_on_from(p.thread)

        return job

    def _go_on_from(self, thread: Any) -> Participant | None:
        """After an operation of a sequence: the next one, if it runs on ``thread`` (else it is
        handed to its thread, or the sequence is over and the main thread is told)."""
        if self.idle_on != threading.get_ident():
            return None
        self.idle_on = None
        return self._hand_on(thread)

    def _hand_on(self, thread: Any) -> Participant | None:
        """The sequence's next operation, given the baton: returned when it runs on ``thread``, else
        submitted to its own thread (None then, and when the sequence is over: the main thread is told)."""
        try:
            nxt = self.next_op() if self.next_op is not None else None
        except BaseException as e:  # the kit's own failure: the main thread raises it
            self.back.put(("error", e))
            return None
        if nxt is None:
            self.back.put(("done",))
            return None
        with self._lock:
            nxt.state = "running"
            self.current = self.baton = nxt
        if nxt.thread is thread:
            return nxt
        nxt.thread.submit(self._sequence_job(nxt))
        return None

    # -- on participants' threads -------------------------------------------------------------------

    def park(self, p: Participant, call: tuple) -> None:
        """Before an env call or a lock: a scheduling point."""
        if self.aborting:
            raise self._unwind(p)
        p.pending = (*call, p.first)
        p.parks += 1
        self.progress += 1
        p.since_wait += 1
        if p.alone and self.baton is p:
            if p.since_wait <= p.loop_len:
                return  # still inside its retry loop, alone: no decision
            p.alone = 0  # more calls than the loop's body: it has left the loop; decisions resume
            p.woken = False
        if p.first or (p.woken and self.baton is p):
            # A participant's start and its first call are one step: the code before its first call
            # touches nothing shared, so a decision there would only double the schedules. So are
            # the end of a timed wait and the next call: letting others step in between is the
            # same as ending the wait later, which the scheduler also tries.
            p.first = p.woken = False
            return
        if self.live == 1 and p.state == "running":
            return  # nobody else can step: no decision to make
        if self.one_at_a_time and p.state == "running" and not p.daemon and self.baton is p:
            return  # one operation at a time: it goes on, and daemons step when it blocks or ends
        self._stop(p, "parked")

    def block(self, p: Participant, predicate: Callable[[], bool], timeout: float | None, what: Any) -> bool:
        """A kit primitive would block: wait until the scheduler resumes it, satisfied or timed out."""
        if self.aborting:
            raise self._unwind(p)
        p.predicate = predicate
        p.timed = timeout is not None
        p.timeout = timeout
        p.timed_out = p.woken = False
        if p.timed:
            p.loop_len, p.since_wait = p.since_wait, 0
        p.waiting = what
        self._stop(p, "blocked")
        p.predicate, p.waiting = None, None
        return not p.timed_out

    def _stop(self, p: Participant, state: str) -> None:
        """``p`` stops at a scheduling point: decide who steps next, and wait unless it is ``p``."""
        with self._lock:
            p.state = state
            holder = self.baton is p
            chosen = self._decide() if holder else None
            if holder and chosen is None and not self.aborting:
                self._to_main()
            handing, self._handing = self._handing, False
        if handing:
            self._hand_on(None)  # a daemon went idle last: the sequence's next operation goes on
        if chosen is p:
            return
        if self.aborting:
            raise self._unwind(p)  # it decided the run is redundant: it unwinds too
        if not holder:
            self.back.put(("resurfaced", p.index))  # it had run uncontrolled: the main thread may act
        self._wait(p)

    def _unwind(self, p: Participant) -> Pruned:
        """``p``'s run was cut short: it unwinds from here unscheduled, so the cleanup code it runs
        on the way out (an event loop cancelling its tasks, ``finally`` blocks taking locks) ends
        on its own instead of meeting ``Pruned`` again at every scheduling point."""
        if p.ident is not None:
            self.session.scheduled.pop(p.ident, None)
        return Pruned()

    def _wait(self, p: Participant) -> None:
        p.go.get()
        if self.aborting or p.killed:
            raise self._unwind(p)

    def _finish(self, p: Participant) -> None:
        with self._lock:
            p.state = "done"
            self.live -= 1
            self.daemons -= p.daemon
            self.live_of[p.context.op] -= 1
            self.progress += 1
            if self.on_finish is not None and not self.aborting:
                self.on_finish(p)
            if self.aborting:
                if self.live == 0:
                    self.back.put(("done",))
                return
            if self.baton is not p:
                self.back.put(("resurfaced", p.index))
                return
            if self._decide() is not None:
                return
            if self.ops_live() != 0 or self.next_op is None:
                self._to_main()
                return
            self._quiet()
            self.baton = None
            if not p.helper:
                self.idle_on = threading.get_ident()  # its sequence job starts the next operation
                return
        # The last to finish was a helper (a Timer that fired after its write returned): the next
        # operation goes to its own thread from here.
        self._hand_on(p.thread)

    def _to_main(self) -> None:
        self.baton = None
        if self.ops_live() == 0:
            self._quiet()
            if self.daemons and self.next_op is not None:
                self._handing = True  # the sequence goes on once this thread lets go of the lock
                return
        self.back.put(("done",) if self.ops_live() == 0 else ("stuck",))

    def _quiet(self) -> None:
        """Every operation is done and nothing can step: the world may judge the system at rest."""
        if self.on_quiet is not None and not self.aborting:
            self.on_quiet()

    # -- deciding (whoever holds the baton, under the lock) ----------------------------------------

    def _decide(self) -> Participant | None:
        """Choose and wake the next participant, passing it the baton; None when nothing can step."""
        ready: list[int] = []
        timed: list[int] = []
        spinning: list[int] = []
        for q in self.parts:
            if q.state == "parked" or (q.state == "blocked" and (self.aborting or q.predicate())):  # type: ignore[misc]
                ready.append(q.index)
            elif q.state == "blocked" and q.timed:
                if q.daemon and not self._daemon_due(q):
                    continue  # a periodic daemon with nothing left to do is idle
                (spinning if q.woke_early else timed).append(q.index)
        # Fairness, as in CHESS (Musuvathi & Qadeer, PLDI 2008): a participant whose timed wait was
        # ended early and that waits again before anyone else stepped is in a retry loop (a Redis
        # lock polled with sleep): offered one early end after another, its schedules never end.
        # So it is offered again once another participant steps, or when nothing else can; and
        # once as ALONE + i: it retries alone, every wait ending early, no decisions, until it
        # leaves the loop (a bounded loop giving up, which others' paused steps make happen) or
        # MAX_SPIN tries go by (a loop only others can end, or a longer one: the branch is cut,
        # counted in the session's spun_out, and the check's report says so).
        # A daemon's periodic wait is no retry loop: it is never offered to spin alone.
        alone = tuple(ALONE + i for i in spinning if not self.parts[i].daemon) if ready else ()
        if not ready:
            timed += spinning
        options = tuple(sorted(ready + timed)) + alone if ready else tuple(sorted(timed))
        if not options:
            return None
        cur_p = self.current
        forced: int | None = None
        if cur_p is not None and cur_p.alone and cur_p.state == "blocked" and not self.aborting:
            if cur_p.predicate():  # type: ignore[misc]
                forced = cur_p.index  # its wait is over: it goes on, still alone
            elif cur_p.timed:
                cur_p.alone += 1
                if cur_p.alone > MAX_SPIN:
                    self.session.spun_out += 1
                    self._abort()
                    return None
                forced = cur_p.index
            else:
                cur_p.alone = 0  # it waits for others now: decisions resume
        # Time inside the race, at a real decision only (two options or more): those are recorded,
        # so a run that replays its choices meets the same points in the same order.
        if forced is None and len(options) > 1 and self._ask_jump is not None and not self.aborting:
            jumped = self._jump()
            if jumped is None:  # the chooser cut the run here
                return None
            if jumped:
                return self._decide()  # time moved: what can step now, and maybe another jump
        if not ready and self.forced >= MAX_FORCED_TIMEOUTS:
            self.hung = self._describe_stuck()  # a wait with a timeout, in a loop nothing ends
            return None
        # By default the current participant goes on (fewest switches), and a wait with a timeout
        # ends only when nothing else can step; choosers may pick any option.
        # A daemon's timed wait (a periodic flusher) ends by default only when no operation's can,
        # the least drained first (each app instance's flusher has its own writes to flush).
        daemons = sorted((t for t in timed if self.parts[t].daemon), key=lambda t: self.parts[t].drained)
        preferred = ready or [t for t in timed if not self.parts[t].daemon] or daemons
        cur = self.current.index if self.current is not None else None
        default = cur if cur in preferred else preferred[0]
        if forced is not None:
            chosen = forced
        elif len(options) == 1:
            chosen = options[0]
        else:
            # A chooser that reads the stores (the explorer's state key) runs the kit's own code on
            # this participant's thread: nothing in it is a scheduling point.
            me = self.session.scheduled.get(threading.get_ident())
            if me is not None:
                me.atomic += 1
            try:
                chosen = self.choose(len(self.choices), options, default)
            finally:
                if me is not None:
                    me.atomic -= 1
            if chosen == ABORT:
                self._abort()
                return None
            if chosen not in options:
                chosen = default
            self.choices.append(chosen)
            if chosen >= ALONE:
                chosen -= ALONE
                self.parts[chosen].alone = 1
        p = self.parts[chosen]
        if p.state == "blocked" and not (self.aborting or p.predicate()):  # type: ignore[misc]
            p.timed_out = True
            p.woke_early = bool(ready)
            p.woken = True
            self.forced += not ready
            if p.daemon and self.ops_live() == 0:
                # Work is left and only a periodic daemon can do it: its period passes on the clock.
                p.drained += 1
                if self.tick is not None and p.timeout:
                    self.tick(p.timeout)
            elif not ready and not p.daemon and self.slept is not None and p.timeout:
                # Every participant waits, and only time ends a wait: the sleeper's time passes on the
                # clock (a lock whose holder died expires while a poller sleeps, as it would for real).
                self.slept(p.timeout)
        else:
            self.progress += 1
            for q in self.parts:
                if q is not p:
                    q.woke_early = False
        self.current = self.baton = p
        if p.state != "running":
            p.state = "running"
            if p.unstarted:
                p.unstarted = False
                p.thread.submit(self._job(p, announce=False))
            elif p.ident != threading.get_ident():
                p.go.put(None)
        return p

    def _jump(self) -> bool | None:
        """Time inside the race: when the clock hook offers a jump here (something will expire), the
        chooser says whether the clock moves on first, and by how much. True when it moved, None
        when the chooser cut the run instead. The hook and the chooser run the kit's own code on
        this participant's thread: nothing in them is a scheduling point."""
        me = self.session.scheduled.get(threading.get_ident())
        if me is not None:
            me.atomic += 1
        try:
            offered = self.clock.offer()  # type: ignore[union-attr]
            if offered is None:
                return False
            d = len(self.choices)
            seconds = self._ask_jump(d, offered)  # type: ignore[misc]
            if seconds == ABORT:
                self._abort()
                return None
            if not seconds:
                return False
            self.clock.jump(seconds)  # type: ignore[union-attr]
        finally:
            if me is not None:
                me.atomic -= 1
        self.jumps.append((d, seconds))
        self.progress += 1
        return True

    def _abort(self) -> None:
        """The run is redundant, or over: every waiting participant unwinds (raising ``Pruned``)."""
        self.aborting = True
        self.baton = None
        me = threading.get_ident()
        for p in self.parts:
            if p.unstarted:  # never ran: nothing to unwind, it is done
                p.unstarted = False
                p.state = "done"
                self.live -= 1
                self.live_of[p.context.op] -= 1
            elif p.state in ("parked", "blocked") and p.ident != me:
                p.go.put(None)
        if self.live == 0:
            self.back.put(("done",))

    # -- the main thread ---------------------------------------------------------------------------

    def run(self) -> None:
        """Start the operations added, and step until every participant is done.

        Raises ``Stalled`` ("timeout", "stuck" or "deadlock") after unwinding what it can; the participants
        still running out of sight are left (``stranded``)."""
        new = [p for p in self.parts if p.state == "new" and not p.helper]
        try:
            self._start_daemons()
            if len(new) == 1 and self.ops_live() == 1 and not self.daemons:
                # One operation alone: it runs at once, with the baton (no start handshake).
                p = new[0]
                p.state = "running"
                self.current = self.baton = p
                p.thread.submit(self._job(p, announce=False))
            else:
                # Each operation waits at its start without running anything: its thread gets its
                # job when the operation is first chosen, and runs it at once, with the baton. (Each
                # announcing itself parked first cost two thread wake-ups an operation a schedule,
                # for a state that is the same either way: its start and first call are one step.)
                for p in new:
                    p.state, p.unstarted = "parked", True
                with self._lock:
                    if self._decide() is None:
                        self._to_main()
            self._watch()
        except Stalled:
            with self._lock:
                self._abort()
            raise

    def run_sequence(self, first: Participant, next_op: Callable[[], Participant | None]) -> None:
        """Run operations one at a time, ``first`` (added) and then each ``next_op()`` returns (added,
        or None at the end), watching them all. Raises ``Stalled`` as ``run`` does."""
        self.next_op = next_op
        try:
            self._start_daemons()
            with self._lock:
                first.state = "running"
                self.current = self.baton = first
            first.thread.submit(self._sequence_job(first))
            self._watch()
        except Stalled:
            with self._lock:
                self._abort()
            raise

    def _await_ready(self, new: list[Participant]) -> None:
        deadline = time.perf_counter() + self.step_timeout
        while any(p.state == "new" for p in new):
            try:
                self.back.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                raise Stalled("timeout", "an app thread did not start", self._stuck_ops()) from None

    def _watch(self) -> None:
        seen, since = self.progress, time.perf_counter()
        # Progress is noticed when the main thread looks: alone, a participant is looked at every
        # twentieth of the timeout, so a hang is called within 5% of it (not up to twice it).
        lone = max(POLL, self.step_timeout / 20)
        while True:
            many = self.live > 1
            try:
                message = self.back.get(timeout=POLL if many else lone)
            except queue.Empty:
                now = time.perf_counter()
                if self.progress != seen:
                    seen, since = self.progress, now
                    continue
                if now - since >= self.step_timeout:
                    raise Stalled("timeout", self._describe_stuck(), self._stuck_ops()) from None
                if many:
                    self._take_over(now - since)
                continue
            if message[0] == "error":
                raise message[1]
            if message[0] == "done" and self.ops_live() == 0 and self.idle_on is None:
                return
            if self.baton is None:
                self._unstick()

    def _take_over(self, quiet_for: float) -> None:
        """A running participant whose thread used no CPU lately is blocked where the kit cannot see
        (a lock made before the run, I/O): it runs on uncontrolled, and another is scheduled."""
        with self._lock:
            taken = False
            for p in self.parts:
                if p.state != "running" or p.ident is None:
                    continue  # one handed the baton whose thread has not started yet is not blocked
                if p.atomic:
                    # Inside a recorded call: waiting for a real server's reply (slow on a loaded
                    # machine) is the kit's own I/O, never a wait out of its control.
                    continue
                if p.clock is None:
                    p.clock = _cpu_clock(p.ident)
                cpu = _cpu_time(p.clock)
                if cpu is None:
                    blocked = quiet_for >= IDLE_WALL
                else:
                    p.idle = p.idle + 1 if cpu == p.cpu else 0
                    p.cpu = cpu
                    # A thread that used no CPU may only be waiting for one (a loaded machine): the
                    # OS says whether it is runnable, where it can. Waiting for Python's GIL reads as
                    # asleep too, and on a machine busier than its cores that wait can last longer
                    # than two polls: there, it must also have made no progress for IDLE_WALL (a
                    # quarter of the step timeout, if that is shorter: well before the timeout).
                    blocked = (
                        p.idle >= IDLE_POLLS
                        and not _runnable(p.native)
                        and (quiet_for >= min(IDLE_WALL, self.step_timeout / 4) or not _machine_busy())
                    )
                if blocked:
                    p.state = "uncontrolled"
                    p.idle = 0
                    p.alone, p.woken = 0, False  # when it resurfaces, the scheduler decides again
                    self.uncontrolled += 1
                    taken = True
                    if self.baton is p:
                        self.baton = None
            if not taken or self.baton is not None:
                return
        self._unstick()

    def _unstick(self) -> None:
        """The main thread holds the baton: step on if anything can, else wait for what may still
        come (a helper starting, an uncontrolled participant, a thread of the adapter's own), or
        call it a deadlock."""
        with self._lock:
            if self.aborting or self.baton is not None or self.idle_on is not None:
                return
            if self.hung is not None:
                raise Stalled("timeout", self.hung, self._stuck_ops())
            if self.ops_live() == 0:
                if self.daemons and self._decide() is not None:
                    return  # a daemon has work first (a queue it drains filled)
                if any(p.daemon and p.state in ("new", "uncontrolled", "running") for p in self.parts):
                    return  # a daemon still at work (out of sight a moment, on a loaded machine)
                self._quiet()
                nxt = self.next_op() if self.next_op is not None else None
                if nxt is None:
                    self.back.put(("done",))
                else:  # the last thread out was one the kit had lost sight of: the sequence goes on from here
                    nxt.state = "running"
                    self.current = self.baton = nxt
                    nxt.thread.submit(self._sequence_job(nxt))
                return
            if self._decide() is not None:
                return
            if any(p.state in ("new", "uncontrolled", "running") and not p.daemon for p in self.parts):
                return  # it will park, block, finish or start: a message comes then
        if self.session.foreign and not self._waited_for_foreign:
            # A thread of the adapter's own may still set what a participant waits for.
            self._waited_for_foreign = True
            with primitives._state:
                primitives._changed.wait(min(self.step_timeout, 0.5))
            self.back.put(("stuck",))
            return
        raise Stalled(self._kind_of_stall(), self._describe_stuck(), self._stuck_ops())

    def _kind_of_stall(self) -> str:
        """ "deadlock" when the stuck hold each other's locks (a cycle); "stuck" when one waits for
        what nothing left running can give (an Event never set): a hang, known now, not timed out."""
        stuck = {p.ident for p in self.parts if p.state != "done"}
        for p in self.parts:
            if p.state == "blocked":
                owner = getattr(p.waiting, "owner", None)
                if owner is None or owner not in stuck:
                    return "stuck"
        return "deadlock"

    # -- messages ------------------------------------------------------------------------------------

    def name_of_thread(self, ident: int) -> str | None:
        context = self.contexts.get(ident)
        return None if context is None else context.op

    def _describe_stuck(self) -> str:
        """Each unfinished participant, and what it waits for or where it is."""
        frames = sys._current_frames()
        parts = []
        for p in self.parts:
            if p.state == "done":
                continue
            who = p.context.op + (" (in a thread it started)" if p.helper else "")
            if p.state == "blocked" and p.waiting is not None:
                parts.append(f"{who} waits for {primitives.describe(p.waiting, self.name_of_thread)}")
            elif p.ident is None:
                parts.append(f"{who} never started")
            else:
                where = innermost(of_frame(frames.get(p.ident))) or "a place outside its code"
                parts.append(f"{who} is stuck at {where}")
        return "; ".join(parts)

    def _stuck_ops(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.context.op for p in self.parts if p.state != "done"))

    def stranded(self) -> list[Participant]:
        """Participants whose threads are still running out of the kit's control."""
        return [p for p in self.parts if p.state in ("running", "uncontrolled")]
