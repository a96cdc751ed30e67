"""Verdicts over seeds: every idiom and its broken counterparts, 20 seeds, sequential and default checks.

    python bench/bench_idioms.py

Each correct idiom must pass one operation at a time and (when its fill is a plain lookup-then-set)
show the seed's race under interleaving; each broken counterpart must fail with its invariant, for
every seed. Prints the verdict counts, the median time of a check, and the total.
"""

from __future__ import annotations

import collections
import statistics
import time

import cachepact
from cachepact.adapters.broken import CATALOGUE
from cachepact.adapters.idioms import IDIOMS

times: list[float] = []


def timed(*args, **kwargs):
    start = time.perf_counter()
    result = cachepact.check(*args, **kwargs)
    times.append(time.perf_counter() - start)
    return result


SEEDS = 20
BROKEN = (
    "aside_negative_never_invalidated",
    "aside_ttl_instead_of_invalidation",
    "aside_wrong_key_invalidated",
    "aside_second_key_left_stale",
    "through_alias_left_stale",
)


def verdicts(entry) -> tuple[collections.Counter, collections.Counter]:
    """Verdict counts over the seeds: one operation at a time, and the default check."""
    seq: collections.Counter = collections.Counter()
    con: collections.Counter = collections.Counter()
    for seed in range(SEEDS):
        r = timed(entry.make, entry.pattern, seed=seed, concurrency=False)
        seq["pass" if r.passed else r.finding.invariant] += 1
        r = timed(entry.make, entry.pattern, seed=seed)
        con["pass" if r.passed else r.finding.invariant] += 1
    return seq, con


def main() -> None:
    t0 = time.perf_counter()
    rows = []
    for name, e in IDIOMS.items():
        seq, con = verdicts(e)
        want_con = "coherent-at-rest" if e.racy else "pass"
        rows.append((name, dict(seq), dict(con), seq["pass"] == SEEDS and con[want_con] == SEEDS))
    for name in BROKEN:
        e = CATALOGUE[name]
        seq, con = verdicts(e)
        rows.append((name, dict(seq), dict(con), seq[e.invariant] == SEEDS and con[e.invariant] == SEEDS))
    for r in rows:
        print(f"{r[0]:36s} seq {r[1]}  con {r[2]}  {'OK' if r[3] else 'WRONG'}")
    print(
        f"{sum(r[3] for r in rows)}/{len(rows)} right over {SEEDS} seeds in both modes; median check "
        f"{statistics.median(times):.2f} s, {len(times)} checks in {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
