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


def main() -> None:
    t0 = time.perf_counter()
    rows = []
    for name, e in IDIOMS.items():
        seq = collections.Counter()
        con = collections.Counter()
        for seed in range(20):
            r = timed(e.make, e.pattern, seed=seed, concurrency=False)
            seq["pass" if r.passed else r.finding.invariant] += 1
            r = timed(e.make, e.pattern, seed=seed)
            con["pass" if r.passed else r.finding.invariant] += 1
        want_con = "coherent-at-rest" if e.racy else "pass"
        rows.append((name, dict(seq), dict(con), seq["pass"] == 20 and con[want_con] == 20))
    for name in (
        "aside_negative_never_invalidated",
        "aside_ttl_instead_of_invalidation",
        "aside_wrong_key_invalidated",
        "aside_second_key_left_stale",
        "through_alias_left_stale",
    ):
        e = CATALOGUE[name]
        seq = collections.Counter()
        con = collections.Counter()
        for seed in range(20):
            r = timed(e.make, e.pattern, seed=seed, concurrency=False)
            seq["pass" if r.passed else r.finding.invariant] += 1
            r = timed(e.make, e.pattern, seed=seed)
            con["pass" if r.passed else r.finding.invariant] += 1
        rows.append((name, dict(seq), dict(con), seq[e.invariant] == 20 and con[e.invariant] == 20))
    for r in rows:
        print(f"{r[0]:36s} seq {r[1]}  con {r[2]}  {'OK' if r[3] else 'WRONG'}")
    print(
        f"{sum(r[3] for r in rows)}/{len(rows)} right over 20 seeds in both modes; median check "
        f"{statistics.median(times):.2f} s, {len(times)} checks in {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
