"""Rendering a 50-step recorded trace: Mermaid and DOT (goal < 50 ms), PNG (goal < 2 s).

python bench/bench_diagrams.py
"""

from __future__ import annotations

import itertools
import time

import attrs

from cachepact.diagrams import render, sequence_graph
from cachepact.model import CACHE_ASIDE, Trace, flow


def fifty_steps() -> Trace:
    """Reads (miss, hit) and writes one after another, each its own operation, as a recorded run is."""
    steps = []
    for n in itertools.count(1):
        for name in ("read-miss", "read-hit", "write"):
            op = f"{'w' if name == 'write' else 'r'}{n}"
            steps += [attrs.evolve(s, op=op) for s in flow(CACHE_ASIDE, name)]
        if len(steps) >= 50:
            return Trace(steps=tuple(steps[:50]), title="cache-aside: 50 recorded steps")
    raise AssertionError("unreachable")


def main() -> None:
    trace = fifty_steps()
    for fmt in ("mermaid", "dot", "svg", "png"):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            render(sequence_graph(trace, culprit=49), fmt)
            times.append(time.perf_counter() - start)
        print(f"{fmt:<8} {len(trace)} steps: best {min(times) * 1000:8.1f} ms   worst {max(times) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
