"""A trace as a sequence graph: events on participant lifelines, messages between them.

Every renderer draws from this graph, and the text reports draw from the same trace, so a picture
and a report of one failure cannot disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model import Step, Trace, calls_of
from ..model._participants import is_background

if TYPE_CHECKING:  # networkx loads when a graph is built, not when cachepact.diagrams is imported
    import networkx as nx


def lifeline_of_caller(step: Step, many_ops: bool) -> str:
    # Background work (a refresh, a flush) is drawn as its own activation: a lifeline of its own
    # beside the Cache's, so its calls are never mistaken for an operation's.
    if is_background(step.op):
        return f"{step.actor} {step.op}"
    if str(step.actor) == "App" and many_ops:
        return f"App {step.op}"
    return str(step.actor)


def label(step: Step) -> str:
    if step.target == "app":
        if step.fault == "raised":
            return f"raises {step.error}"
        return f"returns {step.shown_result}" if step.action == "read" else "returns"
    if step.target == "clock" or step.action == "expire":  # the kit moved the clock: "clock +5 s", "k1 expired"
        return step.describe()
    # A server command is drawn as sent (``GET user:k1``), as tables show it; a kit call without its
    # ``cache.`` prefix, which the arrow already says.
    text = step.describe() if step.command is not None else f"{step.action}{step.describe()[len(step.call) :]}"
    result = step.shown_result
    return f"{text} -> {result}" if result else text


WRAP = 44  # characters a picture's label line holds: about a lifeline column (3.4 in of 8.5 pt text)


def wrapped(text: str, width: int = WRAP) -> list[str]:
    """A label as the lines a picture draws it in: broken at spaces, a long argument cut only when
    it alone is longer than a line."""
    import textwrap

    return textwrap.wrap(text, width, break_on_hyphens=False) or [text]


def sequence_graph(trace: Trace, *, culprit: int | None = None, title: str | None = None) -> nx.DiGraph:
    """Nodes are events ``(lifeline, n)``; ``message`` edges carry a step, ``lifeline`` edges time order.

    Graph attributes: ``lifelines`` in drawing order, ``title``, ``steps``.
    """
    import networkx as nx

    many_ops = len(trace.ops) > 1
    g = nx.DiGraph(title=title or trace.title, steps=len(calls_of(trace.steps)))
    lifelines: list[str] = []
    last_event: dict[str, tuple[str, int]] = {}

    def event(lifeline: str, n: int) -> tuple[str, int]:
        node = (lifeline, n)
        if lifeline not in lifelines:
            lifelines.append(lifeline)
        g.add_node(node, lifeline=lifeline, time=n)
        if lifeline in last_event:
            g.add_edge(last_event[lifeline], node, kind="lifeline")
        last_event[lifeline] = node
        return node

    # One message per call as it was sent (a pipeline or script is one, whatever keys it touched),
    # numbered as the report's table rows.
    for n, call in enumerate(calls_of(trace.steps), 1):
        step = trace.steps[call.first]
        text = label(step) if call.first == call.last else call.text
        src_line = lifeline_of_caller(step, many_ops)
        # The clock moving on (between operations, or inside a race) is a note on its own row: a
        # message from the Cache to itself, as an expiry is.
        dst_line = {"db": "DB", "cache": "Cache", "app": src_line, "clock": src_line}[step.target]
        src = event(src_line, n)
        dst = src if dst_line == src_line else event(dst_line, n)
        g.add_edge(
            src,
            dst,
            kind="message",
            n=n,
            step=step,
            # With several operations in flight, a Cache lifeline is shared: say whose step it is.
            label=f"{n}. {step.op}: {text}" if many_ops and src_line == "Cache" and step.op != "-" else f"{n}. {text}",
            culprit=call.holds(culprit),
            failed=step.fault in ("before", "lost"),  # an injected fault (--faults): drawn with a cross
        )
    # App lifelines in the order their operations began, whoever made an operation's first call.
    apps = (
        [f"App {op}" for op in trace.ops if f"App {op}" in lifelines]
        if many_ops
        else ["App"]  # the caller, even where the Cache makes every call (a write-through write)
    )
    workers = [f"{actor} {op}" for op in trace.ops for actor in ("Cache", "App") if f"{actor} {op}" in lifelines]
    workers = [w for w in workers if is_background(w.split(" ", 1)[1])]
    g.graph["lifelines"] = apps + workers + ["Cache", "DB"]  # always drawn, so every diagram has the same frame
    return g


def messages(g: nx.DiGraph) -> list[tuple[tuple, tuple, dict]]:
    """Message edges in time order (self-messages are self-loops)."""
    out = [(u, v, d) for u, v, d in g.edges(data=True) if d["kind"] == "message"]
    return sorted(out, key=lambda e: e[2]["n"])
