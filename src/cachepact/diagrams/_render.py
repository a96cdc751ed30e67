"""Renderers from a sequence graph: Mermaid and DOT as text, SVG and PNG through matplotlib."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidArgument
from ._sequence import messages, wrapped

if TYPE_CHECKING:
    import networkx as nx

FORMATS = ("mermaid", "dot", "svg", "png", "markdown")  # markdown: Mermaid fenced for documents
EXTENSIONS = {
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".md": "mermaid",
    ".dot": "dot",
    ".gv": "dot",
    ".svg": "svg",
    ".png": "png",
}


def _mermaid_id(name: str) -> str:
    return name.replace(" ", "_")


# Mermaid ends a statement at ``;`` and reads ``#...;`` as an entity: both are written as entities,
# so a pipeline's label (``SET k1 v; EXPIRE k1 300``) is drawn as sent.
_MERMAID_ESCAPES = str.maketrans({"#": "#35;", ";": "#59;"})


def to_mermaid(g: nx.DiGraph) -> str:
    lines = ["sequenceDiagram"]
    if g.graph.get("title"):
        lines.append(f"    title {g.graph['title']}")
    for life in g.graph["lifelines"]:
        lines.append(f"    participant {_mermaid_id(life)} as {life}")
    for u, v, d in messages(g):
        text = d["label"].translate(_MERMAID_ESCAPES)
        head = "-x" if d.get("failed") else "->>"  # a call that failed (--faults) ends in a cross
        arrow = f"    {_mermaid_id(u[0])}{head}{_mermaid_id(v[0])}: {text}"
        if d["culprit"]:
            lines += [
                "    rect rgb(255, 220, 220)",
                "  " + arrow,
                f"    Note over {_mermaid_id(u[0])}: violates the invariant",
                "    end",
            ]
        else:
            lines.append(arrow)
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_label(text: str) -> str:
    """A message label, its long lines broken (``\\n``, which Graphviz draws as a line break)."""
    lines = [_dot_quote(line)[1:-1] for line in wrapped(text)]
    return '"' + "\\n".join(lines) + '"'


def to_dot(g: nx.DiGraph) -> str:
    """Graphviz DOT: one column per lifeline, one rank per step; no Graphviz binary is needed to write it."""
    lines = ["digraph sequence {", "    rankdir=TB;", "    node [shape=point, width=0.05];", "    newrank=true;"]
    if g.graph.get("title"):
        lines.append(f"    label={_dot_quote(g.graph['title'])}; labelloc=t;")
    lifelines = g.graph["lifelines"]
    steps = g.graph["steps"]
    for i, life in enumerate(lifelines):
        head = f"h{i}"
        lines.append(f"    {head} [shape=box, width=1, label={_dot_quote(life)}];")
        chain = [head] + [f"e{i}_{n}" for n in range(1, steps + 1)]
        for node in chain[1:]:
            lines.append(f"    {node};")
        lines.append("    " + " -> ".join(chain) + " [arrowhead=none, style=dashed, color=gray];")
    for n in range(steps + 1):
        nodes = [f"h{i}" if n == 0 else f"e{i}_{n}" for i in range(len(lifelines))]
        lines.append("    { rank=same; " + "; ".join(nodes) + "; }")
    index = {life: i for i, life in enumerate(lifelines)}
    for u, v, d in messages(g):
        n = d["n"]
        color = ", color=red, fontcolor=red, penwidth=2" if d["culprit"] else ""
        color += ", arrowhead=tee, style=dashed" if d.get("failed") else ""  # a call that failed (--faults)
        src, dst = f"e{index[u[0]]}_{n}", f"e{index[v[0]]}_{n}"
        lines.append(f"    {src} -> {dst} [label={_dot_label(d['label'])}, constraint=false{color}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(g: nx.DiGraph, fmt: str, path: str | Path | None = None) -> str | bytes:
    """Text formats return text; svg/png return bytes (and everything is written to ``path`` if given)."""
    if fmt == "mermaid":
        out: str | bytes = to_mermaid(g)
    elif fmt == "markdown":
        out = "```mermaid\n" + to_mermaid(g) + "```\n"
    elif fmt == "dot":
        out = to_dot(g)
    elif fmt in ("svg", "png"):
        from ._draw import draw

        out = draw(g, fmt)
    else:
        raise InvalidArgument("format", fmt, f"{fmt!r} is unknown; use one of: {', '.join(FORMATS)}")
    if path is not None:
        p = Path(path)
        if isinstance(out, bytes):
            p.write_bytes(out)
        else:
            p.write_text(out)
    return out


def format_for(path: str | None, fmt: str | None) -> str:
    """An explicit --format wins; otherwise the file's extension decides; text defaults to Mermaid."""
    if fmt:
        return fmt
    if path:
        ext = Path(path).suffix.lower()
        if ext in EXTENSIONS:
            return EXTENSIONS[ext]
        raise InvalidArgument(
            "path", path, f"{path!r} has an extension that names no format; use one of: {', '.join(EXTENSIONS)}"
        )
    return "mermaid"
