"""Finding the stale-set race and proving leases, side by side with a threaded stress test and frontrun.

    frontrun python bench/bench_concurrency.py     # all three peers in one process
    python bench/bench_concurrency.py              # without frontrun (it needs its own launcher)
    ... --frontrun-big                             # also frontrun's 2 readers + 2 writers proof (minutes)
    ... --frontrun-full                            # frontrun's full DPOR (no preemption bound) beside
                                                   # cachepact.prove, 2r+1w to 3r+2w, 10 minutes a case
    python bench/bench_concurrency.py --workers    # the lease proofs on 1 process beside 2 (prove(workers=2))

The equivalent adapter for the peers is the seed's cache-aside on plain dicts: one reader and one
writer of one key, checked for coherence once both are done.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import cachepact
from cachepact.adapters.reference import (
    cache_aside,
    cache_aside_leased,
    cache_aside_locked,
    cache_aside_write_through,
    cache_aside_write_through_locked,
    read_through,
    read_through_leased,
    write_through,
    write_through_locked,
)


class Plain:
    def __init__(self) -> None:
        self.db, self.cache = {"k1": "v0"}, {}


def reader(s: Plain) -> None:
    v = s.cache.get("k1")
    if v is None:
        v = s.db.get("k1")
        s.cache["k1"] = v


def writer(s: Plain) -> None:
    s.db["k1"] = "v1"
    s.cache.pop("k1", None)


class Leased(Plain):
    """The same lease store as the kit's, each call atomic under a lock (as a cache server is):
    frontrun interleaves bytecodes, so an unlocked dict version would race inside the store itself."""

    def __init__(self) -> None:
        super().__init__()
        self.leases: dict = {}
        self.n = 0
        self.lock = threading.Lock()

    def lease_get(self):
        with self.lock:
            if "k1" in self.cache:
                return self.cache["k1"], None
            if "k1" in self.leases:
                return None, None
            self.n += 1
            self.leases["k1"] = self.n
            return None, self.n

    def lease_set(self, value, token):
        with self.lock:
            if self.leases.get("k1") != token:
                return False
            del self.leases["k1"]
            self.cache["k1"] = value
            return True

    def put(self, value):
        with self.lock:
            self.db["k1"] = value

    def get(self):
        with self.lock:
            return self.db["k1"]

    def delete(self):
        with self.lock:
            self.cache.pop("k1", None)
            self.leases.pop("k1", None)


def lease_reader(s: Leased) -> None:
    for _ in range(3):
        value, token = s.lease_get()
        if value is not None:
            return
        if token is not None:
            s.lease_set(s.get(), token)
            return


def lease_writer(s: Leased) -> None:
    s.put(f"v{threading.get_ident()}")
    s.delete()


def coherent(s: Plain) -> bool:
    return s.cache.get("k1") in (None, s.db["k1"])


def stress(trials: int) -> tuple[int, float]:
    found, start = 0, time.perf_counter()
    for _ in range(trials):
        s = Plain()
        threads = [threading.Thread(target=reader, args=(s,)), threading.Thread(target=writer, args=(s,))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        found += not coherent(s)
    return found, time.perf_counter() - start


def frontrun_available() -> bool:
    try:
        from frontrun.cli import require_active

        require_active("bench")
        return True
    except Exception:
        return False


def split_proofs() -> None:
    """The lease proof on one process beside the same proof split over two (both cores here): the
    same verdict, and the wall time and schedules of each."""
    print("== the lease proof, one process beside two (prove(workers=2)); limit 100,000")
    for readers, writers in ((2, 2), (3, 2)):
        one = cachepact.prove(cache_aside_leased, readers=readers, writers=writers, limit=100_000)
        two = cachepact.prove(cache_aside_leased, readers=readers, writers=writers, limit=100_000, workers=2)
        assert (one.holds, one.complete) == (two.holds, two.complete), (one.report(), two.report())
        print(
            f"  {readers}r+{writers}w: 1 process {one.schedules:,} + {one.cut:,} cut in {one.elapsed:.1f} s; "
            f"2 processes {two.schedules:,} + {two.cut:,} cut in {two.elapsed:.1f} s: "
            f"{one.elapsed / two.elapsed:.2f}x faster, complete={two.complete}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frontrun-big", action="store_true")
    parser.add_argument("--frontrun-full", action="store_true")
    parser.add_argument("--workers", action="store_true", help="the lease proofs on 1 process beside 2")
    args = parser.parse_args()
    if args.frontrun_full:
        full_dpor()
        return
    if args.workers:
        split_proofs()
        return

    print("== the stale-set race: cachepact check (default settings), 20 seeds each")
    for make, pattern in (
        (cache_aside, "cache-aside"),
        (read_through, "read-through"),
        (write_through, "write-through"),
        (cache_aside_write_through, "cache-aside+write-through"),
    ):
        times, found, lengths = [], 0, set()
        for seed in range(20):
            start = time.perf_counter()
            result = cachepact.check(make, pattern, seed=seed)
            times.append(time.perf_counter() - start)
            found += result.finding is not None and result.finding.invariant == "coherent-at-rest"
            lengths.add(sum(1 for s in result.steps if s.target != "app"))
        median = statistics.median(times)
        print(
            f"  {make.__name__:<26} found {found}/20, median {median:.2f} s to the report, "
            f"counterexample steps {sorted(lengths)}, {1 / median:.2f} detections/s"
        )

    start = time.perf_counter()
    proof = cachepact.prove(cache_aside, "cache-aside", readers=1, writers=1)
    t = time.perf_counter() - start
    assert proof.counterexample is not None
    print(
        f"  cachepact.prove alone: race after {proof.schedules} schedules in {t * 1000:.1f} ms "
        f"({1 / t:,.0f} detections/s)"
    )

    trials = 3000
    hits, t = stress(trials)
    print(f"  threaded stress peer: {hits}/{trials} trials caught it in {t:.2f} s ({hits / t:.2f} detections/s)")

    if frontrun_available():
        import frontrun

        start = time.perf_counter()
        r = frontrun.explore(setup=Plain, workers=[reader, writer], invariant=coherent)
        t = time.perf_counter() - start
        print(
            f"  frontrun: property_holds={r.property_holds} after {r.num_explored} interleavings in {t:.3f} s "
            f"({1 / t:.2f} detections/s)"
        )
    else:
        print("  frontrun: not active (run this under `frontrun python ...` to include it)")

    print("\n== proofs: every schedule, state-cached (runs to the end / cut short at a known state)")
    for make, pattern in (
        (cache_aside_leased, "cache-aside"),
        (read_through_leased, "read-through"),
        (cache_aside_locked, "cache-aside"),
        (write_through_locked, "write-through"),
        (cache_aside_write_through_locked, "cache-aside+write-through"),
    ):
        for readers, writers in ((2, 1), (1, 2), (2, 2)):
            p = cachepact.prove(make, pattern, readers=readers, writers=writers)
            total = p.schedules + p.cut
            print(
                f"  {make.__name__:<32} {readers}r+{writers}w: holds={p.holds}  {p.schedules} schedules run, "
                f"{p.cut} cut, {p.states} states, {p.elapsed:.2f} s, {total / p.elapsed:,.0f} schedules/s, "
                f"{p.cut / max(1, total):.0%} cut"
            )
    if frontrun_available():
        import frontrun

        cases = [("2r+1w", [lease_reader, lease_reader, lease_writer])]
        if args.frontrun_big:
            cases.append(("2r+2w", [lease_reader, lease_reader, lease_writer, lease_writer]))
        for label, workers in cases:
            start = time.perf_counter()
            r = frontrun.explore(setup=Leased, workers=workers, invariant=coherent)
            t = time.perf_counter() - start
            print(
                f"  frontrun lease {label}: holds={r.property_holds} after {r.num_explored} interleavings in {t:.2f} s"
            )

    print("\n== default check (sequential + concurrent; 2 app instances unless said)")
    for make, pattern, instances in (
        (cache_aside_leased, "cache-aside", None),
        (read_through_leased, "read-through", None),
        (cache_aside_locked, "cache-aside", None),  # fails: its lock is per process
        (cache_aside_locked, "cache-aside", 1),  # holds in one process
    ):
        start = time.perf_counter()
        result = cachepact.check(make, pattern, instances=instances)
        label = make.__name__ + ("" if instances is None else f" --instances {instances}")
        verdict = result.verdict + (f" ({result.finding.invariant})" if result.finding else "")
        print(f"  {label:<34} {verdict} in {time.perf_counter() - start:.2f} s")


def full_dpor() -> None:
    """Each side's proof of the same lease adapter, case by case: frontrun 0.7 with full DPOR
    (``preemption_bound=None``) over the bytecode-level dict store, cachepact.prove over env's. Says
    what each claims: frontrun returns no exhaustion flag (``exhausted`` is None), so only
    cachepact's complete/incomplete is a claim of completion."""
    print("== lease proofs, full exploration: frontrun (preemption_bound=None) beside cachepact.prove")
    cases = ((2, 1), (2, 2), (3, 2))
    for readers, writers in cases:
        start = time.perf_counter()
        p = cachepact.prove(cache_aside_leased, "cache-aside", readers=readers, writers=writers, limit=100_000)
        print(
            f"  cachepact {readers}r+{writers}w: holds={p.holds} complete={p.complete}  {p.schedules} schedules, "
            f"{p.cut} cut, {time.perf_counter() - start:.1f} s"
        )
        if not frontrun_available():
            continue
        import frontrun

        start = time.perf_counter()
        r = frontrun.explore(
            setup=Leased,
            workers=[lease_reader] * readers + [lease_writer] * writers,
            invariant=coherent,
            preemption_bound=None,
            total_timeout=600,
        )
        print(
            f"  frontrun  {readers}r+{writers}w: holds={r.property_holds} after {r.num_explored} interleavings, "
            f"exhausted={getattr(r, 'exhausted', None)}, {time.perf_counter() - start:.1f} s"
        )


if __name__ == "__main__":
    main()
