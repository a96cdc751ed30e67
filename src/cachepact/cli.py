"""The ``cachepact`` command line. Exit codes are a contract: 0 held, 1 violated, 2 unusable input."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from ._argtypes import DEFAULT_STEP_TIMEOUT, MAX_INSTANCES, MAX_STEP_TIMEOUT, MAX_WORKERS, seconds, whole_number
from .backends import IN_PROCESS
from .conformance.drive.replay import MAX_OPS
from .diagrams import EXTENSIONS, FORMATS, format_for, render, sequence_graph
from .errors import (
    BackendError,
    CachepactError,
    Interrupted,
    InvalidArgument,
    MissingDependency,
    StateSpaceTooLarge,
    UsageError,
)
from .model import (
    CONVERGES,
    DEFAULT_MAX_STATES,
    DESIGN_MEANING,
    FLOWS,
    INVARIANTS,
    NAMED,
    ON_FAILURE,
    RACES,
    RECOVERIES,
    SITUATIONS,
    Exploration,
    Scenario,
    Trace,
    convergence,
    designs_for,
    explore,
    flow,
    pattern_named,
    pattern_names,
    program_table,
    render_table,
    responsibility_table,
)

EXIT_OK, EXIT_VIOLATED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# explore's bounds: past these the model's state space outgrows any machine (4 readers and 4
# writers over 2 keys is already 6.3M states unreduced), so a typo fails at once, not after GBs.
MAX_EXPLORE_OPS, MAX_EXPLORE_KEYS, MAX_EXPLORE_STATES = 8, 4, 50_000_000
MAX_EXPLORE_FAULTS = 3


class _ShowDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` gives each option's default, except where there is none to give (None, a flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _ShowDefaults)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see '{self.prog} --help'")


def _pattern(text: str):
    try:
        return pattern_named(text)
    except InvalidArgument as e:
        raise argparse.ArgumentTypeError(e.problem) from None


def _flag(parameter: str) -> str:
    """The command line's flag for a Python API parameter: ``max_ops`` is ``--max-ops``."""
    return "--" + parameter.replace("_", "-")


def _usage(e: CachepactError) -> UsageError:
    """A library error as the one line the command line prints, in its own flags."""
    if isinstance(e, InvalidArgument):
        return UsageError(f"{_flag(e.parameter)} {e.problem}")
    if isinstance(e, BackendError):  # the in-process server was no flag's: it has no URL
        where = e.url if e.url == IN_PROCESS else f"{_flag(e.parameter)} {e.url}"
        return UsageError(f"{where}: {e.problem}")
    if isinstance(e, StateSpaceTooLarge):
        return UsageError(
            f"the state space of '{e.scenario.name}' passes --max-states {e.max_states}; "
            "raise --max-states or lower --readers/--writers/--keys"
        )
    return UsageError(str(e))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cachepact", description="Formal model and conformance kit for caching patterns.")
    parser.add_argument("--version", action="version", version=f"cachepact {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    explain = commands.add_parser("explain", help="print who does what in each pattern, read off the model")
    explain.add_argument("--pattern", type=_pattern, help=f"one of: {', '.join(pattern_names())} (default: all)")
    explain.add_argument("--leases", action="store_true", help="the lease-guarded variant")
    explain.add_argument("--locks", action="store_true", help="the serialised variant: a per-key lock")
    explain.add_argument("--format", choices=("text", "markdown"), default="text", help="how to print the table")
    explain.add_argument(
        "--programs", action="store_true", help="the read and write programs themselves, as the model defines them"
    )
    explain.add_argument(
        "--invariants", action="store_true", help="each invariant as declared: when it holds, where it applies"
    )
    explain.add_argument(
        "--situations", action="store_true", help="each situation a run reports as reached, as declared"
    )
    explain.add_argument(
        "--faults",
        action="store_true",
        help="what each step asks when its call fails, and which recovery designs converge (explored)",
    )

    ex = commands.add_parser("explore", help="exhaustively explore the model of a pattern for small bounds")
    ex.add_argument("--pattern", type=_pattern, required=True, help=f"one of: {', '.join(pattern_names())}")
    ex.add_argument("--leases", action="store_true", help="fill through memcache-style leases")
    ex.add_argument(
        "--locks", action="store_true", help="serialise each key: a lock from before the DB call to the op's end"
    )
    ex.add_argument("--readers", type=whole_number(1, MAX_EXPLORE_OPS), default=1, help="reads in flight")
    ex.add_argument("--writers", type=whole_number(1, MAX_EXPLORE_OPS), default=1, help="writes in flight")
    ex.add_argument("--keys", type=whole_number(1, MAX_EXPLORE_KEYS), default=1, help="keys they spread over")
    ex.add_argument("--sequential", action="store_true", help="one operation at a time (default: interleaved)")
    ex.add_argument("--absent", action="store_true", help="every key starts with no value in the DB")
    ex.add_argument("--evictions", action="store_true", help="the cache may drop any entry at any moment")
    ex.add_argument(
        "--clock",
        action="store_true",
        help="time moves inside the run: a lock or lease held past its timeout is gone (with --locks or --leases)",
    )
    ex.add_argument(
        "--faults",
        type=whole_number(0, MAX_EXPLORE_FAULTS),
        default=0,
        help="how many of the writes' cache steps may fail before taking effect (default: 0)",
    )
    ex.add_argument(
        "--recovery",
        choices=RECOVERIES,
        default="give-up",
        help="what a write does when its cache step fails (with --faults)",
    )
    ex.add_argument("--ttl", action="store_true", help="entries have a time to live: any may expire at any moment")
    ex.add_argument(
        "--background-workers",
        type=whole_number(1, MAX_EXPLORE_OPS),
        default=2,
        help="refreshes and flushes of each kind that may run at once (refresh-ahead, write-behind)",
    )
    ex.add_argument(
        "--max-states",
        type=whole_number(1, MAX_EXPLORE_STATES),
        default=DEFAULT_MAX_STATES,
        help="stop with exit 2 past this many states",
    )
    ex.add_argument("--no-reduce", action="store_true", help="explore without key/symmetry reduction")
    ex.add_argument(
        "--format", choices=("text", "markdown"), default="text", help="markdown: tables for documents, no timings"
    )
    ex.add_argument(
        "--diagram", metavar="FILE", help="write the first counterexample's sequence diagram (.mmd .dot .svg .png)"
    )

    dg = commands.add_parser("diagram", help="draw a pattern's flow as a sequence diagram")
    dg.add_argument("--pattern", type=_pattern, required=True, help=f"one of: {', '.join(pattern_names())}")
    dg.add_argument(
        "--flow",
        choices=FLOWS,
        required=True,
        help="refresh, flush: an operation and the background work it starts; "
        f"{', '.join(RACES)}: the races (with --leases or --locks: the fix)",
    )
    dg.add_argument("--leases", action="store_true", help="the lease-guarded variant")
    dg.add_argument("--locks", action="store_true", help="the serialised variant: a per-key lock")
    dg.add_argument("--format", choices=FORMATS, default=None, help="default: from the file's extension, else mermaid")
    dg.add_argument("-o", "--output", metavar="FILE", help="write here (text formats go to stdout without it)")

    ck = commands.add_parser("check", help="check your cache adapter against a pattern (the CI gate)")
    ck.add_argument(
        "target", metavar="TARGET", help="module:attr or path/to/file.py:attr, a factory make(env) -> cachepact.Adapter"
    )
    ck.add_argument("--pattern", type=_pattern, required=True, help=f"one of: {', '.join(pattern_names())}")
    ck.add_argument("--no-concurrency", action="store_true", help="run only the sequential checks")
    ck.add_argument(
        "--instances",
        type=whole_number(1, MAX_INSTANCES),
        default=None,
        metavar="N",
        help="app instances (processes) sharing the DB and cache, each from its own make(env) "
        "(default: 2, or 1 with --no-concurrency)",
    )
    ck.add_argument(
        "--workers",
        type=whole_number(1, MAX_WORKERS),
        default=1,
        metavar="N",
        help="explore the concurrent scenarios of the exhaustive phase over N processes (the same verdict and "
        "replay as one; the target must be importable, not with --redis or --db)",
    )
    ck.add_argument(
        "--step-timeout",
        type=seconds(MAX_STEP_TIMEOUT),
        default=DEFAULT_STEP_TIMEOUT,
        metavar="S",
        help="seconds one DB or cache call, or an operation's own work, may block before it is the finding timeout",
    )
    ck.add_argument(
        "--redis",
        metavar="URL",
        default=None,
        help="put env.redis and env.cache on this Redis server, redis://[user:password@]host:port/N, whose logical "
        "database N must be empty; the kit removes exactly the keys it creates (default: env.redis on an "
        "in-process fakeredis server, env.cache in memory)",
    )
    ck.add_argument(
        "--db",
        metavar="URL",
        default=None,
        help="put env.db in SQLite (sqlite:///file.db) or PostgreSQL (postgresql://user@host:port/dbname), in a table "
        "of the kit's own that it drops (default: in memory)",
    )
    ck.add_argument(
        "--example-db",
        metavar="URL",
        default=None,
        help="keep the failures Hypothesis shrank in this Redis (redis://host:port/N, keys cachepact-example:*) and "
        "try those saved for this adapter and pattern first: CI runners sharing it replay each other's failures",
    )
    ck.add_argument(
        "--max-examples",
        type=whole_number(1),
        default=None,
        metavar="N",
        help="sequences and races to draw, and 50 schedules an example for each small race explored "
        "(1,000 to 20,000) (default: the active Hypothesis profile's max_examples, 100 unless set)",
    )
    ck.add_argument(
        "--seed", type=int, default=None, metavar="N", help="seed for a reproducible run (default: derandomized)"
    )
    ck.add_argument("--replay", metavar="STRING", help="rerun exactly the sequence a failing run printed")
    ck.add_argument(
        "--max-ops",
        type=whole_number(2, MAX_OPS),
        default=3,
        metavar="N",
        help=f"operations in flight per concurrent scenario (2-{MAX_OPS})",
    )
    ck.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 also when the check was not complete: an invariant not run, a wait out of the kit's control, "
        "or a Redis command whose effect the kit could not observe",
    )
    ck.add_argument(
        "--faults",
        type=whole_number(1, 10),
        nargs="?",
        const=3,
        default=0,
        metavar="N",
        help="make calls to the stores fail, at most N a run (default 3): before taking effect, or with the "
        "reply lost; the fault invariants are judged too",
    )
    ck.add_argument("--report-json", metavar="FILE", help="write the verdict and every check as JSON (also on Ctrl-C)")
    ck.add_argument("--junit-xml", metavar="FILE", help="write one JUnit test case per invariant (also on Ctrl-C)")
    ck.add_argument(
        "--diagram", metavar="FILE", help="write the counterexample's sequence diagram (.mmd .dot .svg .png)"
    )
    return parser


def cmd_explain(args: argparse.Namespace) -> int:
    # Every pattern has a name, but a table of all nine pairings is too wide to read: by default the
    # named ones (a composition is one --pattern away).
    patterns = [args.pattern] if args.pattern else list(NAMED)
    markdown = args.format == "markdown"
    views = [
        flag
        for flag, on in (
            ("--programs", args.programs),
            ("--invariants", args.invariants),
            ("--situations", args.situations),
            ("--faults", args.faults),
        )
        if on
    ]
    if len(views) > 1:
        raise UsageError(f"{' and '.join(views)} are views of their own; ask for one")
    if views and (args.leases or args.locks):
        raise UsageError(f"{views[0]} does not depend on --leases or --locks; drop them")
    if args.programs:
        _print(program_table(patterns, markdown=markdown))
        return EXIT_OK
    if args.invariants:
        _print(invariant_table(patterns, markdown=markdown))
        return EXIT_OK
    if args.situations:
        _print(situation_table(patterns, markdown=markdown))
        return EXIT_OK
    if args.faults:
        _print(fault_tables(patterns, markdown=markdown))
        return EXIT_OK
    if args.leases and args.locks:
        raise UsageError("--leases and --locks are two fixes; ask for one")
    lines = [responsibility_table(patterns, leases=args.leases, locks=args.locks, markdown=markdown)]
    if not markdown:
        lines.append("")
        lines += [f"{p.name}: {p.summary}" for p in patterns]
        writes = {p.writes.name: p.writes for p in patterns}
        lines += [
            f"A write ({name}): {half.summary}; the model's fix for its races: --{half.fix}."
            for name, half in writes.items()
        ]
        if args.locks:
            lines.append(
                "cache.lock(k1) / cache.unlock(k1): the key's lock, shared by every app instance (env.cache.add "
                "of a lock key with a TTL, polled, then delete; or a redis-py Lock), not an env.cache method."
            )
    _print("\n".join(lines))
    return EXIT_OK


def invariant_table(patterns: list, *, markdown: bool = False) -> str:
    """The invariants as declared, for ``patterns``: name, when it holds, the patterns it applies to."""
    rows = []
    for inv in INVARIANTS:
        applies = [p.name for p in patterns if inv.applies(p)]
        if not applies:
            continue
        where = "every pattern" if len(applies) == len(patterns) > 1 else ", ".join(applies)
        where += ", with --faults" if inv.faults else ""
        name = f"`{inv.name}`" if markdown else inv.name
        by = ", ".join(f"`{s}`" if markdown else s for s in inv.exercised_by)
        rows.append((name, inv.holds_when, where, by, inv.remedy))
    header = ("invariant", "holds when", "applies to", "exercised by (else not-run)", "when it fails")
    return render_table(header, rows, markdown=markdown)


_SHOWN = {
    "always": "always (else under Never reached)",
    "concurrent": "with concurrency (else under Never reached)",
    "faults": "with --faults (else under Never reached)",
    "extra": "once reached",
    "internal": "never (it only exercises invariants)",
}


def situation_table(patterns: list, *, markdown: bool = False) -> str:
    """The situations as declared: what each means, when a report lists it, the patterns it has."""
    rows = []
    for s in SITUATIONS:
        applies = [p.name for p in patterns if s.applies(p)]
        if not applies:
            continue
        where = "every pattern" if len(applies) == len(patterns) > 1 else ", ".join(applies)
        rows.append((f"`{s.name}`" if markdown else s.name, s.meaning, _SHOWN[s.shown], where))
    return render_table(("situation", "means", "listed", "applies to"), rows, markdown=markdown)


def fault_tables(patterns: list, *, markdown: bool = False) -> str:
    """What each step asks when its call fails, then each recovery design of the write, explored:
    whether an entry a failed invalidation left converges, and whether reads stay fresh meanwhile."""
    rows = []
    for p in patterns:
        for what, program in (("read", p.read), ("write", p.write)):
            for instr in program:
                if instr.kind in ON_FAILURE:
                    step = f"{what}: {instr.kind.value} ({instr.by}) fails"
                    rows.append((p.name, step, ON_FAILURE[instr.kind]))
    out = [render_table(("pattern", "step", "what the pattern asks"), rows, markdown=markdown), ""]
    drows = []
    for p in patterns:
        results = convergence(p)
        if not results:
            drows.append((p.name, "-", "-", "-", "-", "no cache step beside a put: the write's store is its write"))
            continue
        for r in results:
            bad = [name for name, held in r.verdicts if not held and name not in (CONVERGES, "fresh-read")]
            drows.append(
                (
                    p.name,
                    r.name,
                    "converges" if r.converges else "stale forever",
                    "fresh" if r.fresh else "may read the old value",
                    str(r.states),
                    DESIGN_MEANING[r.recovery] + (f"; also fails {', '.join(bad)}" if bad else ""),
                )
            )
    header = ("pattern", "when a write's cache step fails", CONVERGES, "fresh-read", "states", "the design")
    out.append(render_table(header, drows, markdown=markdown))
    if not markdown:
        out += [
            "",
            "Explored: 2 readers and 1 writer over one key, reads through leases (locks for a write that stores),",
            "one call failing before taking effect. Each counterexample: cachepact explore --pattern P --leases",
            "--readers 2 --faults 1 --recovery R [--ttl]. A time to live is the stated bound: it converges, but a",
            "read meanwhile may see the old value, which an acknowledged write makes a fresh-read failure.",
        ]
    return "\n".join(out)


def cmd_explore(args: argparse.Namespace) -> int:
    if args.diagram:
        _diagram_format(args.diagram, None, "--diagram")  # before a long exploration, not after
    scenario = Scenario(
        pattern=args.pattern,
        leases=args.leases,
        locks=args.locks,
        readers=args.readers,
        writers=args.writers,
        keys=args.keys,
        sequential=args.sequential,
        absent=args.absent,
        evictions=args.evictions,
        clock=args.clock,
        workers=args.background_workers,
        faults=args.faults,
        recovery=args.recovery,
        ttl=args.ttl,
    )
    if args.recovery != "give-up" and not args.faults:
        raise UsageError(f"--recovery {args.recovery} says what a write does when a call fails; add --faults 1")
    designs = designs_for(args.pattern)
    if args.faults and not designs:
        raise UsageError(
            f"--faults does not apply to {args.pattern.name}: its write's store is its only step, no entry is "
            "left beside a put; drop --faults"
        )
    if args.faults and args.recovery not in designs:
        raise UsageError(
            f"--recovery {args.recovery} does not apply to {args.pattern.name}: its write does not invalidate "
            f"beside a put; use one of {', '.join(designs)}"
        )
    result = explore(scenario, reduce=not args.no_reduce, max_states=args.max_states)
    _print(format_exploration(result, markdown=args.format == "markdown"))
    if args.diagram and not result.holds:
        prop = result.violations()[0]
        cex = prop.counterexample
        assert cex is not None
        title = f"{result.scenario.pattern.name}: {prop.name} violated"
        _write_diagram(cex, args.diagram, None, culprit=len(cex) - 1, title=title)
        _print(f"\nDiagram: {args.diagram}")
    return EXIT_OK if result.holds else EXIT_VIOLATED


def _diagram_format(path: str | None, fmt: str | None, flag: str) -> str:
    """The format a diagram will be written in, checked with the path before any work is done."""
    try:
        fmt = format_for(path, fmt)
    except InvalidArgument:
        if flag == "-o":
            raise UsageError(
                f"-o {path}: cannot tell the format from its extension; add --format {{{','.join(FORMATS)}}}"
            ) from None
        raise UsageError(f"{flag} {path}: name a file ending in {', '.join(EXTENSIONS)}") from None
    if path is None and fmt in ("svg", "png"):
        raise UsageError(f"--format {fmt} is binary; name a file with -o FILE")
    _writable(path, flag)
    return fmt


def _write_diagram(
    trace: Trace,
    path: str | None,
    fmt: str | None,
    *,
    culprit: int | None = None,
    title: str | None = None,
    flag: str = "--diagram",
) -> None:
    """Render a trace; with no path, text formats go to stdout. Every failure is a UsageError."""
    fmt = _diagram_format(path, fmt, flag)
    graph = sequence_graph(trace, culprit=culprit, title=title)
    try:
        out = render(graph, fmt, path)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}; name a writable file") from None
    except MissingDependency as e:
        instead = "use --format mermaid|dot" if flag == "-o" else "name a .mmd or .dot file"
        raise UsageError(
            f"{flag} {path}: {fmt} needs {e.package}; pip install '{e.requirement}' or {instead}"
        ) from None
    if path is None:
        _print(out.rstrip("\n"))  # type: ignore[union-attr]


def cmd_diagram(args: argparse.Namespace) -> int:
    try:
        trace = flow(args.pattern, args.flow, leases=args.leases, locks=args.locks)
    except InvalidArgument as e:
        raise UsageError(f"--flow {e.problem}") from None
    culprit = None
    # The race's last step is the culprit unless the variant drawn is a fix of this pattern's races
    # (the lock fixes every pattern's; leases only those whose write deletes).
    fixed = args.locks or (args.leases and args.pattern.fix == "leases")
    if args.flow in RACES and not fixed:
        culprit = len(trace) - 1  # the stale fill, the late flush, the dropped dirty entry
    _write_diagram(trace, args.output, args.format, culprit=culprit, flag="-o")
    return EXIT_OK


def format_exploration(result: Exploration, *, markdown: bool = False) -> str:
    how = f"reduced to {result.explored.keys} key, readers and writers symmetric" if result.reduced else "no reduction"
    # Markdown goes into documents (spec/), where a timing would change on every run.
    timing = "" if markdown else f" in {result.elapsed:.2f} s"
    summary = [
        f"explore {result.scenario.name}",
        f"verdict: {result.verdict}",
        f"explored: {result.states} states, {result.transitions} transitions ({how}){timing}",
        f"reached: {', '.join(result.reached) or 'nothing'}",
    ]
    if result.not_reached:
        summary.append(f"never reached: {', '.join(result.not_reached)}")
    lines = [f"- {line}" for line in summary] if markdown else summary
    for prop in result.properties:
        lines.append("")
        if prop.holds:
            lines.append(f"{prop.name}: holds")
            continue
        cex = prop.counterexample
        assert cex is not None
        lines.append(f"{prop.name}: VIOLATED; shortest counterexample, {len(cex)} steps:")
        if markdown:
            lines.append("")
        lines.append(cex.table(markdown=markdown))
    return "\n".join(lines)


def _writable(path: str | None, flag: str) -> None:
    """Refuse, before the run, an output that cannot be written; creates and removes nothing."""
    if path is None:
        return
    target = os.path.realpath(path)  # through a symlink, to where the file will be
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise UsageError(f"{flag} {path}: folder {folder} does not exist; create it or name another file")
    if (
        os.path.isdir(target)
        or not os.access(folder, os.W_OK)
        or (os.path.exists(target) and not os.access(target, os.W_OK))
    ):
        raise UsageError(f"{flag} {path}: cannot write there; name a writable file")
    if os.path.isfile(target):
        try:  # the only sure test for an existing file (root may write anywhere, yet not into /proc)
            with open(target, "a"):
                pass
        except OSError as e:
            raise UsageError(f"{flag} {path}: cannot write there ({e.strerror}); name a writable file") from None


def cmd_check(args: argparse.Namespace) -> int:
    from ._held_logs import HeldLogs
    from ._target import load_target
    from .conformance._check import check

    outputs = {flag: path for flag, path in _outputs(args) if path}
    _distinct(outputs)
    for flag, path in outputs.items():
        _writable(path, flag)
    if args.diagram:
        _diagram_format(args.diagram, None, "--diagram")
    tty = sys.stderr.isatty()
    line = _ProgressLine() if tty else None
    held = HeldLogs()
    try:
        with held:
            result = check(
                load_target(args.target),
                args.pattern,
                max_examples=args.max_examples,
                seed=args.seed,
                replay=args.replay,
                concurrency=not args.no_concurrency,
                max_ops=args.max_ops,
                instances=args.instances,
                step_timeout=args.step_timeout,
                target=args.target,
                on_progress=line,
                redis=args.redis,
                db=args.db,
                strict=args.strict,
                faults=args.faults,
                example_db=args.example_db,
                workers=args.workers,
            )
    except Interrupted as e:
        if line is not None:
            line.clear()
        try:
            written = _write_reports(e.result, args)
            partial = f"; what ran is in {' and '.join(written)}" if written else ""
        except UsageError as problem:
            partial = f"; {problem}"
        print(
            f"cachepact: interrupted after {_counted(e.result)}{partial}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        if line is not None:
            line.clear()
        if (note := held.summary()) is not None:
            print(note, file=sys.stderr)
    if not tty:
        print(
            f"cachepact: {result.verdict}: {_counted(result)} in {result.elapsed:.1f} s",
            file=sys.stderr,
        )
    f = result.finding
    if args.diagram and f is not None:  # a strict failure has no counterexample to draw
        import attrs

        _write_diagram(
            Trace(steps=result.steps),
            args.diagram,
            None,
            culprit=f.culprit,
            title=f"{result.pattern}: {f.invariant} ({args.target})",
        )
        result = attrs.evolve(result, diagram=args.diagram)
    _write_reports(result, args)
    _print(result.report())
    return EXIT_OK if result.passed else EXIT_VIOLATED


def _outputs(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    return [("--report-json", args.report_json), ("--junit-xml", args.junit_xml), ("--diagram", args.diagram)]


def _distinct(outputs: dict[str, str]) -> None:
    """Two outputs to one file would silently keep only the last."""
    seen: dict[str, str] = {}
    for flag, path in outputs.items():
        real = os.path.realpath(path)
        if real in seen:
            raise UsageError(f"{seen[real]} and {flag} both name {path}; give each its own file")
        seen[real] = flag


def _write_reports(result, args: argparse.Namespace) -> list[str]:
    """Write the JSON and JUnit files asked for; the paths written. A failure is one usage line."""
    written = []
    for flag, path, text in (
        ("--report-json", args.report_json, lambda: result.to_json() + "\n"),
        ("--junit-xml", args.junit_xml, result.to_junit),
    ):
        if not path:
            continue
        try:
            Path(path).write_text(text())
        except OSError as e:
            raise UsageError(f"{flag} {path}: cannot write there ({e.strerror}); name a writable file") from None
        written.append(path)
    return written


def _print(text: str) -> None:
    """Print to stdout; a reader that went away (``| head``) ends the output quietly."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would report the pipe again when it flushes stdout at exit: point it at nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


class _ProgressLine:
    """On a terminal, a run longer than a second shows examples and operations so far."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = False
        self.after = float(os.environ.get("CACHEPACT_PROGRESS_AFTER", "1.0"))  # seconds before it shows

    def __call__(self, examples: int, operations: int) -> None:
        now = time.monotonic()
        if now - self.started < self.after or now - self.last < 0.1:
            return
        self.last = now
        self.shown = True
        sys.stderr.write(f"\r  {examples} examples, {operations} operations ...")
        sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def _counted(result: Any) -> str:
    """``1 example, 2 operations``: the one-line summaries' count of what ran."""
    examples, operations = result.examples, result.operations
    return f"{examples} example{'s' * (examples != 1)}, {operations} operation{'s' * (operations != 1)}"


COMMANDS = {"explain": cmd_explain, "explore": cmd_explore, "check": cmd_check, "diagram": cmd_diagram}


def _terminated(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt  # SIGTERM ends a check as Ctrl-C does: what it made on servers is removed


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _terminated)
        return COMMANDS[args.command](args)
    except CachepactError as e:
        error = e if isinstance(e, UsageError) else _usage(e)
        print(f"cachepact: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C outside a check's run (loading the target, exploring)
        print("cachepact: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def console() -> None:
    """The ``cachepact`` program: ``main``, then exit. After Ctrl-C it exits at once: threads the
    adapter left blocked (a non-daemon helper, a factory still connecting) must not hold the
    process open, and nothing waits on them."""
    code = main()
    if code == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
