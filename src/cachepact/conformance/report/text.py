"""A check's result as text, JSON and JUnit XML.

The text report is a contract (the tests assert it): the invariant, the minimal steps as a
numbered table with the culprit marked, what the model allowed there, the final DB and cache
side by side, what the run reached, and the replay command.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

from ..._argtypes import FAULT_SHARE, MAX_SCHEDULES, SCHEDULES_PER_EXAMPLE
from ...model import Step, calls_of, render_table
from ...model._participants import is_background
from ...model._steps import CLOCK
from ..judge.findings import INVARIANTS
from ..record.env import OUTSIDE

if TYPE_CHECKING:
    from .result import Result


def _plural(n: int, word: str, suffix: str = "s") -> str:
    return f"{n} {word}{suffix * (n != 1)}"


def _on(r: Result) -> dict[str, int] | None:
    """Each operation's app instance, when the counterexample used more than one (else None)."""
    placement = dict(r.placement)
    return placement if len(set(placement.values())) > 1 else None


def rows_of(steps: tuple[Step, ...] | list[Step]) -> list[tuple[int, int, str, str]]:
    """One row per call as it was sent: ``(first step, last step, call, result)`` (``model.calls_of``)."""
    return [(c.first, c.last, c.text, c.result) for c in calls_of(steps)]


def race_table(r: Result) -> str:
    """One column per operation in flight, rows in time order, context switches marked."""
    culprit = r.finding.culprit if r.finding else None
    cols = list(r.columns)
    on = _on(r)
    rows, previous = [], None
    for n, (first, last, call, result) in enumerate(rows_of(r.steps)):
        s = r.steps[first]
        cells = [""] * len(cols)
        text = call + (f" -> {result}" if result else "")
        if s.op in cols:
            actor = "" if s.target == "app" else f"{s.actor}: "
            cells[cols.index(s.op)] = actor + text
            switch = "switch" if previous is not None and s.op != previous else ""
            previous = s.op
        elif s.target == CLOCK or (s.op == OUTSIDE and s.action == "expire"):
            # The kit moved the clock on (before the race, or inside it at a scheduling point), and
            # what expired then: rows of their own, no operation's, no switch.
            who = "Kit" if s.target == CLOCK else str(s.actor)
            cells = [f"{who}: {text}"] + [""] * (len(cols) - 1)
            switch = ""
        else:  # the sequential prefix, before anything was in flight
            where = f" (app {on[s.op] + 1})" if on and s.op in on else ""
            cells = [f"{s.op}{where} {s.actor}: {text}"] + [""] * (len(cols) - 1)
            switch = ""
        mark = "<-- culprit" if culprit is not None and first <= culprit <= last else ""
        rows.append((str(n + 1), switch, *cells, mark))
    heads = [_head(c, on) for c in cols]
    return render_table(("#", "switch", *heads, "note"), rows)


def _head(column: str, on: dict[str, int] | None) -> str:
    if is_background(column):
        return f"{column} (background, app {on[column] + 1})" if on and column in on else f"{column} (background)"
    return f"{column} (app {on[column] + 1})" if on and column in on else column


def steps_table(r: Result) -> str:
    if r.columns:
        return race_table(r)
    culprit = r.finding.culprit if r.finding else None
    on = _on(r)
    rows = []
    for n, (first, last, call, result) in enumerate(rows_of(r.steps)):
        s = r.steps[first]
        mark = "<-- culprit" if culprit is not None and first <= culprit <= last else ""
        app = (str(on[s.op] + 1) if s.op in on else "",) if on else ()
        rows.append((str(n + 1), s.op, *app, str(s.actor), call, result, mark))
    return render_table(("#", "op", *(("app",) if on else ()), "actor", "call", "result", "note"), rows)


def text(r: Result) -> str:
    lines = [r.command]
    lines.extend(r.notes)
    if r.instances > 1:
        lines.append(
            f"App instances: {r.instances}, sharing the DB and cache as processes do; --instances 1 checks one process."
        )
    # Invariants only: a finding that is none (timeout, deadlock, adapter-error) is the FAIL line's.
    counts = {
        s: [name for name, status in r.statuses if status == s and name in INVARIANTS]
        for s in ("pass", "fail", "not-run", "interrupted")
    }
    if r.interrupted:
        lines.append(
            f"INTERRUPTED after {r.examples} examples, {r.operations} operations ({r.elapsed:.1f} s): "
            "no verdict; what ran broke nothing."
        )
    elif r.finding is None:
        held = "every invariant held" if not counts["not-run"] else f"{_plural(len(counts['pass']), 'invariant')} held"
        ran = f"{held} over {_plural(r.examples, 'example')}, {_plural(r.operations, 'operation')} ({r.elapsed:.1f} s)"
        if r.passed:
            lines.append(f"PASS: {ran}.")
            lines.extend(r.bounds)
        else:  # strict, and the run was not complete
            lines.append(f"FAIL strict: {ran}, but the check was not complete (each Strict: line below says why).")
    else:
        f = r.finding
        lines.append(f"FAIL {f.invariant}: {f.message}")
        lines.append("")
        calls = sum(r.steps[first].target in ("db", "cache") for first, *_ in rows_of(r.steps))
        summary = (
            f"Minimal failing sequence: {_plural(r.failing_operations, 'operation')}, "
            f"{_plural(calls, 'DB or cache call')}"
        )
        if r.columns:
            workers = sum(map(is_background, r.columns))
            background = f" and {_plural(workers, 'background worker')}" if workers else ""
            summary += (
                f", {len(r.columns) - workers} in flight{background}, "
                f"{_plural(r.context_switches, 'context switch', 'es')}"
            )
        lines.append(summary)
        lines.append(steps_table(r))
        if f.allowed:
            lines.append(f"Model allowed at that point: {' | '.join(f.allowed)}")
        if f.hint:
            lines.append(f"How to close it: {f.hint}")
        lines.append("")
        lines.append("Final state:")
        lines.append(final_state_table(r.final_state))
    lines.append("")
    lines.append(_invariants_line(counts, r))
    lines.append(f"Reached: {', '.join(r.reached) or 'nothing'}")
    if r.not_reached:
        lines.append(f"Never reached: {', '.join(r.not_reached)} (the run says nothing about those paths)")
    if (r.races or r.fault_races) and r.finding is None and not r.interrupted:
        lines.append(f"Exhaustive: {_exhaustive(r)}")
    if r.uncontrolled:
        lines.append(f"Out of the kit's control: {UNCONTROLLED.format(n=_plural(r.uncontrolled, 'time'))}")
    lines.extend(f"Warning: {w}" for w in r.warnings)
    if r.strict and not r.interrupted:
        lines.extend(f"Strict: {why}" for why in r.strict_failures)
    if r.finding is not None:
        lines.append(f"Replay: {r.replay_command}")
        if r.diagram:
            lines.append(f"Diagram: {r.diagram}")
    return "\n".join(lines)


def _exhaustive(r: Result) -> str:
    """How far the exhaustive phase went: every small race to the end, or which stopped at the limit."""
    left = [u for u in r.unfinished if not u.faulted]
    parts = [_races(r.races, len(left), "small race")]
    if r.fault_races:
        parts.append(_races(r.fault_races, len(r.unfinished) - len(left), "race", " with a fault"))
    line = " and ".join(parts) + " explored to the end"
    if r.uncontrolled or r.spun_out:
        line += " but for the cuts named below"
    if not r.unfinished:
        return line + "."
    shown = "; ".join(str(u) for u in r.unfinished[:3])
    more = f"; and {len(r.unfinished) - 3} more" if len(r.unfinished) > 3 else ""
    line += f"; stopped at the check's limit: {shown}{more}."
    if any(u.schedules < (MAX_SCHEDULES // FAULT_SHARE if u.faulted else MAX_SCHEDULES) for u in r.unfinished):
        return line + (
            f" A larger max_examples (--max-examples) explores further: {SCHEDULES_PER_EXAMPLE} schedules a race "
            f"an example, up to {MAX_SCHEDULES:,}."
        )
    return line + (
        f" {MAX_SCHEDULES:,} schedules is the most a check explores of a race; cachepact.prove(..., limit=N) "
        "explores reads and writes of one key further."
    )


def _races(count: int, unfinished: int, what: str, suffix: str = "") -> str:
    """``all 7 small races``, ``5 of 7 small races``, ``the 1 small race``."""
    if unfinished:
        return f"{count - unfinished} of {_plural(count, what)}{suffix}"
    return f"{'all ' if count > 1 else 'the '}{_plural(count, what)}{suffix}"


UNCONTROLLED = (
    "{n} a thread blocked where the kit cannot see (a lock made before the check, such as at import, "
    "or I/O), so the scheduler had to wait for it: make locks inside make(env) to have every "
    "interleaving explored. A lock made at import is shared by the app instances here, as it is not "
    "by your processes."
)


def _invariants_line(counts: dict[str, list[str]], r: Result) -> str:
    if counts["interrupted"]:
        return f"Invariants: {len(counts['interrupted'])} held so far, no verdict (interrupted)"
    parts = [f"{len(counts['pass'])} pass"]
    if counts["fail"]:
        parts.append(f"{len(counts['fail'])} fail ({', '.join(counts['fail'])})")
    if counts["not-run"]:
        # A check that stopped at a failure ran none of the others to the end; else none was reached.
        why = r.why_not_run(counts["not-run"][0]) if r.stopped else "nothing reached could break them"
        parts.append(f"{len(counts['not-run'])} not run ({', '.join(counts['not-run'])}: {why})")
    return "Invariants: " + ", ".join(parts)


def final_state_table(rows: tuple[tuple[str, ...], ...]) -> str:
    """key, DB, the cache decoded; and the raw entries (cache key and payload) when any differ."""
    if any(row[3] for row in rows):
        return render_table(("key", "db", "cache", "raw entry"), [tuple(row) for row in rows])
    return render_table(("key", "db", "cache"), [row[:3] for row in rows])


def counterexample(r: Result) -> dict[str, Any] | None:
    if r.finding is None:
        return None
    f = r.finding
    placement = dict(r.placement)
    calls = calls_of(r.steps)  # numbered as the table's rows: a pipeline or script is one call
    return {
        "message": f.message,
        "operation": f.op,
        "culprit": next((n for n, c in enumerate(calls, 1) if c.holds(f.culprit)), None),
        "allowed": list(f.allowed),
        "hint": f.hint,
        "steps": [
            {
                "n": n,
                "op": r.steps[c.first].op,
                "app": placement[r.steps[c.first].op] + 1 if r.steps[c.first].op in placement else None,
                "actor": str(r.steps[c.first].actor),
                "call": c.text,
                "result": c.result,
            }
            for n, c in enumerate(calls, 1)
        ],
        "final_state": [{"key": k, "db": d, "cache": c, "raw": raw} for k, d, c, raw in r.final_state],
        "replay": r.replay,
    }


def checks(r: Result) -> list[dict[str, Any]]:
    return [
        {
            "invariant": name,
            "status": status,
            "counterexample": counterexample(r) if status == "fail" else None,
            "reason": _reason(r, name, status),
        }
        for name, status in r.statuses
    ]


def _reason(r: Result, name: str, status: str) -> str | None:
    """Why a check has no verdict of its own (``not-run``, ``interrupted``); None for one that has."""
    if status == "not-run":
        return f"not run: {r.why_not_run(name)}"
    if status == "interrupted":
        return "interrupted: held so far, no verdict"
    return None


def to_json(r: Result) -> str:
    return json.dumps(
        {
            "verdict": r.verdict,
            "pattern": r.pattern,
            "target": r.target,
            "checks": checks(r),
            "reached": list(r.reached),
            "not_reached": list(r.not_reached),
            "examples": r.examples,
            "operations": r.operations,
            "uncontrolled": r.uncontrolled,
            "unobserved": list(r.unobserved),
            "warnings": list(r.warnings),
            "redis": r.redis,
            "db": r.db,
            "seed": r.seed,
            "instances": r.instances,
            "step_timeout": r.step_timeout,
            "interrupted": r.interrupted,
            "strict": r.strict,
            "strict_failures": list(r.strict_failures) if r.strict else [],
            "staleness_bounds": list(r.bounds),
            # How far the exhaustive phase went (null when Ctrl-C cut the check short).
            "exhaustive": None
            if r.interrupted
            else {
                "races": r.races,
                "fault_races": r.fault_races,
                "unfinished": [{"race": u.race, "schedules": u.schedules, "faulted": u.faulted} for u in r.unfinished],
            },
        },
        indent=2,
    )


def to_junit(r: Result) -> str:
    cs = checks(r)
    failures = sum(c["status"] == "fail" for c in cs)
    skipped = sum(c["status"] in ("not-run", "interrupted") for c in cs)
    cases = []
    for c in cs:
        name = quoteattr(c["invariant"])
        head = f'    <testcase classname="cachepact.{r.pattern}" name={name}'
        if c["status"] == "fail":
            message = quoteattr(f"{c['invariant']}: {r.finding.message}")  # type: ignore[union-attr]
            cases.append(f"{head}><failure message={message}>{escape(text(r))}</failure></testcase>")
        elif c["reason"] is not None:  # not-run, interrupted
            cases.append(f"{head}><skipped message={quoteattr(c['reason'])}/></testcase>")
        else:
            cases.append(f"{head}/>")
    if r.strict and not r.interrupted and r.strict_failures:  # what turned the check into a failure
        failures += 1
        why = quoteattr(f"strict: {r.strict_failures[0]}" + (" (and more)" if len(r.strict_failures) > 1 else ""))
        body = escape("\n".join(f"Strict: {line}" for line in r.strict_failures))
        cases.append(
            f'    <testcase classname="cachepact.{r.pattern}" name="strict"><failure message={why}>{body}</failure>'
            "</testcase>"
        )
    errors = 0
    if r.interrupted:  # CI must not read a check cut short as a pass
        errors = 1
        why = quoteattr(f"interrupted after {r.examples} examples: no verdict")
        cases.append(
            f'    <testcase classname="cachepact.{r.pattern}" name="interrupted"><error message={why}/></testcase>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<testsuites>\n'
        f'  <testsuite name="cachepact {escape(r.target)}" tests="{len(cases)}" failures="{failures}" '
        f'errors="{errors}" skipped="{skipped}" time="{r.elapsed:.3f}">\n'
        + "\n".join(cases)
        + "\n  </testsuite>\n</testsuites>\n"
    )
