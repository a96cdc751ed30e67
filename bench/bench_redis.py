"""Checking over Redis and SQL: throughput per backend, the kit's cost per Redis command, and the
default check's time on a real Redis and PostgreSQL (issue 11's targets).

    python bench/bench_redis.py [--redis redis://127.0.0.1:6379] [--postgres postgresql://postgres@127.0.0.1/test]

1. Steps per second of ``check`` on the reference adapters, side by side in one process: in memory,
   on the in-process fakeredis server (``--redis fakeredis://``), on the real Redis, and on the real
   Redis with env.db in PostgreSQL.
2. The kit's overhead per command: one recorded ``GET`` (a scheduling point, the keys read around
   it, the step judged) over the same ``GET`` from a bare redis-py client, same server, same
   process, alternating rounds. Goal: at most 2x.
3. The default ``check`` (every phase) of each reference adapter over real Redis + PostgreSQL.
   Goal: at most 30 s.
"""

from __future__ import annotations

import argparse
import statistics
import time

import redis

from cachepact import Adapter, check
from cachepact.adapters import redis_py, reference
from cachepact.conformance.drive.world import Setup, World
from cachepact.conformance.record.servers import Servers
from cachepact.model import PATTERNS

READS = 50  # GETs per operation in the overhead measurement


def empty_db(url: str) -> str:
    for n in range(1, 16):
        if redis.Redis.from_url(f"{url}/{n}").dbsize() == 0:
            return f"{url}/{n}"
    raise SystemExit("no empty logical database on that Redis")


def throughput(redis_url: str, pg_url: str) -> None:
    real = empty_db(redis_url)
    places = {
        "memory": {},
        "fakeredis": {"redis": "fakeredis://"},
        "redis": {"redis": real},
        "redis+postgres": {"redis": real, "db": pg_url},
    }
    adapters = [
        ("cache-aside", "reference:cache_aside_leased", reference.cache_aside_leased),
        ("read-through", "reference:read_through_leased", reference.read_through_leased),
        ("cache-aside", "redis_py:cache_aside_leased", redis_py.cache_aside_leased),
    ]
    print("1. check --no-concurrency, 100 examples: DB and cache calls per second (median of 3)")
    print(f"   {'adapter':32}" + "".join(f"{p:>16}" for p in places))
    for pattern, name, make in adapters:
        row = []
        for where in places.values():
            rates = []
            for _ in range(3):
                started = time.perf_counter()
                result = check(make, pattern, concurrency=False, seed=0, **where)
                elapsed = time.perf_counter() - started
                calls = result.operations * 2.5  # a read or write makes 2-3 calls; same ops everywhere
                rates.append(calls / elapsed)
            row.append(statistics.median(rates))
        print(f"   {name:32}" + "".join(f"{r:>16,.0f}" for r in row))


def overhead(redis_url: str) -> None:
    real = empty_db(redis_url)
    print(f"\n2. one GET, recorded by the kit vs from a bare client ({READS} per operation, median of 7 rounds)")
    for label, url in (("real Redis", real), ("fakeredis", "fakeredis://")):
        servers = Servers(redis=url)

        def hits(env, n=READS):
            # Cache-aside whose every read looks the key up n times (repeated lookups are legal):
            # the first read fills, the rest hit, so the run is long and finding-free.
            r = env.redis

            def read(key):
                value = r.get(key)
                for _ in range(n - 1):
                    value = r.get(key)
                if value is None:
                    value = env.db.get(key)
                    r.set(key, value)
                    return value
                return value.decode()

            return Adapter(read=read, write=lambda k, v: None)

        def none(env):
            return hits(env, 1)

        bare_client = redis.Redis.from_url(url) if url.startswith("redis") else servers.redis().client()
        bare_client.set("bench:k", "x")
        kit, base, bare = [], [], []
        for _ in range(7):
            for make, out in ((hits, kit), (none, base)):
                world = World(Setup(make=make, pattern=PATTERNS["cache-aside"], servers=servers))
                started = time.perf_counter()
                assert world.run_sequence([("r", "k1", 0)] * 20) is None, world.finding
                out.append((time.perf_counter() - started) / 20)
                world.close()
            # The bare client's GETs are not the last world's: no world runs now, so none records them.
            started = time.perf_counter()
            for _ in range(20 * READS):
                bare_client.get("bench:k")
            bare.append((time.perf_counter() - started) / (20 * READS))
        bare_client.delete("bench:k")
        per_command = (statistics.median(kit) - statistics.median(base)) / (READS - 1)
        b = statistics.median(bare)
        print(f"   {label:12} bare {b * 1e6:7.1f} us   recorded {per_command * 1e6:7.1f} us   {per_command / b:4.2f}x")
        servers.close()


def default_check(redis_url: str, pg_url: str) -> None:
    real = empty_db(redis_url)
    print("\n3. default check (every phase) over real Redis + PostgreSQL, seconds")
    for pattern, adapters in (*reference.REFERENCE.items(), *redis_py.REFERENCE.items()):
        for name, make in adapters.items():
            started = time.perf_counter()
            result = check(make, pattern, redis=real, db=pg_url)
            print(
                f"   {pattern:13} {make.__module__.rsplit('.', 1)[1]}:{name:22} {result.verdict:5} "
                f"{time.perf_counter() - started:6.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--only", choices=("throughput", "overhead", "default"), default=None)
    args = parser.parse_args()
    if args.only in (None, "throughput"):
        throughput(args.redis, args.postgres)
    if args.only in (None, "overhead"):
        overhead(args.redis)
    if args.only in (None, "default"):
        default_check(args.redis, args.postgres)


if __name__ == "__main__":
    main()
