"""Rendering a 50-step recorded trace: Mermaid and DOT (goal < 50 ms), PNG (goal < 2 s).

python bench/bench_diagrams.py
"""

from __future__ import annotations

import time

from cachepact.adapters.reference import cache_aside
from cachepact.conformance.world import KEYS, World
from cachepact.diagrams import render, sequence_graph
from cachepact.model import CACHE_ASIDE, Trace


def fifty_steps() -> Trace:
    world = World(cache_aside, CACHE_ASIDE)
    i = 0
    while len(world.steps) < 50:
        key = KEYS[i % len(KEYS)]
        world.write(key) if i % 3 == 2 else world.read(key)
        i += 1
    return Trace(steps=tuple(world.steps[:50]), title="cache-aside: 50 recorded steps")


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
