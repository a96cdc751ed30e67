"""SVG and PNG through matplotlib: lifelines vertical, messages horizontal in time order."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ..errors import MissingDependency
from ._sequence import messages, wrapped

if TYPE_CHECKING:
    import networkx as nx


# Labels sit on a white box so the lifelines they cross do not strike through the text.
LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "pad": 1.0}
LINE = 0.3  # rows each further line of a label adds (a line of 8.5 pt text is 0.26 of a 0.55 in row)


def draw(g: nx.DiGraph, fmt: str) -> bytes:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependency(
            "matplotlib",
            "matplotlib>=3.7",
            needed_for=f"format={fmt!r}",
            parameter="format",
            value=fmt,
            instead=("mermaid", "dot"),
        ) from None

    lifelines = g.graph["lifelines"]
    msgs = messages(g)
    col = 3.4  # inches between lifelines: room for a wrapped label's longest line
    x = {life: i * col for i, life in enumerate(lifelines)}
    # Long labels (a pipeline, a script) are wrapped; a row is as tall as its label's lines.
    labels = ["\n".join(wrapped(d["label"])) for _, _, d in msgs]
    ys, y = [], 0.0
    for text in labels:
        y -= 1 + LINE * text.count("\n")
        ys.append(y)
    rows = max(-y, 1.0)
    width = max(6.0, col * (len(lifelines) - 1) + 3.5)
    height = 1.6 + 0.55 * rows
    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    top, bottom = 0.0, -(rows + 0.6)

    for life in lifelines:
        ax.plot([x[life], x[life]], [top - 0.3, bottom], color="#999999", linestyle="--", linewidth=1, zorder=1)
        ax.text(
            x[life],
            top,
            life,
            ha="center",
            va="center",
            fontsize=10,
            fontweight="bold",
            bbox={"boxstyle": "round,pad=0.4", "facecolor": "#eef3fb", "edgecolor": "#4a6fa5"},
            zorder=3,
        )

    for (u, v, d), y, text in zip(msgs, ys, labels, strict=True):
        color = "#c62828" if d["culprit"] else "#1f3b66"
        weight = "bold" if d["culprit"] else "normal"
        x0, x1 = x[u[0]], x[v[0]]
        if u == v:  # a self-step: a small loop to the right of the lifeline
            ax.annotate(
                "",
                xy=(x0 + 0.05, y - 0.22),
                xytext=(x0 + 0.05, y + 0.08),
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": color,
                    "connectionstyle": "arc,angleA=0,angleB=0,armA=28,armB=28,rad=6",
                    "lw": 1.3,
                },
                zorder=2,
            )
            ax.text(
                x0 + 0.55,
                y - 0.05,
                text,
                ha="left",
                va="center",
                fontsize=8.5,
                color=color,
                fontweight=weight,
                bbox=LABEL_BOX,
                zorder=4,
            )
        else:
            style = "-[" if d.get("failed") else "-|>"  # a call that failed (--faults): a bar, no arrowhead
            ax.annotate(
                "",
                xy=(x1, y),
                xytext=(x0, y),
                arrowprops={
                    "arrowstyle": style,
                    "color": color,
                    "lw": 1.3,
                    "linestyle": "--" if d.get("failed") else "-",
                },
                zorder=2,
            )
            ax.text(
                (x0 + x1) / 2,
                y + 0.12,
                text,
                ha="center",
                va="bottom",
                fontsize=8.5,
                color=color,
                fontweight=weight,
                bbox=LABEL_BOX,
                zorder=4,
            )

    title = g.graph.get("title") or ""
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    ax.set_xlim(-col * 0.45, x[lifelines[-1]] + col * 0.55)
    ax.set_ylim(bottom - 0.2, top + 0.6)
    ax.axis("off")
    # Fixed margins instead of tight_layout(), which draws the whole figure an extra time.
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - 0.45 / height, bottom=0.01)
    buf = io.BytesIO()
    # zlib at its default level spends over a second on a tall diagram; level 1 is ~10x faster
    # and the file stays small (flat colours compress well anyway).
    extra = {"pil_kwargs": {"compress_level": 1}} if fmt == "png" else {}
    fig.savefig(buf, format=fmt, **extra)
    plt.close(fig)
    return buf.getvalue()
