"""What the kit finds in the caching libraries teams use: the recipes, their verdicts, and the page.

``RECIPES`` is the one table of what each recipe is and the verdicts it gets; the tests assert it
(a library upgrade that changes behaviour fails them, naming the recipe), and this module's command
writes the findings page from real checks, diagrams included:

    python -m cachepact.adapters.libraries.findings -o spec/libraries.md
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Callable

import attrs

from cachepact import INVARIANTS, check
from cachepact.diagrams import render, sequence_graph
from cachepact.model import Trace

STALENESS = "no-stale-after-failed-invalidate"

LEASES = (
    "fill through a lease (`cachepact.leases.Leases`, or `env.cache.lease_get`/`lease_set`): the write's "
    "delete voids the reader's lease, and the stale fill is refused"
)
VERSIONED = "or make the fill conditional on a version the write bumps (a `WATCH`ed key, or a Lua check)"
LOCKED = (
    "or hold one Redis lock per key around a miss's load and fill and around the write's update and "
    "delete, looking in the cache again once the lock is held, which holds only while no holder outlasts "
    "the lock's timeout (`django:get_set_locked` below)"
)


@attrs.frozen(kw_only=True)
class Recipe:
    library: str  # the distribution, as pip names it
    module: str  # cachepact.adapters.libraries.<module>
    name: str  # the factory in it
    pattern: str
    sequential: str  # the verdict with --no-concurrency: "pass" or an invariant
    default: str  # the verdict of the default check (concurrent, 2 app instances)
    unseen: tuple[str, ...] = ()  # situations its sequential check cannot see (out of the kit's sight)
    # The verdict with --no-concurrency --faults (Redis or the cache failing mid-operation), and what
    # the library does then (raise, swallow, cache the error) with what bounds the damage.
    faults: str = "pass"
    under_faults: str = ""
    cause: str = ""  # why it fails: the library's documented behaviour, or the recipe's usage
    advice: str = ""  # what a user should do
    fixed_by: str = ""  # the recipe in the same module that applies the advice, and passes
    fixes: str = ""  # a fix: how it closes the race of the recipes whose fixed_by names it

    @property
    def target(self) -> str:
        return f"cachepact.adapters.libraries.{self.module}:{self.name}"

    def factory(self) -> Callable:
        return getattr(importlib.import_module(f"cachepact.adapters.libraries.{self.module}"), self.name)


_DOGPILE = (
    "documented behaviour: `get_or_create` loads and fills with no guard against a `delete` that lands "
    "between its load and its fill (its lock only stops concurrent creators of one key)"
)
_DJANGO = "documented behaviour: `cache.set` stores unconditionally, so a fill that raced a `delete` lands"
_DJANGO_GOS = "documented behaviour: `get_or_set` is `get`, then `add` of the loader's value, unguarded"
_FLASK = "documented behaviour: the decorators load and `set` unconditionally on a miss"
_AIOCACHE = "documented behaviour: `@cached` loads through the function on a miss and `set`s its result unconditionally"
_CASHEWS = (
    "documented behaviour: `@cache` loads on a miss and `set`s unconditionally; `@cache.invalidate` deletes "
    "after the write returns, which a fill that loaded before the write can follow"
)
_AIO_REDIS = "the recipe's usage: `SET` after the load is unconditional, as with redis-py"
_DJANGO_ASYNC = (
    "documented behaviour: `aget`/`aset`/`adelete` are `get`/`set`/`delete` run through `sync_to_async`: "
    "the same unconditional `set`"
)

_RAISES_NO_TTL = (
    "The store's error reaches the caller (the library raises what the store raised); the write deletes "
    "after its DB put with no retry and the entries have no time to live, so a write that raised between "
    "its put and its delete leaves the old value cached for good. Fix: delete in a `finally` (or retry "
    "it), and give every entry a time to live, the bound on what a lost invalidation costs"
)
_RAISES_TTL = "The store's error reaches the caller; the entries' time to live ({ttl}) bounds a lost invalidation"
_FLASK_FAULTS = (
    "A read logs a backend error (`Exception possibly due to cache backend`) and calls the function "
    "instead, so a failing cache costs a load, not a wrong value; the entries' `CACHE_DEFAULT_TIMEOUT` "
    "(300 s) bounds a lost invalidation"
)

RECIPES = (
    Recipe(
        library="dogpile.cache",
        module="dogpile",
        name="get_or_create",
        pattern="read-through",
        sequential="pass",
        default="coherent-at-rest",
        faults="no-stale-after-failed-invalidate",
        under_faults=_RAISES_NO_TTL,
        cause=_DOGPILE,
        advice=f"{LEASES} (a dogpile backend whose `set` is a `lease_set`), {VERSIONED}",
        fixed_by="get_or_create_leased",
    ),
    Recipe(
        library="dogpile.cache",
        module="dogpile",
        name="get_or_create_redis",
        pattern="read-through",
        sequential="pass",
        default="coherent-at-rest",
        faults="pass",
        under_faults=_RAISES_TTL.format(ttl="`redis_expiration_time`, 600 s"),
        cause=_DOGPILE + "; `distributed_lock=True` changes nothing here",
        advice=f"{LEASES}, {VERSIONED}",
        fixed_by="get_or_create_leased",
    ),
    Recipe(
        library="dogpile.cache",
        module="dogpile",
        name="get_or_create_leased",
        pattern="read-through",
        sequential="pass",
        default="pass",
        faults="pass",
        under_faults=_RAISES_TTL.format(
            ttl="`redis_expiration_time`, 300 s; a lease whose creator raised stays out until it expires, "
            "and the thread does not reuse it"
        ),
        fixes="`LeasedRedisBackend` subclasses `dogpile.cache.redis`: a miss (`get_serialized`, and its "
        "`_multi`) takes the key's lease, the fill (`set_serialized`) is a lease-checked set, and `delete` "
        "(and `delete_multi`) voids outstanding leases. `cache_on_arguments` and `get`/`set` by hand on it "
        "pass too (tested). Only a thread that holds the key's lease stores it, so a `set` with no miss "
        "before it (`refresh`, `region.invalidate()`'s refresh) stores nothing. A creator that raises, or "
        "that itself misses another key (nested `get_or_create`), leaves the lease out for `lease_ttl` "
        "(10 s), and readers meanwhile load from the DB without filling. Entries expire in "
        "Redis (`redis_expiration_time`), not by dogpile's `expiration_time`: a soft-expired entry is a hit, "
        "so its refresh holds no lease and is not cached (the kit's first run of this recipe said so, as "
        "`who-populates`)",
    ),
    Recipe(
        library="dogpile.cache",
        module="dogpile",
        name="cache_on_arguments",
        pattern="read-through",
        sequential="pass",
        default="coherent-at-rest",
        faults="no-stale-after-failed-invalidate",
        under_faults=_RAISES_NO_TTL,
        cause=_DOGPILE + " (`cache_on_arguments` is `get_or_create` on the arguments' key)",
        advice=f"{LEASES}, {VERSIONED}",
        fixed_by="get_or_create_leased",
    ),
    Recipe(
        library="dogpile.cache",
        module="dogpile",
        name="get_set",
        pattern="cache-aside",
        sequential="pass",
        default="coherent-at-rest",
        faults="no-stale-after-failed-invalidate",
        under_faults=_RAISES_NO_TTL,
        cause="the recipe's usage: the textbook cache-aside (`region.get`, load, `region.set`) has the race",
        advice=f"{LEASES}",
        fixed_by="get_or_create_leased",
    ),
    Recipe(
        library="dogpile.cache",
        module="dogpile",
        name="get_or_create_refresh_ahead",
        pattern="refresh-ahead",
        sequential="pass",
        default="coherent-at-rest",
        faults="no-stale-after-failed-invalidate",
        under_faults=_RAISES_NO_TTL,
        cause=_DOGPILE + "; the `async_creation_runner` of dogpile's documentation stores what the creator "
        "returned just as unconditionally, on its own thread, after serving the soft-expired entry",
        advice=f"{LEASES} for the miss (as `get_or_create_leased`), and a refresh that stores only while the "
        "entry is as it was when the refresh began (what Caffeine does: a refresh raced by a write is "
        "discarded), for instance a `WATCH` on the key around its load and set; or one lock per key around "
        "a miss's load and fill, the refresh, and the write's update and delete "
        "(`cachepact.adapters.reference:refresh_ahead_redis_locked` passes)",
    ),
    Recipe(
        library="cachetools",
        module="cachetools",
        name="cached",
        pattern="read-through",
        sequential="pass",
        default="coherent-at-rest",
        faults="no-stale-after-failed-invalidate",
        under_faults=_RAISES_NO_TTL,
        cause="documented behaviour: `@cached` stores the function's result unconditionally; its `lock=` guards "
        "the mapping, not the load",
        advice=f"{LEASES} (a mapping whose `__setitem__` is a `lease_set`), {VERSIONED}",
        fixed_by="cached_leased",
    ),
    Recipe(
        library="cachetools",
        module="cachetools",
        name="cached_leased",
        pattern="read-through",
        sequential="pass",
        default="pass",
        faults="pass",
        under_faults=_RAISES_TTL.format(ttl="300 s"),
        fixes="`LeasedRedisMapping` is the mapping `@cached` stores into, on Redis through `Leases`: a miss "
        "takes the lease, the store after the load (`setdefault`) is lease-checked, and a delete voids "
        "leases. Three details the kit caught in drafts of it: `MutableMapping.setdefault` looks again with "
        "a lease, and one granted after a write lets the stale value in (`who-populates`); returning the "
        "cached item instead of the loaded one, as `@cached` prefers, can return a value older than the one "
        "the read loaded (`fresh-read`), so `setdefault` returns the loaded value; and `MutableMapping.pop`, "
        "the docs' invalidation, looks before it deletes, so on a miss it took a lease and deleted nothing "
        "(`write-order`, or `who-populates`): the mapping's own `pop` always deletes. `get` and `in` are "
        "plain looks that take no lease. A loader that raises leaves the lease out for `lease_ttl` (10 s), "
        "and readers meanwhile load from the DB without filling",
    ),
    Recipe(
        library="cachetools",
        module="cachetools",
        name="ttl_cache",
        pattern="cache-aside",
        sequential="pass",
        default="fresh-read",
        faults="pass",
        under_faults=_RAISES_TTL.format(ttl="`TTLCache(ttl=300)`"),
        unseen=("hit",),
        cause="the recipe's usage: a `TTLCache` is per process, and a write clears only its own process's; "
        "other processes serve the old value until their TTL runs out",
        advice="keep the per-process tier only for data that may be that stale (the TTL is the bound), or "
        "broadcast invalidations to every process (Redis pub/sub), or drop the L1",
    ),
    Recipe(
        library="Django",
        module="django",
        name="get_set",
        pattern="cache-aside",
        sequential="pass",
        default="coherent-at-rest",
        faults="pass",
        under_faults=_RAISES_TTL.format(ttl="`TIMEOUT`, 300 s"),
        cause=_DJANGO,
        advice=f"{LEASES}, {LOCKED}",
    ),
    Recipe(
        library="Django",
        module="django",
        name="get_set_redis",
        pattern="cache-aside",
        sequential="pass",
        default="coherent-at-rest",
        faults="pass",
        under_faults=_RAISES_TTL.format(
            ttl="`TIMEOUT`, 300 s: `RedisCache` raises redis-py's errors, it swallows none"
        ),
        cause=_DJANGO + " (`RedisCache`)",
        advice=f"{LEASES}, {VERSIONED}, {LOCKED}",
    ),
    Recipe(
        library="Django",
        module="django",
        name="get_set_locked",
        pattern="cache-aside",
        sequential="pass",
        default="adapter-error",
        faults="pass",
        under_faults=_RAISES_TTL.format(
            ttl="`TIMEOUT`, 300 s; a lock whose release failed stays until its own timeout, 10 s, and the next "
            "holder waits it out"
        ),
        cause="the recipe's usage: `cache.get`/`cache.set`/`cache.delete` on `RedisCache` with one redis-py "
        "`Lock(timeout=10)` per key held around a miss's load and fill and around the write's update and "
        "delete (a miss looks again once it holds the lock). The lock expires after its timeout even while "
        "its holder still works: a reader paused past 10 s (a GC pause, a slow load) loses the lock, a writer "
        "takes it, and the reader's release raises `LockNotOwnedError`, shown above with the clock moved on "
        "inside the race. Code that silences that error keeps the worse outcome: the fill it made after the "
        "writer's delete stays, `coherent-at-rest` (tests/test_race_clock.py checks that variant)",
        advice=f"{LEASES} (a token the write's delete voids has no timeout to outlast), or fence the fill: store "
        "it, in one Lua script, only while the lock key still holds the reader's token",
    ),
    Recipe(
        library="Django",
        module="django",
        name="delete_in_atomic",
        pattern="cache-aside",
        sequential="pass",
        default="invalidate-after-commit",
        faults="pass",
        under_faults=_RAISES_TTL.format(ttl="the leases' entries, 300 s"),
        unseen=("invalidate",),
        cause="the recipe's usage: the invalidation (`Leases.delete`) inside `transaction.atomic()` lands before "
        "the commit; a read in between loads the old value, still the committed one, and fills it. Reads fill "
        "through a lease here, so this is the one race left",
        advice="invalidate after the commit: `transaction.on_commit(lambda: leases.delete(key))`, or after the "
        "`atomic` block",
        fixed_by="delete_on_commit",
    ),
    Recipe(
        library="Django",
        module="django",
        name="delete_on_commit",
        pattern="cache-aside",
        sequential="pass",
        default="pass",
        faults="pass",
        under_faults=_RAISES_TTL.format(
            ttl="300 s; a COMMIT whose reply was lost took effect without running the callback, which only the "
            "time to live converges"
        ),
        fixes="Django runs `transaction.on_commit` callbacks after the outermost `atomic` block commits, never "
        "after a rollback: the invalidation comes after the value is visible",
    ),
    Recipe(
        library="Django",
        module="django",
        name="get_or_set",
        pattern="read-through",
        sequential="pass",
        default="coherent-at-rest",
        faults="pass",
        under_faults=_RAISES_TTL.format(ttl="`TIMEOUT`, 300 s"),
        cause=_DJANGO_GOS,
        advice=f"{LEASES}, {LOCKED}",
    ),
    Recipe(
        library="Django",
        module="django",
        name="get_or_set_redis",
        pattern="read-through",
        sequential="pass",
        default="coherent-at-rest",
        faults="pass",
        under_faults=_RAISES_TTL.format(ttl="`TIMEOUT`, 300 s"),
        cause=_DJANGO_GOS + " (`RedisCache`)",
        advice=f"{LEASES}, {VERSIONED}, {LOCKED}",
    ),
    Recipe(
        library="Django",
        module="django",
        name="aget_aset_redis",
        pattern="cache-aside",
        sequential="pass",
        default="coherent-at-rest",
        faults="pass",
        under_faults=_RAISES_TTL.format(ttl="`TIMEOUT`, 300 s"),
        cause=_DJANGO_ASYNC,
        advice=f"{LEASES} (`cachepact.leases.AsyncLeases` in async code), {VERSIONED}, {LOCKED}",
    ),
    Recipe(
        library="Django",
        module="django",
        name="aget_or_set_redis",
        pattern="read-through",
        sequential="pass",
        default="coherent-at-rest",
        faults="pass",
        under_faults=_RAISES_TTL.format(ttl="`TIMEOUT`, 300 s"),
        cause=_DJANGO_ASYNC + " (`aget_or_set`: `aget`, then `aadd` of the loader's value)",
        advice=f"{LEASES} (`cachepact.leases.AsyncLeases` in async code), {VERSIONED}, {LOCKED}",
    ),
    Recipe(
        library="Flask-Caching",
        module="flask",
        name="memoize",
        pattern="read-through",
        sequential="pass",
        default="coherent-at-rest",
        faults="pass",
        under_faults=_FLASK_FAULTS,
        cause=_FLASK + " (`memoize`; `delete_memoized` is the delete it races)",
        advice=f"{LEASES}, {VERSIONED}, {LOCKED}",
    ),
    Recipe(
        library="Flask-Caching",
        module="flask",
        name="cached",
        pattern="read-through",
        sequential="pass",
        default="coherent-at-rest",
        faults="pass",
        under_faults=_FLASK_FAULTS,
        cause=_FLASK + " (`cached`)",
        advice=f"{LEASES}, {VERSIONED}, {LOCKED}",
    ),
    Recipe(
        library="redis",
        module="redis_asyncio",
        name="get_set",
        pattern="cache-aside",
        sequential="pass",
        default="coherent-at-rest",
        faults="pass",
        under_faults=_RAISES_TTL.format(ttl="300 s"),
        cause=_AIO_REDIS,
        advice=f"{LEASES} (`cachepact.leases.AsyncLeases` in async code), {VERSIONED}",
        fixed_by="leased",
    ),
    Recipe(
        library="redis",
        module="redis_asyncio",
        name="leased",
        pattern="cache-aside",
        sequential="pass",
        default="pass",
        faults="pass",
        under_faults=_RAISES_TTL.format(ttl="300 s"),
        fixes="`AsyncLeases.get` grants a miss the key's lease, `set` fills only under it, and the write's "
        "`delete` voids it, so a fill that loaded before the write is refused",
    ),
    Recipe(
        library="aiocache",
        module="aiocache",
        name="cached_redis",
        pattern="read-through",
        sequential="pass",
        default="coherent-at-rest",
        faults="pass",
        under_faults=(
            "A read logs a cache error (`Couldn't retrieve`) and calls the function, and a failed fill is "
            "logged, not raised; the write's `delete` raises. The entries' `ttl` (300 s) bounds a lost "
            "invalidation"
        ),
        cause=_AIOCACHE,
        advice=f"{LEASES} (`cachepact.leases.AsyncLeases` in async code), {VERSIONED}",
        fixed_by="cached_leased",
    ),
    Recipe(
        library="aiocache",
        module="aiocache",
        name="cached_leased",
        pattern="read-through",
        sequential="pass",
        default="pass",
        faults="pass",
        under_faults=(
            "As `cached_redis`: read errors are logged and the function called, the write's `delete` raises; "
            "the `ttl` (300 s) bounds a lost invalidation"
        ),
        fixes="`leased_cached` overrides `cached`'s `get_from_cache` and `set_in_cache`: a miss takes the "
        "key's lease (`AsyncLeases` on the decorator's own Redis client), the fill is lease-checked, and the "
        "write deletes through the same leases",
    ),
    Recipe(
        library="cashews",
        module="cashews",
        name="cache_invalidate",
        pattern="read-through",
        sequential="pass",
        default="coherent-at-rest",
        faults="fresh-read",
        under_faults=(
            "cashews' default `suppress=True` logs a Redis error and swallows it: the write's failed delete "
            "returns as if it had invalidated, so readers get the old value for up to the `ttl` (5 minutes) "
            "after a write that reported success, and the caller cannot retry. Set it up with "
            "`suppress=False` (`cache_invalidate_raising`)"
        ),
        cause=_CASHEWS,
        advice=f"{LEASES} (`cachepact.leases.AsyncLeases` in async code), {VERSIONED}",
    ),
    Recipe(
        library="cashews",
        module="cashews",
        name="cache_invalidate_raising",
        pattern="read-through",
        sequential="pass",
        default="coherent-at-rest",
        faults="pass",
        under_faults=_RAISES_TTL.format(ttl="`ttl`, 5 minutes"),
        cause=_CASHEWS,
        advice=f"{LEASES} (`cachepact.leases.AsyncLeases` in async code), {VERSIONED}",
    ),
)


def verdict(result) -> str:
    return result.finding.invariant if result.finding else "pass"


def section(recipe: Recipe) -> str:
    """One recipe's findings, from a sequential and a default check run now."""
    make = recipe.factory()
    version = importlib.metadata.version(recipe.library)
    alone = check(make, recipe.pattern, seed=0, concurrency=False, target=recipe.target)
    raced = check(make, recipe.pattern, seed=0, target=recipe.target)
    lines = [
        f"### {recipe.library} {version}: `{recipe.name}` ({recipe.pattern})",
        "",
        f"`cachepact check {recipe.target} --pattern {recipe.pattern}`",
        "",
        "| invariant | `--no-concurrency` | default (concurrent, 2 app instances) |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| `{name}` | {alone.status(name)} | {raced.status(name)} |"
        for name, _ in alone.statuses
        if name in INVARIANTS
    ]
    lines += ["", f"Verdict: **{verdict(alone)}** alone, **{verdict(raced)}** by default."]
    failing = check(make, recipe.pattern, seed=0, concurrency=False, faults=True, target=recipe.target)
    lines += ["", f"Under faults (`--no-concurrency --faults`): **{verdict(failing)}**. {recipe.under_faults}."]
    if failing.finding is not None:
        lines += ["", f"> {failing.finding.message}", "", f"Replay: `{failing.replay_command}`"]
    else:
        lines += [f"> {line}" for line in failing.report().splitlines() if line.startswith(f"{STALENESS}:")]
    if raced.finding is not None:
        f = raced.finding
        graph = sequence_graph(Trace(steps=raced.steps), culprit=f.culprit, title=f"{recipe.name}: {f.invariant}")
        lines += [
            "",
            f"> {f.message}",
            "",
            "```mermaid",
            str(render(graph, "mermaid")).rstrip("\n"),
            "```",
            "",
            f"Why: {recipe.cause}.",
            "",
            f"What to do: {recipe.advice}.",
        ]
        if recipe.fixed_by:
            fix = f"cachepact.adapters.libraries.{recipe.module}:{recipe.fixed_by}"
            names = [(r.module, r.name) for r in RECIPES]
            where = "below" if names.index((recipe.module, recipe.fixed_by)) > RECIPES.index(recipe) else "above"
            lines += ["", f"Checked fix: `{fix}` ({where}) applies this and passes."]
        lines += ["", f"Replay: `{raced.replay_command}`"]
    if recipe.fixes:
        fixed = [r.name for r in RECIPES if r.module == recipe.module and r.fixed_by == recipe.name]
        lines += ["", f"The fix for {', '.join(f'`{n}`' for n in fixed)}: {recipe.fixes}."]
    return "\n".join(lines)


def page() -> str:
    sections = [section(recipe) for recipe in RECIPES]
    out = [
        "# What cachepact finds in the caching libraries teams use",
        "",
        "Generated by `python -m cachepact.adapters.libraries.findings -o spec/libraries.md` from real checks of",
        "the recipes in `cachepact.adapters.libraries` (each uses its library as the library's documentation",
        'shows); `tests/test_libraries.py` asserts every verdict below. "Why" says whether documented library',
        "behaviour is the cause, or the recipe's usage.",
        "",
        "Every recipe is correct sequentially: the libraries load, fill and invalidate as their patterns say.",
        "Used as documented, each loses the stale-set race (a read loads, a write updates the DB and deletes,",
        "the read fills the value it loaded before the write) or, for a per-process tier, serves another",
        "process's stale copy. The fixes are recipes as well, checked the same way: leases hold; a lock that",
        "covers the writer too holds only while no holder outlasts the lock's timeout, which the check shows",
        "by moving the clock inside races (`django:get_set_locked`).",
        "",
        "The async recipes (`redis.asyncio`, aiocache, cashews, Django's `aget`/`aset`) are coroutine adapters;",
        "their `redis.asyncio` clients, made by the library itself, are recorded as redis-py's are. They lose",
        "the same race as their synchronous counterparts, and the same leases (`AsyncLeases`) close it.",
        "",
        "Under faults (the cache or Redis failing mid-operation, `--faults`) every library here lets the store's",
        "error reach the caller, except Flask-Caching's and aiocache's reads, which log it and call the function,",
        "and cashews, which by default (`suppress=True`) swallows every Redis error, a failed invalidation",
        "included. What decides the verdict is the recipe: a write that deletes after its DB put with no",
        "`finally` and no retry leaves the old value cached when it raises in between, and only a time to live",
        "bounds that. Recipes whose entries have one pass, the report stating the bound; those without fail",
        "`no-stale-after-failed-invalidate`. A write that reports success after its delete failed fails",
        "`fresh-read`: readers get the old value after a write that said it was done.",
        "",
        "| library | recipe | pattern | `--no-concurrency` | default | `--no-concurrency --faults` |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in RECIPES:
        fix = " (fix)" if r.fixes else ""
        out.append(
            f"| {r.library} | `{r.module}:{r.name}`{fix} | {r.pattern} | {r.sequential} | {r.default} | {r.faults} |"
        )
    for text in sections:
        out += ["", text]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cachepact.adapters.libraries.findings")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the page here (default: stdout)")
    args = parser.parse_args(argv)
    text = page()
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
