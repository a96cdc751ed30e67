"""One check, one session: the mutable state of a run lives in one object, not in module globals.

``check()`` and ``prove()`` each make a ``Session`` and hold it for the whole call; a ``Setup``
carries it, so every ``World``, ``Scheduler``, ``Recorder`` and app thread of the check reaches it
through the objects a run already passes around. It holds what a run changes as it goes: the
threads working for operations (``scheduled``), whether a thread the kit does not run touched a kit
primitive (``foreign``), the schedules cut after a lone retry loop (``spun_out``), the app threads
running a job (``busy``), the world whose redis-py commands are recorded (``recording``), and the
``cache_code`` attributions the check's worlds share (``attributions``, ``in_use``). A second check
starts from nothing the first left.

What the kit patches is the process's, not a check's: ``threading``'s primitives, ``time.sleep``,
``Thread.start``, redis-py's clients, and the virtual clock (time-machine moves every clock of the
process). Patched code reached from an adapter has no run to ask but "the one running", so the
process holds one slot for it (``running()``), and a second session while it is taken is refused at
once (two checks at a time in one process would each read the other's steps and clock).
"""

from __future__ import annotations

import _thread
import random
from typing import Any

import attrs

from ...errors import UsageError
from .interrupts import InterruptLatch


@attrs.define(eq=False, kw_only=True)
class Session:
    """The mutable state of one check (or proof, or a test's direct run of worlds)."""

    kind: str = "check"  # what the refusal of another calls it: "check" or "proof"
    thread: int | None = None  # the thread that took the process's slot for it
    # -- runtime: the scheduler and the primitives ------------------------------------------------
    scheduled: dict[int, Any] = attrs.Factory(dict)  # thread ident -> its scheduler handle (``Participant``)
    # A thread the kit does not run used a kit primitive, or was started outside any operation: an
    # operation blocked on one may be woken from outside, so the scheduler waits a moment before it
    # calls a stall a deadlock.
    foreign: bool = False
    spun_out: int = 0  # runs cut after a participant retried alone MAX_SPIN times (the report warns)
    busy: dict[int, Any] = attrs.Factory(dict)  # app thread ident -> its ``AppThread``, while it runs a job
    # Something a race ran with was set to expire (a TTL, a lock's timeout): the check's Hypothesis
    # races draw where the clock jumps (a check whose races have nothing to expire draws as before).
    expiring: bool = False
    # The shortest time to live the check has seen set: a refresh-ahead race ages an entry to just
    # short of it (past any refresh point, which comes before expiry).
    shortest_ttl: float | None = None
    # While a factory of a pattern with background work runs: the threads it starts, kept to run as
    # the world's daemons instead of started there (None: threads start as usual).
    daemons: list[Any] | None = None
    building: int = 0  # the app instance whose factory runs now
    # An adapter gave flush= to a pattern with no background work: the report says it went unused.
    unused_flush: bool = False
    # Faults (--faults): per cache key, the longest an entry a failed invalidation left behind stayed
    # stale at a rest point (its time to live then): the report states the bound.
    staleness: dict[str, float] = attrs.Factory(dict)
    # Some write that returned normally (acknowledged) left such an entry: a later read may see it.
    stale_after_acknowledged: bool = False
    # -- record: the redis-py hook and attribution ------------------------------------------------
    recording: Any = None  # the ``RedisRecording`` of the world whose commands are recorded now
    sending: set[int] = attrs.Factory(set)  # threads inside a recorded command: what they send is the kit's
    attributions: dict[tuple, Any] = attrs.Factory(dict)  # cache_code -> its ``Attribution``, shared by worlds
    in_use: dict[int, Any] = attrs.Factory(dict)  # the attributions with entries, for the unseen-entry warning
    # cache_code entries that ran in the check's other processes (``check(workers=N)``): seen all the same.
    cache_code_ran: set[str] = attrs.Factory(set)
    # -- judge: the user's refinement mapping --------------------------------------------------------
    peeking: set[int] = attrs.Factory(set)  # threads inside cache_key: what they read of env is the kit's peek
    decoding: set[int] = attrs.Factory(set)  # threads inside decode, which must not call env at all
    # -- what stops the check: the adapter did what the kit cannot record (a redis.asyncio command) --
    refused: Exception | None = None  # raised from the run once the operation unwinds (exit 2)
    # -- Ctrl-C and SIGTERM, noted where a gc callback or a __del__ would swallow them -----------------
    interrupts: InterruptLatch = attrs.Factory(InterruptLatch)

    def within(self, threads: set[int]) -> _Within:
        """Entered around a call of the user's ``cache_key`` (``peeking``) or ``decode`` (``decoding``)."""
        return _Within(threads)

    def claim(self) -> _Claim:
        """Entered for the check's duration (and by each world, which nests): the process's slot is
        this session's, or ``UsageError`` at once if another session holds it."""
        return _Claim(self)


class _Within:
    """Marks the calling thread in ``threads`` while entered, counting each thread's own nested
    entries, so one thread's exit never clears another's mark."""

    __slots__ = ("depth", "threads")

    def __init__(self, threads: set[int]) -> None:
        self.threads = threads
        self.depth: dict[int, int] = {}

    def __enter__(self) -> None:
        me = _thread.get_ident()
        self.depth[me] = self.depth.get(me, 0) + 1
        self.threads.add(me)

    def __exit__(self, *exc: object) -> None:
        me = _thread.get_ident()
        left = self.depth.pop(me) - 1
        if left:
            self.depth[me] = left
        else:
            self.threads.discard(me)


class _Claim:
    """The process's slot for a session; the outermost claim also keeps the process's ``random``
    state, which each world reseeds (``World``), as it was."""

    __slots__ = ("random_state", "session", "took")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.took = False
        self.random_state: object = None

    def __enter__(self) -> Session:
        self.took = _PROCESS.take(self.session)
        if self.took:
            self.random_state = random.getstate()
        return self.session

    def __exit__(self, *exc: object) -> None:
        if self.took:
            random.setstate(self.random_state)  # type: ignore[arg-type]
            _PROCESS.give_back(self.session)


class _Process:
    """What belongs to the process rather than to any check, because the kit's patches do.

    ``session``: the one running now, which the patched primitives and redis-py reach (at most one:
    the patches, the virtual clock and the recorded commands are the whole process's). ``left_behind``:
    app threads a session left running a job when it ended (a timeout, Ctrl-C); they outlive their
    session, so only the process can hold them. Their redis-py commands are refused, in any later
    session too, until their job ends, so none recreates a key after the kit removed its check's.
    """

    __slots__ = ("left_behind", "lock", "session")

    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()  # a real lock, whatever ``threading`` is patched to
        self.session: Session | None = None
        self.left_behind: dict[int, Any] = {}  # thread ident -> its AppThread

    def take(self, session: Session) -> bool:
        with self.lock:
            if self.session is session:
                return False  # nested (a world inside the check), or a thread working for it
            if self.session is not None:
                raise UsageError(refusal(self.session))
            self.session = session
            session.thread = _thread.get_ident()
            # Worlds run outside a check take the process one run at a time: their threads are
            # their session's again, not left behind.
            for ident in [i for i, t in self.left_behind.items() if t.session is session]:
                del self.left_behind[ident]
            return True

    def give_back(self, session: Session) -> None:
        with self.lock:
            # Its commands are no longer recorded (it no longer runs); those of its threads still
            # running a job are refused from now on.
            self.left_behind.update(session.busy)
            self.session = None


# The process's slot and the threads checks left behind (see _Process): module-level because the
# patched threading, time and redis-py code it serves is module-level, reached from any thread.
_PROCESS = _Process()


def refusal(holder: Session) -> str:
    """The one line refusing a second session while ``holder`` runs."""
    what = "proof" if holder.kind == "proof" else "check"
    return (
        f"another {what} is running in this process (started on thread {holder.thread}); run checks one "
        "after another, or in separate processes"
    )


def running() -> Session | None:
    """The session running in this process now, if any: for code the kit patched in (a lock's
    acquire, a redis-py command), which has no run to ask but this one."""
    return _PROCESS.session


def left_behind(ident: int) -> bool:
    """Whether thread ``ident`` is an app thread a finished session left running its job."""
    thread = _PROCESS.left_behind.get(ident)
    return thread is not None and thread.session.busy.get(ident) is thread


def lingering() -> bool:
    """Whether any app thread is still running a job for a session that is over (or, for the one
    running, at all): while one is, redis-py stays hooked, refusing its commands."""
    with _PROCESS.lock:
        gone = [ident for ident in _PROCESS.left_behind if not left_behind(ident)]
        for ident in gone:
            del _PROCESS.left_behind[ident]
        current = _PROCESS.session
        return bool(_PROCESS.left_behind) or (current is not None and bool(current.busy))


__all__ = ["Session", "left_behind", "lingering", "refusal", "running"]
