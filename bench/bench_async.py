"""Async adapters: the stale-set race in a coroutine cache-aside, side by side with frontrun's asyncio
exploration in one process, and the lease proof (2 readers + 2 writers) of a coroutine adapter beside
its threaded twin.

    python bench/bench_async.py              # targets: race found 20/20 at <= 0.1 s median; proof <= 2x
    python bench/bench_async.py --redis      # also the lease proof over Redis (Leases vs AsyncLeases)

frontrun explores asyncio tasks without its launcher (its async DPOR switches at awaits), so it runs
here whenever it is installed (pip install frontrun).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import cachepact
from cachepact.adapters.coroutines import leased as leased_async  # reference.cache_aside_leased, awaited
from cachepact.adapters.coroutines import textbook as textbook_async
from cachepact.adapters.libraries.redis_asyncio import get_set as textbook_redis_asyncio
from cachepact.adapters.reference import cache_aside_leased

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


# -- frontrun's peer: the same race, on a store whose every call is an await -----------------------


class Plain:
    def __init__(self) -> None:
        self.db = {"k": "v0"}
        self.cache: dict[str, str] = {}

    async def get(self):
        await asyncio.sleep(0)
        return self.cache.get("k")

    async def set(self, value):
        await asyncio.sleep(0)
        self.cache["k"] = value

    async def delete(self):
        await asyncio.sleep(0)
        self.cache.pop("k", None)

    async def load(self):
        await asyncio.sleep(0)
        return self.db["k"]

    async def put(self, value):
        await asyncio.sleep(0)
        self.db["k"] = value


async def reader(s: Plain) -> None:
    value = await s.get()
    if value is None:
        value = await s.load()
        await s.set(value)


async def writer(s: Plain) -> None:
    await s.put("v1")
    await s.delete()


def coherent(s: Plain) -> bool:
    return s.cache.get("k") in (None, s.db["k"])


def race(make, seeds: int = 20) -> tuple[int, float]:
    times, found = [], 0
    for seed in range(seeds):
        start = time.perf_counter()
        result = cachepact.check(make, "cache-aside", seed=seed)
        times.append(time.perf_counter() - start)
        found += result.finding is not None and result.finding.invariant == "coherent-at-rest"
    return found, statistics.median(times)


def frontrun_race(runs: int = 20) -> tuple[int, float, int] | None:
    try:
        import frontrun
    except ImportError:
        return None

    async def once():
        return await frontrun.explore(setup=Plain, workers=[reader, writer], invariant=coherent)

    times, found, explored = [], 0, 0
    for _ in range(runs):
        start = time.perf_counter()
        result = asyncio.run(once())
        times.append(time.perf_counter() - start)
        found += not result.property_holds
        explored = result.num_explored
    return found, statistics.median(times), explored


def proof(sync, async_, pattern: str, readers: int, writers: int) -> None:
    plain = cachepact.prove(sync, pattern, readers=readers, writers=writers)
    coroutine = cachepact.prove(async_, pattern, readers=readers, writers=writers)
    assert plain.holds and coroutine.holds, (plain.report(), coroutine.report())
    print(
        f"  {sync.__name__} {readers}r+{writers}w: threaded {plain.schedules} schedules in {plain.elapsed:.2f} s, "
        f"async {coroutine.schedules} schedules in {coroutine.elapsed:.2f} s: "
        f"{coroutine.elapsed / plain.elapsed:.2f}x (target 2x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", action="store_true", help="also the lease proof over Redis (slow: ~1 min)")
    args = parser.parse_args()

    print("== the stale-set race in an async cache-aside: cachepact check (default settings), 20 seeds")
    for make in (textbook_async, textbook_redis_asyncio):
        found, median = race(make)
        print(f"  {make.__name__:<24} found {found}/20, median {median:.3f} s to the report (target 0.1 s)")
    start = time.perf_counter()
    p = cachepact.prove(textbook_async, "cache-aside", readers=1, writers=1)
    print(
        f"  cachepact.prove alone: race after {p.schedules} schedules in {(time.perf_counter() - start) * 1000:.1f} ms"
    )
    peer = frontrun_race()
    if peer is None:
        print("  frontrun: not installed (pip install frontrun)")
    else:
        found, median, explored = peer
        print(f"  frontrun async DPOR: found {found}/20, median {median:.3f} s, after {explored} interleavings")

    print("\n== the lease proof: every schedule, a coroutine adapter beside its threaded twin")
    proof(cache_aside_leased, leased_async, "cache-aside", 2, 1)
    proof(cache_aside_leased, leased_async, "cache-aside", 2, 2)
    if args.redis:
        from test_redis_asyncio import leased_async as redis_async
        from test_redis_asyncio import leased_sync as redis_sync

        proof(redis_sync, redis_async, "cache-aside", 2, 2)


if __name__ == "__main__":
    main()
