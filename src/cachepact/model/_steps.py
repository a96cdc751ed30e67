"""Steps and traces: the values every part of cachepact speaks (model, checker, reports, diagrams)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from ._participants import Actor

Target = str  # "db" or "cache"; "app" marks an operation returning (not a call on either)
DB = "db"
CACHE = "cache"
APP = "app"
CLOCK = "clock"


def show(value: Any) -> str:
    """How a key, value or result is printed in every table, so reports and diagrams agree."""
    if value is None:
        return "None"
    if isinstance(value, tuple):
        return "(" + ", ".join(show(v) for v in value) + ")"
    if isinstance(value, str):
        return value
    return repr(value)


# Calls whose result a table leaves blank: they return nothing worth a column.
_NO_RESULT = frozenset(
    (
        "put",
        "delete",
        "set",
        "write",
        "evict",
        "expire",
        "advance",
        "tick",
        "blocked",
        "lock",
        "unlock",
        "discard",
        "commit",
        "rollback",
    )
)


@attrs.frozen(kw_only=True)
class Step:
    """One atomic call on the DB or the cache: who made it, for which operation, and what it returned."""

    op: str
    actor: Actor
    target: Target
    action: str
    key: Any
    value: Any = None
    result: Any = None
    token: Any = None  # the lease token a lease_set presents
    ttl: Any = None  # seconds, for a store made with a time to live
    # The server command this step is (one of) the effects of, as sent (``SET k1 k1.v0 EX 300``):
    # code talking to Redis is judged by what each command did, and shown as what it sent.
    command: Any = None  # text, or an object that renders as it when shown
    # A call that failed (``--faults``): "before" (it failed before taking effect) or "lost" (it took
    # effect and its reply was lost: ``result`` is what the store answered, which the caller never got).
    # An operation's row of its end is "raised" when it raised.
    fault: str | None = None
    error: str | None = None  # the name of the error the caller got, for a "before", "lost" or "raised"
    # The transaction (``env.db.transaction()``) a DB call was made in: its puts are staged, visible to
    # others only at its ``commit`` step (one per key it applied), never after its ``rollback``.
    tx: str | None = None

    @property
    def call(self) -> str:
        return f"{self.target}.{self.action}"

    def describe(self) -> str:
        if self.command is not None:
            return str(self.command)
        if self.target == APP:  # an operation's return, recorded so tables show every operation
            if self.action == "blocked":  # ... or that it never returned (a hang, a deadlock)
                return f"{self.value} did not return"
            args = [show(self.key)] + ([show(self.value)] if self.action == "write" else [])
            if self.fault == "raised":  # ... or that it raised (a fault reached it, --faults)
                return f"{self.action}({', '.join(args)}) raised {self.error}"
            return f"{self.action}({', '.join(args)}) returned"
        if self.target == CLOCK:  # the kit moved the virtual clock on (the model: time passes)
            return "time passes" if self.value is None else f"clock +{self.value:g} s"
        if self.action == "expire":
            return f"{show(self.key)} expired"
        if self.action == "commit":
            applied = "" if self.key is None else f": {show(self.key)} = {show(self.value)}"
            return f"db.commit({self.tx}{applied})"
        if self.action == "rollback":
            return f"db.rollback({self.tx}{' to its savepoint' if self.value == 'savepoint' else ''})"
        args = [show(self.key)]
        if self.action in ("put", "set", "add", "lease_set"):
            args.append(show(self.value))
        if self.action == "lease_set":
            args.append(show(self.token))
        if self.ttl is not None:
            args.append(f"ttl={self.ttl:g}")
        inside = f" in {self.tx}" if self.tx is not None else ""
        return f"{self.call}({', '.join(args)}){inside}"

    @property
    def shown_result(self) -> str:
        if self.fault == "raised":
            return ""  # the row says it: "write(k1, k1.v1) raised CacheError"
        if self.fault is not None:
            how = "lost reply: it took effect" if self.fault == "lost" else "it failed before taking effect"
            return f"{self.error} ({how})"
        if self.action in _NO_RESULT:
            return ""
        # A server command may answer other than the payload the step read (EXISTS: 1 or 0).
        reply = getattr(self.command, "reply", None)
        shown = reply(self.result) if reply is not None else None
        return show(self.result) if shown is None else shown


@attrs.frozen(kw_only=True)
class Call:
    """One call as it was sent, as tables, JSON and diagrams number it: steps ``first`` to ``last``
    (a pipeline, a script or a command on several keys is one call with a step per key it touched,
    each judged on its own), ``text`` (the commands once, then what they did to each key) and
    ``result``."""

    first: int
    last: int
    text: str
    result: str

    def holds(self, step: int | None) -> bool:
        """Whether step index ``step`` (a culprit) is one of this call's."""
        return step is not None and self.first <= step <= self.last


def calls_of(steps: tuple[Step, ...] | list[Step]) -> list[Call]:
    """The steps grouped into the calls that made them, in order (one step, one call, but for the
    steps of one batch of server commands)."""
    out = []
    i = 0
    while i < len(steps):
        s = steps[i]
        batch = getattr(s.command, "batch", None)
        j = i + 1
        while batch is not None and j < len(steps) and getattr(steps[j].command, "batch", None) is batch:
            j += 1
        if j - i == 1:
            out.append(Call(first=i, last=i, text=s.describe(), result=s.shown_result))
        else:
            effects = "; ".join(f"{show(m.command.key)}: {_effect(m)}" for m in steps[i:j])
            out.append(Call(first=i, last=j - 1, text=f"{batch}  [{effects}]", result=""))
        i = j
    return out


def _effect(step: Step) -> str:
    if step.action == "get":
        return "nothing there" if step.result is None else f"found {show(step.result)}"
    return step.command.effect_text()


@attrs.frozen(kw_only=True)
class Trace:
    """A sequence of steps in the order they happened; the one object reports and diagrams draw from."""

    steps: tuple[Step, ...] = ()
    title: str = ""

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def ops(self) -> tuple[str, ...]:
        """Operation names in order of first appearance."""
        seen: dict[str, None] = {}
        for step in self.steps:
            seen.setdefault(step.op, None)
        return tuple(seen)

    def table(self, *, markdown: bool = False) -> str:
        """A numbered table: one row per call (actor, operation, call, result)."""
        header = ("#", "op", "actor", "call", "result")
        steps = self.steps
        rows = [
            (str(n), steps[c.first].op, str(steps[c.first].actor), c.text, c.result)
            for n, c in enumerate(calls_of(steps), 1)
        ]
        return render_table(header, rows, markdown=markdown)


def render_table(header: tuple[str, ...], rows: list[tuple[str, ...]], *, markdown: bool = False) -> str:
    """Plain-text (aligned) or Markdown table; one function so every table in cachepact looks alike."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header).rstrip(), fmt.format(*("-" * w for w in widths)).rstrip()]
    lines += [fmt.format(*row).rstrip() for row in rows]
    return "\n".join(lines)
