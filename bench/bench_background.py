"""Background work's figures in one process: each background race found over 20 seeds (median seconds
from start to the report), and each fix proven with two operations and the background work they
start (seconds, schedules, complete or not). Targets (issue 20): every race on 20/20 seeds at a
median of at most 0.2 s; every proof within 5 s.

    python bench/bench_background.py
    python bench/bench_background.py --seeds 5        # a quicker look

The races are the catalogue's: a refresh that stores blindly across a write (``ra_blind_refresh``),
a write-behind whose two flushes of a key cross (``wb_flushes_queued_values``, one flusher thread per
app instance started in ``make``), and the textbook write-behind (``reference.write_behind``), whose
miss-fill overwrites a dirty entry. The proofs are the locked references'.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import cachepact
from cachepact.adapters import broken, reference

RACES = (
    ("refresh-ahead", "ra_blind_refresh", broken.CATALOGUE["ra_blind_refresh"].make, "no-stale-refresh"),
    ("write-behind", "wb_flushes_queued_values", broken.CATALOGUE["wb_flushes_queued_values"].make, "flush-order"),
    ("write-behind", "write_behind", reference.write_behind, None),
    ("refresh-ahead", "refresh_ahead", reference.refresh_ahead, None),
)
PROOFS = (
    ("refresh-ahead", "refresh_ahead_locked", reference.refresh_ahead_locked),
    ("write-behind", "write_behind_locked", reference.write_behind_locked),
    ("cache-aside+write-behind", "cache_aside_write_behind_locked", reference.cache_aside_write_behind_locked),
    ("refresh-ahead+write-through", "refresh_ahead_write_through_locked", reference.refresh_ahead_write_through_locked),
)


def race(make, pattern: str, invariant: str | None, seeds: int) -> dict[str, object]:
    times, found = [], 0
    for seed in range(seeds):
        start = time.perf_counter()
        result = cachepact.check(make, pattern, seed=seed)
        times.append(time.perf_counter() - start)
        failed = result.finding is not None and (invariant is None or result.finding.invariant == invariant)
        found += failed
    return {"median_s": round(statistics.median(times), 3), "found": f"{found}/{seeds}"}


def proof(make, pattern: str) -> dict[str, object]:
    start = time.perf_counter()
    result = cachepact.prove(make, pattern, readers=1, writers=1)
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "holds": result.holds,
        "complete": result.complete,
        "schedules": result.schedules,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    out: dict[str, object] = {}
    for pattern, name, make, invariant in RACES:
        out[f"race {name} ({pattern})"] = race(make, pattern, invariant, args.seeds)
        print(json.dumps({f"race {name}": out[f"race {name} ({pattern})"]}), flush=True)
    for pattern, name, make in PROOFS:
        out[f"proof {name} ({pattern}) 1r+1w"] = proof(make, pattern)
        print(json.dumps({f"proof {name}": out[f"proof {name} ({pattern}) 1r+1w"]}), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
