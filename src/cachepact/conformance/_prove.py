"""``prove``: every schedule of a small concurrent scenario of one key, explored exhaustively."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import attrs

from ..errors import InvalidArgument
from ..model import Pattern, Verdict
from ..model._participants import READ, WRITE
from ._check import MAX_OPS, WorkerSpec, resolve, result_of, validate_workers, worker_setup
from .drive.exhaustive import ageing_tick, explore_schedules, spread
from .drive.replay import MAX_INSTANCES, TICK, ConcurrentScenario, Op
from .drive.split import explore_split
from .drive.world import Setup, World
from .judge.findings import statuses
from .record.servers import Servers
from .report.progress import Progress
from .report.result import Options, Result
from .runtime.clock import VirtualClock
from .runtime.session import Session
from .runtime.signals import ServerLost


@attrs.frozen(kw_only=True)
class Proof:
    """What ``prove`` found. ``holds``: every schedule ran and none broke an invariant.

    ``schedules`` ran to the end, ``cut`` stopped early at a state an earlier schedule had reached
    (its future was already explored), ``states`` distinct states were seen. ``complete`` is False
    when ``limit`` stopped the search first; ``counterexample`` is the failing check's ``Result``.
    """

    pattern: str
    target: str
    readers: int
    writers: int
    holds: bool
    complete: bool
    schedules: int
    cut: int
    states: int
    elapsed: float
    counterexample: Result | None = None
    statuses: tuple[tuple[str, str], ...] = ()  # each invariant's, over every schedule run
    workers: int = 1  # processes it was given
    processes: int = 1  # processes it ran on (1 where the tree was explored above the cut)
    shard: str | None = None  # "i/n": it explored only that share of the schedules (a CI matrix job)

    @property
    def outcome(self) -> Verdict:
        """The verdict in the shape ``explore`` and ``check`` give theirs (None: the limit cut it short)."""
        if self.counterexample is not None:
            return self.counterexample.outcome
        return Verdict(holds=True if self.holds else None, checks=self.statuses)

    def report(self) -> str:
        if self.counterexample is not None:
            return self.counterexample.report()
        scope = f"{self.readers} reader(s) + {self.writers} writer(s) of one key"
        if self.shard is not None:
            scope += f", in shard {self.shard} (the whole holds when every shard does)"
        verdict = "HOLDS" if self.holds else "INCOMPLETE (raise limit)"
        where = f" on {self.processes} processes" if self.processes > 1 else ""
        return (
            f"{verdict}: {self.target} under {self.pattern}, every schedule of {scope}: {self.schedules} "
            f"schedules run, {self.cut} cut at a known state, {self.states} states ({self.elapsed:.2f} s{where})"
        )


def prove(
    make: Callable[..., Any],
    pattern: Pattern | str = "cache-aside",
    *,
    readers: int = 2,
    writers: int = 2,
    limit: int = 20_000,
    instances: int = 1,
    target: str | None = None,
    redis: str | None = None,
    db: str | None = None,
    workers: int = 1,
    shard: str | None = None,
) -> Proof:
    """Run ``readers`` reads and ``writers`` writes of one key in flight together under every
    schedule the controlled scheduler can make, and judge each. Keys are independent in every
    pattern, so one key is where races live. Orders that reach a state already explored are cut
    there, which keeps 2 readers + 2 writers to a few thousand runs. With ``instances`` above 1 the
    operations are spread over that many app instances (as processes of a deployment). ``redis``
    and ``db`` put the stores on servers, as for ``check``. Like ``check``, one at a time in a
    process: a call while a check or another proof runs raises ``UsageError`` at once.

    ``workers`` above 1 splits the schedule tree over that many processes, started fresh (the
    factory must be importable by name: a module-level function), which share the states they reach;
    ``shard="i/n"`` explores only the ``i``-th of ``n`` shares of it (1-based), for a CI matrix whose
    jobs each take one. The verdict and the counterexample are the ones a single process finds; see
    the contract's "Proofs over processes and CI jobs".
    """
    for name, value in (("readers", readers), ("writers", writers)):
        if not isinstance(value, int) or value < 0:
            raise InvalidArgument(name, value, f"must be a whole number of at least 0, not {value!r}")
    if not 2 <= readers + writers <= MAX_OPS:
        raise InvalidArgument("readers", readers, f"plus writers must be between 2 and {MAX_OPS} operations")
    if not isinstance(limit, int) or limit < 1:
        raise InvalidArgument("limit", limit, f"must be a whole number of at least 1, not {limit!r}")
    if isinstance(instances, bool) or not isinstance(instances, int) or not 1 <= instances <= MAX_INSTANCES:
        raise InvalidArgument("instances", instances, f"must be between 1 and {MAX_INSTANCES}, not {instances!r}")
    split = _split(make, workers, shard, redis=redis, db=db)
    # What the proof changes as it runs is this session's (a check or proof running refuses it here).
    with Session(kind="proof").claim() as session, session.interrupts:
        servers = Servers(redis=redis, db=db)
        try:
            p, label = resolve(make, pattern, target, servers=servers, session=session)
            ops = ((READ, "k1", 0),) * readers + ((WRITE, "k1", 0),) * writers
            scenario = ConcurrentScenario(ops=spread(ops, instances))

            progress = Progress(interrupts=session.interrupts)
            started = time.perf_counter()
            with VirtualClock() as clock:
                setup = Setup(
                    make=make,
                    pattern=p,
                    label=label,
                    clock=clock,
                    instances=instances,
                    servers=servers,
                    session=session,
                )
                if p.background_named("refresh") is not None and readers:
                    # A refresh starts from a hit on an aged entry: the key is read, alone, and aged
                    # to just short of the TTL that read set (past any refresh point) first.
                    probe = World(setup)
                    try:
                        probe.run(READ, "k1")
                    finally:
                        probe.close()
                    ageing = ageing_tick(setup)
                    scenario = attrs.evolve(scenario, prefix=(Op(READ, "k1"), Op(TICK, ageing)))
                if split is None:
                    ex = explore_schedules(setup, scenario, limit=limit, on_run=progress.add_run)
                else:
                    ex = explore_split(
                        setup,
                        scenario,
                        limit=limit,
                        progress=progress,
                        workers=workers,
                        shard=split,
                        build=worker_setup,
                        spec=WorkerSpec(make=make, pattern=p.name, instances=instances, kind="proof"),
                    )
            elapsed = time.perf_counter() - started
            failing = ex.failing.as_run() if ex.failing is not None else None
        except ServerLost as e:
            raise e.error from None
        finally:
            servers.close()
        counterexample = (
            None
            if failing is None
            else result_of(
                failing,
                pattern=p,
                target=label,
                progress=progress,
                elapsed=elapsed,
                options=Options(instances=instances),
                session=session,
            )
        )
    return Proof(
        pattern=p.name,
        target=label,
        readers=readers,
        writers=writers,
        holds=failing is None and ex.complete,
        complete=ex.complete,
        schedules=ex.runs,
        cut=ex.pruned,
        states=ex.states,
        elapsed=elapsed,
        counterexample=counterexample,
        statuses=counterexample.statuses if counterexample is not None else statuses(p, None, progress.reached),
        workers=workers,
        shard=shard,
        processes=ex.processes,
    )


def _split(
    make: Callable[..., Any], workers: int, shard: str | None, *, redis: str | None, db: str | None
) -> tuple[int, int] | None:
    """The shard (index from 0, count) to explore, or None for the whole tree in this process."""
    validate_workers(make, workers, redis=redis, db=db, what="a proof")
    index, count = 0, 1
    if shard is not None:
        found = re.fullmatch(r"([1-9][0-9]*)/([1-9][0-9]*)", shard) if isinstance(shard, str) else None
        if found is None or int(found.group(1)) > int(found.group(2)):
            raise InvalidArgument("shard", shard, f"must be 'i/n' with 1 <= i <= n (this job's share), not {shard!r}")
        index, count = int(found.group(1)) - 1, int(found.group(2))
    return None if workers == 1 and count == 1 else (index, count)
