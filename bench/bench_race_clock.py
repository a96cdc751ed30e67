"""Time inside races: the default check of the reference adapters with and without clock jumps.

    python bench/bench_race_clock.py                 # 3 rounds each, medians
    python bench/bench_race_clock.py --rounds 5

Each reference adapter (``adapters/reference.py`` over ``env.cache``, ``adapters/redis_py.py`` over
redis-py on the in-process server) gets the default check (seed 0, every phase) twice: as it runs
now, the clock free to jump inside races (at most ``RACE_JUMPS`` a run), and with ``RACE_JUMPS = 0``,
time standing still inside races as before. The target is at most 1.5x over the whole set.

Code that sets nothing to expire (the in-memory references) offers no jump and draws as before: its
ratio is noise. The redis-py references store with ``EX 300`` and ``cachepact.leases`` leases with a
10 s ``PX``, so their races branch on jumps.
"""

from __future__ import annotations

import argparse
import statistics
import time

from cachepact import check
from cachepact.adapters import redis_py, reference
from cachepact.conformance.drive import replay

ADAPTERS = [
    (module, pattern, name, make)
    for module, table in (("reference", reference.REFERENCE), ("redis_py", redis_py.REFERENCE))
    for pattern, adapters in table.items()
    for name, make in adapters.items()
]


def timed(make, pattern: str, jumps: int) -> tuple[float, str]:
    replay.RACE_JUMPS = jumps
    started = time.perf_counter()
    result = check(make, pattern, seed=0)
    return time.perf_counter() - started, result.verdict + (f" {result.finding.invariant}" if result.finding else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only", default="", help="only the references whose pattern or name contains this (e.g. redis)"
    )
    args = parser.parse_args()
    default = replay.RACE_JUMPS
    print(f"default check (seed 0), median of {args.rounds} rounds, seconds: jumps <= {default} a race vs none")
    print(f"   {'adapter':40} {'verdict':28} {'jumps':>7} {'none':>7} {'ratio':>6}")
    total_with = total_without = 0.0
    try:
        for module, pattern, name, make in ADAPTERS:
            if args.only and args.only not in f"{module}:{pattern}:{name}":
                continue
            with_jumps, without = [], []
            for _ in range(args.rounds):  # interleaved, so drift in the machine's load hits both alike
                t, verdict = timed(make, pattern, default)
                with_jumps.append(t)
                t, plain = timed(make, pattern, 0)
                without.append(t)
            a, b = statistics.median(with_jumps), statistics.median(without)
            total_with, total_without = total_with + a, total_without + b
            shown = verdict if verdict == plain else f"{verdict} (none: {plain})"
            print(f"   {module + ':' + name:40} {shown:28} {a:7.2f} {b:7.2f} {a / b:5.2f}x")
    finally:
        replay.RACE_JUMPS = default
    print(f"   {'all references':40} {'':28} {total_with:7.2f} {total_without:7.2f} {total_with / total_without:5.2f}x")
    print("   target: at most 1.50x")


if __name__ == "__main__":
    main()
