"""The one entry call: ``check(make, pattern=...) -> Result``, which runs the phases of a check."""

from __future__ import annotations

import _thread
import contextlib
import math
import pickle
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from .._argtypes import DEFAULT_STEP_TIMEOUT, MAX_STEP_TIMEOUT, MAX_WORKERS
from ..errors import DefinitionError, Interrupted, InvalidArgument
from ..model import Pattern, pattern_named
from ..model._properties import situations_of
from ..model._properties import statuses as declared_statuses
from .drive import replay as replay_format
from .drive.exhaustive import schedule_limit, search_exhaustive
from .drive.hypothesis import example_database, profile_budget, same_redis_database
from .drive.interleaved import replaying, run_interleaved
from .drive.replay import (
    MAX_INSTANCES,
    MAX_OPS,
    faults_of_sequence,
    parse_concurrent,
    parse_sequence,
    validate_replay,
)
from .drive.run import Run
from .drive.schedules import search_schedules
from .drive.sequences import search_fault_sequences, search_sequences
from .drive.spread import explore_spread
from .drive.world import Setup, World, rerun_sequence
from .judge.findings import statuses
from .record.env import unseen_cache_code
from .record.servers import Servers
from .report.progress import Progress
from .report.result import Options, Result
from .runtime.clock import VirtualClock
from .runtime.primitives import RealLock
from .runtime.scheduler import MAX_SPIN
from .runtime.session import Session
from .runtime.signals import ServerLost

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
    instances: int | None = None,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    target: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    redis: str | None = None,
    db: str | None = None,
    strict: bool = False,
    faults: bool | int = False,
    example_db: str | None = None,
    workers: int = 1,
) -> Result:
    """Check the adapter built by ``make(env)`` against ``pattern`` (a name such as "cache-aside",
    "read-through", "write-through", or a composed "READ+WRITE"; see ``cachepact.model.pattern_names``).

    ``max_examples`` sequences (and, with ``concurrency``, as many concurrent scenarios) of up to
    ``steps`` operations each (defaults: the active Hypothesis profile's ``max_examples``, and its
    ``stateful_step_count`` up to 25); after a short sequential pass, every schedule of each small
    race, to 50 schedules an example (1,000 to 20,000 a race; ``Result.unfinished`` names any race
    that had more). ``seed`` picks which examples are drawn (the same seed, the same run); ``replay`` reruns
    exactly the run a failing report printed. ``max_ops`` (2 to 6) bounds the operations in flight
    together. ``instances`` app instances (1 to 8; default 2 with
    ``concurrency``, else 1) share the DB and cache, each its own ``make(env)``, as the processes of
    a deployment do. An operation that makes no progress for ``step_timeout`` seconds is the finding
    ``timeout``. ``target`` names the adapter in reports (default: ``module:qualname`` of the
    factory). ``on_progress(examples, operations)`` is called as the check goes. ``redis`` (a URL,
    ``redis://host:port/N``) puts ``env.redis`` and ``env.cache`` on that server, whose logical
    database must be empty (default: ``env.redis`` on an in-process fakeredis server, ``env.cache``
    in memory); ``db`` (``sqlite:///file.db``, ``postgresql://...``) puts ``env.db`` there. The kit
    removes exactly what it created on them, whatever the outcome; one it cannot use raises
    ``BackendError`` before any checking. ``strict`` fails a check that found nothing but was not
    complete: an invariant not run, a wait out of the kit's control, a Redis command whose effect it
    could not observe (``Result.strict_failures`` says which). ``faults`` (True, or how many, 1 to
    10; True is 3) makes that many calls to the stores at most fail in each run, before taking effect
    or with their reply lost, drawn and shrunk like the rest (``env.cache`` raises ``CacheError``,
    ``env.db`` ``DBError``); the fault invariants are judged too. ``example_db`` (a Redis URL) keeps
    the failures Hypothesis shrank there (``RedisExampleDatabase``, keys ``cachepact-example:*``) and
    tries those saved for this adapter and pattern first: CI runners that share it replay each
    other's counterexamples. ``workers`` above 1 explores the small concurrent scenarios of the
    exhaustive phase over that many processes, started fresh (the factory must be importable by name;
    not with ``redis=`` or ``db=``): the same verdict, counterexample and counts as one process.

    A definition mistake (a factory that raises or returns no ``Adapter``, a bad ``cache_code``)
    raises ``DefinitionError``, and a bad parameter ``InvalidArgument``, before any checking. A
    broken invariant is a failing ``Result`` whose ``report()`` shows the minimal counterexample; an
    adapter raising mid-operation is the finding ``adapter-error``. Ctrl-C raises ``Interrupted``
    (a ``KeyboardInterrupt``) holding the ``Result`` of what ran. See spec/contract.md.

    One check at a time runs in a process (the kit patches ``threading``, ``time`` and redis-py for
    the whole process): a call while another check or ``prove`` runs raises ``UsageError`` at once.
    """
    if instances is None:
        instances = DEFAULT_INSTANCES if concurrency else 1
    budget = _fault_budget(faults, replay)
    # Processes only where there is an exhaustive phase to spread (not a replay, not sequential alone).
    validate_workers(make, workers, redis=redis, db=db, what="a check", used=replay is None and concurrency)
    _validate(
        max_examples=max_examples,
        steps=steps,
        max_ops=max_ops,
        replay=replay,
        instances=instances,
        step_timeout=step_timeout,
        strict=strict,
    )
    # Everything the check changes as it runs is this session's; another check running holds the
    # process, and this one is refused here, before it touches anything.
    with Session(kind="check").claim() as session, session.interrupts:
        return _check(
            make,
            pattern,
            session,
            max_examples=max_examples,
            steps=steps,
            seed=seed,
            replay=replay,
            concurrency=concurrency,
            max_ops=max_ops,
            instances=instances,
            step_timeout=step_timeout,
            target=target,
            on_progress=on_progress,
            redis=redis,
            db=db,
            strict=strict,
            faults=budget,
            example_db=example_db,
            workers=workers if replay is None and concurrency else 1,
        )


def validate_workers(
    make: Callable[..., Any], workers: Any, *, redis: str | None, db: str | None, what: str, used: bool = True
) -> None:
    """``workers`` is a number of processes ``what`` (a check, a proof) may use, or ``InvalidArgument``;
    where they will be ``used``, the factory and the stores must allow them."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise InvalidArgument("workers", workers, f"must be between 1 and {MAX_WORKERS}, not {workers!r}")
    if workers == 1 or not used:
        return
    if redis is not None or db is not None:
        raise InvalidArgument(
            "workers",
            workers,
            f"splits {what} over processes with stores of their own; with redis= or db= they would "
            "share one server's keys: pass workers=1",
        )
    if not importable(make):
        raise InvalidArgument(
            "workers",
            workers,
            "starts processes that import the factory by name: make it a module-level function of an "
            "importable module (not a closure or lambda), or pass workers=1",
        )


def importable(make: Callable[..., Any]) -> bool:
    """Whether a new process can import ``make`` by name (what ``workers`` needs)."""
    try:
        pickle.dumps(make)
    except Exception:
        return False
    return True


@attrs.frozen(kw_only=True)
class WorkerSpec:
    """What a worker process of ``check(workers=N)`` or ``prove(workers=N)`` (``kind``) needs to
    build the setup anew."""

    make: Callable[..., Any]
    pattern: str
    instances: int
    kind: str = "check"
    label: str | None = None
    step_timeout: float = DEFAULT_STEP_TIMEOUT
    faults: int = 0


@contextlib.contextmanager
def worker_setup(spec: WorkerSpec) -> Iterator[Setup]:
    """The setup in a worker process: its own session, in-process stores and virtual clock."""
    with Session(kind=spec.kind).claim() as session:
        servers = Servers()
        try:
            p, label = resolve(
                spec.make, spec.pattern, spec.label, step_timeout=spec.step_timeout, servers=servers, session=session
            )
            with VirtualClock() as clock:
                yield Setup(
                    make=spec.make,
                    pattern=p,
                    label=label,
                    clock=clock,
                    instances=spec.instances,
                    step_timeout=spec.step_timeout,
                    servers=servers,
                    session=session,
                    faults=spec.faults,
                )
        finally:
            servers.close()


DEFAULT_FAULTS = 3  # calls that may fail in one run with faults=True (--faults)
MAX_FAULTS = 10


def _fault_budget(faults: bool | int, replay: str | None) -> int:
    """How many calls may fail in a run: ``faults`` as given (True: ``DEFAULT_FAULTS``), or, for a
    replay string that marks faults, as many as it marks."""
    if faults is True:
        budget = DEFAULT_FAULTS
    elif faults is False or faults is None or (isinstance(faults, int) and faults == 0):
        budget = 0
    elif isinstance(faults, int) and 1 <= faults <= MAX_FAULTS:
        budget = faults
    else:
        raise InvalidArgument(
            "faults", faults, f"must be True, False or a number of calls from 1 to {MAX_FAULTS}, not {faults!r}"
        )
    if replay is not None and "!" in replay:
        # One call per mark; an outage (``!2b+``) fails calls while the budget lasts: the default's.
        budget = max(budget, replay.count("!"), DEFAULT_FAULTS if "+" in replay else 0)
    return budget


def _check(
    make: Callable[..., Any],
    pattern: Pattern | str,
    session: Session,
    *,
    max_examples: int | None,
    steps: int | None,
    seed: int | None,
    replay: str | None,
    concurrency: bool,
    max_ops: int,
    instances: int,
    step_timeout: float,
    target: str | None,
    on_progress: Callable[[int, int], None] | None,
    redis: str | None,
    db: str | None,
    strict: bool,
    faults: int = 0,
    example_db: str | None = None,
    workers: int = 1,
) -> Result:
    """``check``, its arguments valid, in its ``session``."""
    # A server or database the kit cannot use fails here, before any checking; whatever happens
    # after, close() leaves them as they were found (Ctrl-C and SIGTERM, which the CLI turns into
    # KeyboardInterrupt, included).
    if example_db is not None and redis is not None and same_redis_database(example_db, redis):
        raise InvalidArgument(
            "example_db", example_db, "is the Redis database the run's stores use, which must stay empty: use another"
        )
    servers = Servers(redis=redis, db=db)
    examples = contextlib.ExitStack()
    try:
        database = None if replay is not None else examples.enter_context(example_database(example_db))
        p, label = resolve(make, pattern, target, step_timeout=step_timeout, servers=servers, session=session)
        options = Options(
            max_examples=max_examples,
            seed=seed,
            concurrent=concurrency,
            max_ops=max_ops,
            instances=instances,
            step_timeout=step_timeout,
            replay=replay,
            redis=servers.redis_shown,
            db=servers.db_shown,
            strict=strict,
            faults=faults,
        )
        progress = Progress(on_progress, interrupts=session.interrupts)
        started = time.perf_counter()
        run = None

        def finished(run: Run | None) -> Result:
            """The result, once the servers are left as they were found (what could not be, warned)."""
            closed = servers.close()
            return result_of(
                run,
                pattern=p,
                target=label,
                progress=progress,
                elapsed=time.perf_counter() - started,
                options=options,
                servers=servers,
                closed=closed,
                session=session,
            )

        try:
            with VirtualClock() as clock:
                setup = Setup(
                    make=make,
                    pattern=p,
                    label=label,
                    clock=clock,
                    step_timeout=step_timeout,
                    instances=instances if replay is None else max(instances, _replay_instances(replay)),
                    servers=servers,
                    session=session,
                    faults=faults,
                )
                if replay is not None:
                    phases = [_replay_phase(setup, replay, progress)]
                else:
                    profile_examples, profile_steps = profile_budget()
                    phases = _phases(
                        setup,
                        examples=max_examples or profile_examples,
                        steps=steps or min(profile_steps, DEFAULT_STEPS),
                        seed=seed,
                        concurrency=concurrency,
                        max_ops=max_ops,
                        progress=progress,
                        database=database,
                        spread=_spread(setup, workers, progress),
                    )
                run = next((r for r in (phase() for phase in phases) if r is not None), None)
        except KeyboardInterrupt:
            partial = finished(None)
            # What ran broke nothing, but nothing has a verdict: no check reads as a pass.
            cut = tuple((name, "interrupted" if status == "pass" else status) for name, status in partial.statuses)
            raise Interrupted(attrs.evolve(partial, interrupted=True, statuses=cut)) from None
        return finished(run)
    except ServerLost as e:
        raise e.error from None
    finally:
        servers.close()
        examples.close()


DEFAULT_INSTANCES = 2  # most deployments run several processes


def result_of(
    run: Run | None,
    *,
    pattern: Pattern,
    target: str,
    progress: Progress,
    elapsed: float,
    options: Options | None = None,
    servers: Servers | None = None,
    closed: list[str] | None = None,
    session: Session | None = None,
) -> Result:
    """The ``Result`` of a check whose failing run (or None) and counts are known; its warnings
    include what its ``session`` saw (``cache_code`` entries never on the stack, cut schedules)."""
    options = options or Options()
    if run is not None:
        progress.reached.update(run.reached)
    names = situations_of(pattern, concurrent=options.concurrent, faults=bool(options.faults))
    return Result(
        pattern=pattern.name,
        target=target,
        finding=run.finding if run else None,
        steps=run.steps if run else (),
        replay=run.replay if run else "",
        final_state=run.final_state if run else (),
        columns=run.columns if run else (),
        placement=run.instances if run else (),
        context_switches=run.switches if run else 0,
        failing_operations=run.operations if run else 0,
        reached=tuple(s for s in names if s in progress.reached),
        statuses=_statuses(pattern, run, progress.reached, faults=bool(options.faults)),
        examples=progress.examples,
        operations=progress.operations,
        uncontrolled=progress.uncontrolled,
        unobserved=tuple(sorted(servers.unobserved)) if servers else (),
        warnings=(
            *_warnings(session),
            *_sequential_background(pattern, run, options),
            *(servers.warnings if servers else ()),
            *(closed or ()),
        ),
        notes=tuple(servers.notes if servers else ()),
        bounds=tuple(_staleness(session) if run is None or not run.finding else ()),
        races=progress.races,
        fault_races=progress.fault_races,
        unfinished=tuple(progress.unfinished),
        spun_out=session.spun_out if session else 0,
        elapsed=elapsed,
        options=options,
    )


def _statuses(
    pattern: Pattern, run: Run | None, reached: set[str], *, faults: bool = False
) -> tuple[tuple[str, str], ...]:
    """Each invariant's status. A failing run ends the check before its budget is spent, so no
    invariant it did not fail ran to the end: each of those is ``not-run``, never ``pass``."""
    if run is None or run.finding is None:
        return statuses(pattern, None, reached, faults=faults)
    failed = (run.finding.invariant, *run.also_failed)
    return declared_statuses(pattern, failed, reached, stopped=True, faults=faults)


def _staleness(session: Session | None) -> list[str]:
    """The bound a failed invalidation's stale entry was held to (its time to live), key by key."""
    if session is None or not session.staleness:
        return []
    bounds = ", ".join(f"{key}: at most {math.ceil(left):g} s more" for key, left in sorted(session.staleness.items()))
    return [
        f"no-stale-after-failed-invalidate: an entry a failed invalidation left behind stayed stale until its "
        f"time to live ran out ({bounds}); until then a read may return the old value"
    ]


def _sequential_background(pattern: Pattern, run: Any, options: Options) -> list[str]:
    """A pass of a pattern with background work, checked without concurrency, says what it did not
    explore: its background work ran between operations, never across them."""
    if not pattern.background or options.concurrent or options.replay is not None or (run and run.finding):
        return []
    return [
        "background work ran one unit at a time between operations (--no-concurrency): a refresh racing a "
        "write, flushes crossing, a written value left unflushed while another operation runs were not "
        "explored; check with concurrency for those"
    ]


def _warnings(session: Session | None) -> list[str]:
    if session is None:
        return []
    out = [
        f"cache_code entry {name} was never on the call stack of a DB or cache call, so it made no call the "
        "Cache's; name the code that calls env (for a decorator, the decorated function or the decorator "
        "itself), or remove it"
        for name in unseen_cache_code(session)
    ]
    if session.unused_flush:
        out.append(
            "Adapter.flush was never called: the kit calls it only in patterns with background work "
            "(refresh-ahead, write-behind and the pairings with them)"
        )
    if session.spun_out:
        n = session.spun_out
        out.append(
            f"{n} schedule{'s' if n != 1 else ''} cut where an operation polled alone for {MAX_SPIN} rounds (a "
            "lock or a retry loop only another operation ends, or a loop longer than that): a loop that gives "
            f"up after more than {MAX_SPIN} tries was not explored to its end"
        )
    return out


def resolve(
    make: Callable,
    pattern: Pattern | str,
    target: str | None,
    *,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    servers: Servers | None = None,
    session: Session | None = None,
) -> tuple[Pattern, str]:
    """The pattern and the adapter's name in reports, once the factory is known to build an Adapter
    (a definition mistake fails here, before any checking) within ``step_timeout`` seconds. The
    world it builds is the check's ``session``'s."""
    p = _pattern(pattern)
    label = target or target_name(make)

    # The clock is set and put back here, on this thread: a factory left blocked on its own thread
    # must not leave the process on the virtual clock.
    with VirtualClock():
        setup = Setup(
            make=make,
            pattern=p,
            label=label,
            **({"servers": servers} if servers is not None else {}),
            **({"session": session} if session is not None else {}),
        )
        built = within(step_timeout, lambda: World(setup).close())
    if not built:
        raise DefinitionError(
            f"{label}(env) did not return within {step_timeout:g} s (--step-timeout): it waits on something "
            "(a server it connects to, a lock made at import); make it return, or raise --step-timeout",
            target=label,
        )
    return p, label


def within(seconds: float, fn: Callable[[], None]) -> bool:
    """Run ``fn`` on a thread of its own; False if it has not returned after ``seconds`` (it is left
    running, blocked: a plain OS thread, so it does not hold the process open). What it raises is
    raised here."""
    done, raised = RealLock(), []
    done.acquire()

    def run() -> None:
        try:
            fn()
        except BaseException as e:
            raised.append(e)
        finally:
            done.release()

    _thread.start_new_thread(run, ())
    if not done.acquire(timeout=seconds):
        return False
    if raised:
        raise raised[0]
    return True


def target_name(make: Callable) -> str:
    """How reports name a factory: ``module:qualname``, the TARGET that reruns it, when it has one."""
    qualname = getattr(make, "__qualname__", None) or repr(make)
    module = getattr(make, "__module__", None)
    if module and module != "__main__" and "<" not in qualname:
        return f"{module}:{qualname}"
    return qualname


def _pattern(pattern: Pattern | str) -> Pattern:
    return pattern if isinstance(pattern, Pattern) else pattern_named(pattern)


def _validate(
    *,
    max_examples: int | None,
    steps: int | None,
    max_ops: int,
    replay: str | None,
    instances: int,
    step_timeout: float,
    strict: bool = False,
) -> None:
    if not isinstance(strict, bool):
        raise InvalidArgument("strict", strict, f"must be True or False, not {strict!r}")
    for name, value in (("max_examples", max_examples), ("steps", steps)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InvalidArgument(name, value, f"must be a whole number of at least 1, not {value!r}")
    if not isinstance(max_ops, int) or not 2 <= max_ops <= MAX_OPS:
        raise InvalidArgument("max_ops", max_ops, f"must be between 2 and {MAX_OPS}, not {max_ops!r}")
    if isinstance(instances, bool) or not isinstance(instances, int) or not 1 <= instances <= MAX_INSTANCES:
        raise InvalidArgument("instances", instances, f"must be between 1 and {MAX_INSTANCES}, not {instances!r}")
    if (
        isinstance(step_timeout, bool)
        or not isinstance(step_timeout, (int, float))
        or not 0 < step_timeout <= MAX_STEP_TIMEOUT
    ):
        raise InvalidArgument(
            "step_timeout",
            step_timeout,
            f"must be a number of seconds above 0 and at most {MAX_STEP_TIMEOUT:g}, not {step_timeout!r}",
        )
    if replay is not None:
        validate_replay(replay)


def _marked(replay: str) -> dict:
    """The faults a replay string marks, by operation number."""
    if replay.startswith("con/"):
        return parse_concurrent(replay)[0].fault_plan
    return faults_of_sequence(replay)


def _replay_instances(replay: str) -> int:
    """The app instances a replay string uses."""
    if replay.startswith("con/"):
        return parse_concurrent(replay)[0].instances
    return max((instance for _, _, instance in parse_sequence(replay)), default=0) + 1


def _phases(
    setup: Setup,
    *,
    examples: int,
    steps: int,
    seed: int | None,
    concurrency: bool,
    max_ops: int,
    progress: Progress,
    database: Any = None,
    spread: Callable | None = None,
) -> list[CheckPhase]:
    """The phases of a check, cheapest evidence first.

    A short sequential pass, then the small exhaustive interleavings (milliseconds, and where races
    live), then the full sequential budget, then Hypothesis over scenarios and schedules. A race is
    reported about as fast as a plain sequential bug, and a sequential bug keeps its minimal
    sequential program.
    """

    def sequences(n: int) -> CheckPhase:
        return lambda: search_sequences(
            setup, max_examples=n, steps=steps, seed=seed, progress=progress, database=database
        )

    faults = [lambda: search_fault_sequences(setup, progress=progress)] if setup.faults else []
    if not concurrency:
        return [*faults, sequences(examples)]
    # With faults, the fault phase comes first: a run a millisecond, where each fault bug shows at
    # once, minimal as found (a failure Hypothesis finds first would cost its shrinking).
    limit = schedule_limit(examples)
    phases = [
        *faults,
        sequences(min(SMOKE_EXAMPLES, examples)),
        lambda: search_exhaustive(setup, limit=limit, progress=progress, spread=spread and spread(limit)),
    ]
    if examples > SMOKE_EXAMPLES:
        phases.append(sequences(examples))
    phases.append(
        lambda: search_schedules(
            setup, max_examples=examples, max_ops=max_ops, seed=seed, progress=progress, database=database
        )
    )
    return phases


def _spread(setup: Setup, workers: int, progress: Progress) -> Callable[[int], Callable] | None:
    """How the exhaustive phase explores its scenarios, to a limit, over ``workers`` processes (None: here)."""
    if workers == 1:
        return None
    spec = WorkerSpec(
        make=setup.make,
        pattern=setup.pattern.name,
        label=setup.label,
        instances=setup.instances,
        step_timeout=setup.step_timeout,
        faults=setup.faults,
    )
    return lambda limit: (
        lambda scenarios: explore_spread(
            setup, scenarios, limit=limit, progress=progress, workers=workers, build=worker_setup, spec=spec
        )
    )


def _replay_phase(setup: Setup, replay: str, progress: Progress) -> CheckPhase:
    """Rerun exactly what a failing run printed: a sequence, or a scenario with its schedule."""

    def phase() -> Run | None:
        if replay.startswith("con/"):
            scenario, picks, jumps = parse_concurrent(replay)
            # The run that printed the string was never its process's first: what libraries set up
            # on first use (redis-py loading its scripts, fakeredis starting Lua, uuid1 finding the
            # MAC address) takes extra scheduling points once. A throwaway run first does the same.
            run_interleaved(setup, scenario, replaying([]))
            chooser = replaying(picks, jumps)
            run = run_interleaved(setup, scenario, chooser, jumps=max(replay_format.RACE_JUMPS, len(jumps))).as_run()
            if not chooser.matched:
                raise InvalidArgument(
                    "replay",
                    replay,
                    "does not match this run: its choices are not the ones the run offers (it was printed "
                    "for another version of the adapter, or of cachepact); run the check without it",
                )
        else:
            run = rerun_sequence(setup, parse_sequence(replay), faults_of_sequence(replay))
        if "!" in replay and _marked(replay) != _marked(run.replay):
            raise InvalidArgument(
                "replay",
                replay,
                "does not match this run: a call it marks to fail is one the run never made (an operation makes "
                "fewer calls); run the check without it",
            )
        progress.add_run(run)
        return run if run.finding else None

    return phase
