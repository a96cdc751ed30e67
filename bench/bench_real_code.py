"""What code shaped like real applications costs a default check, beside its tidy peer, in one process.

    python bench/bench_real_code.py [--rounds 5]

Two comparisons, rounds alternating so the machine's drift hits both sides alike:

* a lock made at module level (at import, before the check: the kit cannot see it, waits it out
  and counts it) against the same adapter with its lock made in ``make(env)`` (the kit's own
  lock, a scheduling point). Goal: at most 2x.
* the default check with 2 app instances against ``--instances 1``, on the leased reference
  adapter. Goal: at most 1.5x.

Each row is the median wall time of a default ``check`` (seed 0) over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

import cachepact
from cachepact.adapters.reference import cache_aside_leased, read_through_leased, under_one_lock

# The same adapter twice: its lock made at import (before the check), and made in make(env).
locked_at_import = under_one_lock(cache_aside_leased, threading.Lock())
locked_in_make = under_one_lock(cache_aside_leased)


def timed(make: Callable, pattern: str, **options) -> tuple[float, cachepact.Result]:
    started = time.perf_counter()
    result = cachepact.check(make, pattern, seed=0, **options)
    return time.perf_counter() - started, result


def compare(name: str, goal: float, slow: tuple, fast: tuple, rounds: int) -> bool:
    times: dict[str, list[float]] = {slow[0]: [], fast[0]: []}
    last: dict[str, cachepact.Result] = {}
    for _ in range(rounds):
        for label, make, pattern, options in (slow, fast):
            seconds, last[label] = timed(make, pattern, **options)
            times[label].append(seconds)
    medians = {label: statistics.median(ts) for label, ts in times.items()}
    ratio = medians[slow[0]] / medians[fast[0]]
    print(f"\n{name} (goal: at most {goal:g}x)")
    for label, _, _, _ in (slow, fast):
        r = last[label]
        print(
            f"  {label:<34} median {medians[label]:5.2f} s  ({r.verdict}, {r.operations} operations, "
            f"{r.uncontrolled} out of the kit's control)"
        )
    met = ratio <= goal
    print(f"  ratio {ratio:.2f}x: {'met' if met else 'MISSED'}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    results = [
        compare(
            "A lock made at import vs the same lock made in make(env)",
            2.0,
            ("lock at import", locked_at_import, "cache-aside", {}),
            ("lock in make", locked_in_make, "cache-aside", {}),
            rounds,
        ),
    ]
    for make, pattern in ((cache_aside_leased, "cache-aside"), (read_through_leased, "read-through")):
        results.append(
            compare(
                f"2 app instances vs 1: {make.__name__}",
                1.5,
                ("--instances 2 (default)", make, pattern, {"instances": 2}),
                ("--instances 1", make, pattern, {"instances": 1}),
                rounds,
            )
        )
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
