"""The outcome of a check: a frozen value, rendered by ``text`` as text, JSON and JUnit XML, and the
``Options`` it ran with."""

from __future__ import annotations

from typing import Any

import attrs

from ..._argtypes import DEFAULT_STEP_TIMEOUT
from ...model import Step, Trace, Verdict, pattern_named
from ...model._properties import BY_NAME, expected_situations, situations_of
from ..judge.findings import Finding
from . import text as _report
from .progress import Unfinished


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


@attrs.frozen(kw_only=True)
class Options:
    """How a check was asked to run, as its report repeats it (and its first line reruns it)."""

    max_examples: int | None = None
    seed: int | None = None
    concurrent: bool = True
    max_ops: int = 3
    instances: int = 1
    step_timeout: float = DEFAULT_STEP_TIMEOUT
    replay: str | None = None  # the replay string the check reran, if it was one
    redis: str | None = None  # the redis= URL it ran on (password masked), if one
    db: str | None = None  # the db= URL it ran on (password masked), if one
    strict: bool = False  # a pass must also be complete: every invariant run, nothing out of sight
    faults: int = 0  # calls to the stores that may fail in a run (--faults); 0: none


@attrs.frozen(kw_only=True)
class Result:
    """What ``check`` found. ``passed`` is the verdict; ``report()`` the text the CLI prints.

    For a failure: the ``finding``, the counterexample's ``steps``, the ``replay`` string that reruns
    it, the operations that were in flight together (``columns``, one table column each; empty for
    a sequential counterexample), its ``context_switches`` and ``failing_operations``, and the
    ``final_state`` it left (key, DB, the cache entry decoded, and raw when that differs), and the
    app instance each of its operations ran on (``placement``). For every check: each invariant's
    status (``statuses``: ``pass``, ``fail`` or ``not-run``, the last when nothing the run did could
    have broken it), the situations ``reached``, the ``examples`` and ``operations`` run, how often a
    thread blocked where the kit could not see (``uncontrolled``), the Redis commands whose effect it
    could not observe (``unobserved``, their keys unnamed), ``warnings`` about the adapter's
    definition, the ``options`` it ran with (also read one by one: ``seed``, ``concurrent``,
    ``max_examples``, ``max_ops``, ``instances``, ``step_timeout``, ``redis``, ``db``, ``strict``,
    and ``replayed``, the replay string it reran), whether Ctrl-C cut it short (``interrupted``), and
    how far its exhaustive phase went: the small ``races`` (and, with faults, ``fault_races``) it
    explored without a failure, those ``unfinished`` at the check's limit of schedules (each a
    ``race``, the ``schedules`` it met, whether it is ``faulted``), and ``spun_out``, the schedules
    cut where an operation polled alone.

    A check stops at its first failure, so then every other invariant is ``not-run``
    (``why_not_run`` says so, with the examples it ran). Under ``strict``, a check that found
    nothing still fails when it was not complete; ``strict_failures`` says why, one reason each.
    """

    pattern: str
    target: str
    finding: Finding | None
    steps: tuple[Step, ...] = ()
    replay: str = ""
    final_state: tuple[tuple[str, ...], ...] = ()
    columns: tuple[str, ...] = ()
    placement: tuple[tuple[str, int], ...] = ()
    context_switches: int = 0
    failing_operations: int = 0
    reached: tuple[str, ...] = ()
    statuses: tuple[tuple[str, str], ...] = ()
    examples: int = 0
    operations: int = 0
    uncontrolled: int = 0
    unobserved: tuple[str, ...] = ()  # Redis commands whose keys the kit could not name: not judged
    warnings: tuple[str, ...] = ()
    elapsed: float = 0.0
    diagram: str | None = None
    interrupted: bool = False
    notes: tuple[str, ...] = ()  # where it ran, and what the kit cleaned up there
    # How long an entry a failed invalidation left could stay stale (its time to live left), per
    # cache key: a pass under faults states the bound it relies on (``no-stale-after-failed-invalidate``).
    bounds: tuple[str, ...] = ()
    # The exhaustive phase's small races explored without a failure (with faults, also its races
    # with a fault), those of them with more schedules than the check's limit (explored that far:
    # ``Unfinished``), and the schedules cut where an operation polled alone (the warning's count).
    races: int = 0
    fault_races: int = 0
    unfinished: tuple[Unfinished, ...] = ()
    spun_out: int = 0
    options: Options = attrs.field(factory=Options)

    # The options, read one by one as the report, the command line and users do.
    @property
    def seed(self) -> int | None:
        return self.options.seed

    @property
    def concurrent(self) -> bool:
        return self.options.concurrent

    @property
    def max_examples(self) -> int | None:
        return self.options.max_examples

    @property
    def max_ops(self) -> int:
        return self.options.max_ops

    @property
    def instances(self) -> int:
        return self.options.instances

    @property
    def step_timeout(self) -> float:
        return self.options.step_timeout

    @property
    def replayed(self) -> str | None:
        """The replay string this check reran, if it was one."""
        return self.options.replay

    @property
    def redis(self) -> str | None:
        """The ``redis=`` URL it ran on (password masked), if one."""
        return self.options.redis

    @property
    def db(self) -> str | None:
        """The ``db=`` URL it ran on (password masked), if one."""
        return self.options.db

    @property
    def strict(self) -> bool:
        return self.options.strict

    @property
    def passed(self) -> bool:
        if self.finding is not None or self.interrupted:
            return False
        return not (self.strict and self.strict_failures)

    @property
    def verdict(self) -> str:
        if self.interrupted and self.finding is None:
            return "interrupted"
        return "pass" if self.passed else "fail"

    @property
    def stopped(self) -> bool:
        """The check stopped at its first failure: no other invariant ran to the end of its budget."""
        return self.finding is not None

    def why_not_run(self, invariant: str) -> str:
        """Why ``invariant`` is ``not-run``: the check stopped first, or nothing reached could break it."""
        if self.stopped:
            return f"the check stopped at the first failure after {_plural(self.examples, 'example')}"
        shown = situations_of(pattern_named(self.pattern), concurrent=self.concurrent, faults=bool(self.options.faults))
        needs = [s for s in BY_NAME[invariant].exercised_by if s in shown] if invariant in BY_NAME else []
        return "nothing reached could break it" + (f" (no run reached {' or '.join(needs)})" if needs else "")

    @property
    def strict_failures(self) -> tuple[str, ...]:
        """Why ``strict`` fails this check, one reason each (empty when it is complete): an invariant
        not run, waits out of the kit's control, Redis commands whose effect it could not observe.
        Empty for a check that failed: strict fails a check that found nothing, and one failure is one
        CI failure (the invariants the stop left unrun are ``not-run`` in its report all the same)."""
        if self.finding is not None:
            return ()
        out = [f"{name} not run: {self.why_not_run(name)}" for name, status in self.statuses if status == "not-run"]
        if self.uncontrolled:
            out.append(
                f"{_plural(self.uncontrolled, 'time')} a thread blocked out of the kit's control, so the "
                "interleavings there were not explored (make locks inside make(env))"
            )
        if self.unobserved:
            out.append(
                f"the effect of {', '.join(self.unobserved)} was not observed: the kit could not name the keys "
                "it touched (use commands that name their keys)"
            )
        return tuple(out)

    @property
    def command(self) -> str:
        """The command line that runs this check again (the report's first line)."""
        flags = [f"--pattern {self.pattern}"]
        if not self.concurrent:
            flags.append("--no-concurrency")
        if self.instances != (2 if self.concurrent else 1):
            flags.append(f"--instances {self.instances}")
        if self.max_examples is not None:
            flags.append(f"--max-examples {self.max_examples}")
        if self.max_ops != 3:
            flags.append(f"--max-ops {self.max_ops}")
        if self.seed is not None:
            flags.append(f"--seed {self.seed}")
        flags += self._timeout_flag() + self._server_flags()
        if self.strict:
            flags.append("--strict")
        flags += self._faults_flag()
        if self.replayed is not None:
            flags.append(f"--replay '{self.replayed}'")
        return f"cachepact check {self.target} {' '.join(flags)}"

    def _faults_flag(self) -> list[str]:
        """``--faults`` as the check ran it: a replay needs its budget too (an outage, ``!2b+``, fails
        as many calls as the budget allows)."""
        if not self.options.faults:
            return []
        return ["--faults" if self.options.faults == 3 else f"--faults {self.options.faults}"]

    def _server_flags(self) -> list[str]:
        return [f"--{flag} {url}" for flag, url in (("redis", self.redis), ("db", self.db)) if url is not None]

    def _timeout_flag(self) -> list[str]:
        return [] if self.step_timeout == DEFAULT_STEP_TIMEOUT else [f"--step-timeout {self.step_timeout:g}"]

    @property
    def outcome(self) -> Verdict:
        """The verdict in the shape ``explore`` and ``prove`` give theirs."""
        holds = None if self.interrupted else self.passed
        steps = Trace(steps=self.steps, title=f"{self.target}: {self.finding.invariant}") if self.finding else None
        return Verdict(holds=holds, checks=self.statuses, counterexample=steps)

    def status(self, invariant: str) -> str:
        """The invariant's status; ``not-run`` for one this check did not judge (one that does not
        apply to the pattern is absent from ``statuses``)."""
        return dict(self.statuses).get(invariant, "not-run")

    @property
    def not_reached(self) -> tuple[str, ...]:
        names = expected_situations(
            pattern_named(self.pattern), concurrent=self.concurrent, faults=bool(self.options.faults)
        )
        return tuple(s for s in names if s not in self.reached)

    @property
    def replay_command(self) -> str:
        instances = [f"--instances {self.instances}"] if self.instances != 2 else []  # 2: a replay's default
        flags = " ".join(
            [
                f"--pattern {self.pattern}",
                *instances,
                *self._timeout_flag(),
                *self._server_flags(),
                *self._faults_flag(),
                f"--replay '{self.replay}'",
            ]
        )
        return f"cachepact check {self.target} {flags}"

    def report(self) -> str:
        """The text report: a contract the tests pin (spec/contract.md, "Reports")."""
        return _report.text(self)

    def checks(self) -> list[dict[str, Any]]:
        """One entry per invariant: ``{"invariant", "status", "counterexample"}``."""
        return _report.checks(self)

    def to_json(self) -> str:
        return _report.to_json(self)

    def to_junit(self) -> str:
        return _report.to_junit(self)
