"""Every pattern's figures in one process: the default check of each reference adapter, the race
found over 20 seeds, the 2r+2w proof of each fixed adapter, and the explorer's raw throughput.

    python bench/bench_patterns.py
    PYTHONPATH=/path/to/an/older/checkout/src python bench/bench_patterns.py   # the same figures there

Run both, one after the other on an idle machine, to compare a change with what it replaced: the
figures are printed as JSON with the same keys (an older tree lacks the patterns it did not have).
"""

from __future__ import annotations

import json
import statistics
import time

import cachepact
from cachepact.adapters import reference
from cachepact.model import PATTERNS, Scenario, explore

SEEDS = 20


def race_seconds(make, pattern: str) -> tuple[float, int]:
    """Median seconds from start to the report over ``SEEDS`` seeds, and how many found the race."""
    times, found = [], 0
    for seed in range(SEEDS):
        start = time.perf_counter()
        result = cachepact.check(make, pattern, seed=seed)
        times.append(time.perf_counter() - start)
        found += result.finding is not None and result.finding.invariant == "coherent-at-rest"
    return round(statistics.median(times), 3), found


def main() -> None:
    out: dict[str, object] = {}
    for pattern, adapters in reference.REFERENCE.items():
        for name, make in adapters.items():
            start = time.perf_counter()
            result = cachepact.check(make, pattern)
            out[f"default check {pattern}:{name}"] = [round(time.perf_counter() - start, 2), result.verdict]
    for pattern, adapters in reference.REFERENCE.items():
        textbook = next(iter(adapters.values()))  # each pattern's first reference is its textbook one
        out[f"race, median of {SEEDS} seeds, found {pattern}"] = list(race_seconds(textbook, pattern))
    for pattern, adapters in reference.REFERENCE.items():
        for name, make in adapters.items():
            if name in reference.RACE_FREE:
                start = time.perf_counter()
                proof = cachepact.prove(make, pattern, readers=2, writers=2)
                elapsed = round(time.perf_counter() - start, 2)
                out[f"prove 2r+2w {pattern}:{name}"] = [elapsed, proof.holds, proof.schedules]
    for name in PATTERNS:
        fix = {"leases": True} if getattr(PATTERNS[name], "fix", "leases") == "leases" else {"locks": True}
        sc = Scenario(pattern=PATTERNS[name], readers=3, writers=3, keys=2, **fix)
        result = explore(sc, reduce=False, max_states=50_000_000)
        out[f"explore unreduced {sc.name}"] = [
            round(result.elapsed, 2),
            result.states,
            round(result.states / result.elapsed),
        ]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
