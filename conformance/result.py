"""The outcome of a check, and its three renderings: the text report, JSON and JUnit XML.

The text report is a contract (the tests assert it): the invariant, the minimal steps as a
numbered table with the culprit marked, what the model allowed there, the final DB and cache
side by side, what the run reached, and the replay command.
"""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import attrs

from ..model import Step, render_table
from .judge import CONCURRENT_SITUATIONS, INVARIANTS, SITUATIONS, Finding


@attrs.frozen(kw_only=True)
class Result:
    pattern: str
    target: str
    finding: Finding | None
    steps: tuple[Step, ...] = ()
    replay: str = ""
    final_state: tuple[tuple[str, str, str], ...] = ()
    reached: tuple[str, ...] = ()
    examples: int = 0
    operations: int = 0
    elapsed: float = 0.0
    seed: int | None = None
    diagram: str | None = None
    columns: tuple[str, ...] = ()  # operations in flight together: one table column each
    concurrent: bool = False

    @property
    def passed(self) -> bool:
        return self.finding is None

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    @property
    def not_reached(self) -> tuple[str, ...]:
        names = SITUATIONS + (CONCURRENT_SITUATIONS if self.concurrent else ())
        return tuple(s for s in names if s not in self.reached)

    @property
    def replay_command(self) -> str:
        return f"cachepact check {self.target} --pattern {self.pattern} --replay '{self.replay}'"

    # -- text ----------------------------------------------------------------------------------

    def race_table(self) -> str:
        """One column per operation in flight, rows in time order, context switches marked."""
        culprit = self.finding.culprit if self.finding else None
        cols = list(self.columns)
        rows, previous = [], None
        for i, s in enumerate(self.steps):
            cells = [""] * len(cols)
            text = s.describe() + (f" -> {s.shown_result}" if s.shown_result else "")
            if s.op in cols:
                actor = "" if s.target == "app" else f"{s.actor}: "
                cells[cols.index(s.op)] = actor + text
                switch = "switch" if previous is not None and s.op != previous else ""
                previous = s.op
            else:  # the sequential prefix, before anything was in flight
                cells = [f"{s.op} {s.actor}: {text}"] + [""] * (len(cols) - 1)
                switch = ""
            rows.append((str(i + 1), switch, *cells, "<-- culprit" if i == culprit else ""))
        return render_table(("#", "", *cols, ""), rows)

    def steps_table(self) -> str:
        if self.columns:
            return self.race_table()
        culprit = self.finding.culprit if self.finding else None
        rows = []
        for i, s in enumerate(self.steps):
            mark = "<-- culprit" if i == culprit else ""
            rows.append((str(i + 1), s.op, str(s.actor), s.describe(), s.shown_result, mark))
        return render_table(("#", "op", "actor", "call", "result", ""), rows)

    def report(self) -> str:
        lines = [f"cachepact check {self.target} --pattern {self.pattern}"]
        if self.finding is None:
            lines.append(
                f"PASS: every invariant held over {self.examples} examples, {self.operations} operations "
                f"({self.elapsed:.1f} s)."
            )
        else:
            f = self.finding
            lines.append(f"FAIL {f.invariant}: {f.message}")
            lines.append("")
            calls = sum(s.target != "app" for s in self.steps)
            n_ops = len(self.replay.split("/")[1].replace("|", ",").strip(",").split(","))
            lines.append(f"Minimal failing sequence: {n_ops} operation{'s' * (n_ops != 1)}, {calls} step{'s' * (calls != 1)}")
            if self.columns:
                switches = sum(1 for row in self.race_table().splitlines()[2:] if row.split()[1:2] == ["switch"])
                lines[-1] += f", {len(self.columns)} in flight, {switches} context switch{'es' * (switches != 1)}"
            lines.append(self.steps_table())
            if f.allowed:
                lines.append(f"Model allowed at that point: {' | '.join(f.allowed)}")
            lines.append("")
            lines.append("Final state:")
            lines.append(render_table(("key", "db", "cache"), list(self.final_state)))
        lines.append("")
        lines.append(f"Reached: {', '.join(self.reached) or 'nothing'}")
        if self.not_reached:
            lines.append(f"Never reached: {', '.join(self.not_reached)} (the run says nothing about those paths)")
        if self.finding is not None:
            lines.append(f"Replay: {self.replay_command}")
            if self.diagram:
                lines.append(f"Diagram: {self.diagram}")
        return "\n".join(lines)

    # -- machine-readable ----------------------------------------------------------------------

    def counterexample(self) -> dict[str, Any] | None:
        if self.finding is None:
            return None
        f = self.finding
        return {
            "message": f.message,
            "operation": f.op,
            "culprit": None if f.culprit is None else f.culprit + 1,
            "allowed": list(f.allowed),
            "steps": [
                {
                    "n": i + 1,
                    "op": s.op,
                    "actor": str(s.actor),
                    "call": s.describe(),
                    "result": s.shown_result,
                }
                for i, s in enumerate(self.steps)
            ],
            "final_state": [{"key": k, "db": d, "cache": c} for k, d, c in self.final_state],
            "replay": self.replay,
        }

    def checks(self) -> list[dict[str, Any]]:
        names = list(INVARIANTS)
        if self.finding is not None and self.finding.invariant not in names:
            names.append(self.finding.invariant)
        out = []
        for name in names:
            failed = self.finding is not None and self.finding.invariant == name
            out.append(
                {"invariant": name, "status": "fail" if failed else "pass", "counterexample": self.counterexample() if failed else None}
            )
        return out

    def to_json(self) -> str:
        return json.dumps(
            {
                "verdict": self.verdict,
                "pattern": self.pattern,
                "target": self.target,
                "checks": self.checks(),
                "reached": list(self.reached),
                "not_reached": list(self.not_reached),
                "examples": self.examples,
                "operations": self.operations,
                "seed": self.seed,
            },
            indent=2,
        )

    def to_junit(self) -> str:
        checks = self.checks()
        failures = sum(c["status"] == "fail" for c in checks)
        cases = []
        for c in checks:
            name = quoteattr(c["invariant"])
            if c["status"] == "fail":
                message = quoteattr(f"{c['invariant']}: {self.finding.message}")  # type: ignore[union-attr]
                body = f'<failure message={message}>{escape(self.report())}</failure>'
                cases.append(f'    <testcase classname="cachepact.{self.pattern}" name={name}>{body}</testcase>')
            else:
                cases.append(f'    <testcase classname="cachepact.{self.pattern}" name={name}/>')
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<testsuites>\n'
            f'  <testsuite name="cachepact {escape(self.target)}" tests="{len(checks)}" failures="{failures}" '
            f'errors="0" time="{self.elapsed:.3f}">\n' + "\n".join(cases) + "\n  </testsuite>\n</testsuites>\n"
        )


__all__ = ["Result"]
