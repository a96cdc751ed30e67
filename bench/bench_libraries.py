"""The library recipes' default check, timed over the in-process fakeredis and the machine's Redis
(issue 12's target: at most 15 s each).

    python bench/bench_libraries.py [--redis redis://127.0.0.1:6379]

A recipe on env.cache runs on Redis with ``redis=`` too (env.cache then lives on the server).
"""

from __future__ import annotations

import argparse
import time
import warnings

import redis

from cachepact import check
from cachepact.adapters.libraries.findings import RECIPES, verdict


def empty_db(url: str) -> str:
    for n in range(1, 16):
        if redis.Redis.from_url(f"{url}/{n}").dbsize() == 0:
            return f"{url}/{n}"
    raise SystemExit("no empty logical database on that Redis")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    args = parser.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)  # dogpile's SETEX, redis-py's warning
    real = empty_db(args.redis)
    print(f"default check per recipe, seconds (goal: at most 15); real Redis at {real}")
    print(f"   {'recipe':48} {'fakeredis':>16} {'real Redis':>16}")
    worst = 0.0
    for recipe in RECIPES:
        row = []
        for where in ({"redis": "fakeredis://"}, {"redis": real}):
            started = time.perf_counter()
            result = check(recipe.factory(), recipe.pattern, **where)
            elapsed = time.perf_counter() - started
            worst = max(worst, elapsed)
            row.append(f"{verdict(result):>10} {elapsed:5.1f}")
        print(f"   {recipe.module + ':' + recipe.name:48} {row[0]:>16} {row[1]:>16}")
    print(f"   slowest: {worst:.1f} s")


if __name__ == "__main__":
    main()
