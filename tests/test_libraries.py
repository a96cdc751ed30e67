"""The library recipes (adapters/libraries): the verdicts the kit gives the libraries teams use.

Each recipe uses its library as the library's documentation shows. A library upgrade that changes
what it does under a race is a failing test here, naming the recipe and the verdict that changed.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import MutableMapping
from pathlib import Path

import pytest

from cachepact import Adapter, check
from cachepact.adapters.libraries.cachetools import LeasedRedisMapping, cached_over
from cachepact.adapters.libraries.dogpile import decoder, leased_region
from cachepact.adapters.libraries.findings import RECIPES, verdict

# dogpile.cache.redis stores with SETEX, which redis-py marks deprecated: the library's, not ours.
# cashews' own @cache.invalidate passes its deprecated rewrite= to itself.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:`rewrite` deprecated:DeprecationWarning"),
]

PAGE = Path(__file__).resolve().parent.parent / "spec" / "libraries.md"


@pytest.mark.parametrize("recipe", RECIPES, ids=[f"{r.module}:{r.name}" for r in RECIPES])
def test_each_recipe_gets_its_published_verdict(recipe):
    make = recipe.factory()
    alone = check(make, recipe.pattern, seed=0, concurrency=False)
    assert verdict(alone) == recipe.sequential, (
        f"{recipe.target} sequentially: {verdict(alone)}, not {recipe.sequential} as published\n{alone.report()}"
    )
    assert alone.not_reached == recipe.unseen, f"{recipe.target}: a pass that never reached {alone.not_reached}"
    raced = check(make, recipe.pattern, seed=0, max_examples=30)
    assert verdict(raced) == recipe.default, (
        f"{recipe.target} by default: {verdict(raced)}, not {recipe.default} as published\n{raced.report()}"
    )
    failing = check(make, recipe.pattern, seed=0, concurrency=False, faults=True, max_examples=60)
    assert verdict(failing) == recipe.faults, (
        f"{recipe.target} under faults: {verdict(failing)}, not {recipe.faults} as published\n{failing.report()}"
    )


def test_the_findings_page_states_the_verdicts_the_tests_assert():
    """spec/libraries.md is the tool's output (python -m cachepact.adapters.libraries.findings); it must
    state, for every recipe, the verdicts above, with a diagram for each failure."""
    text = PAGE.read_text()
    for recipe in RECIPES:
        head = f": `{recipe.name}` ({recipe.pattern})"
        parts = text.split("### ")[1:]
        part = next((p for p in parts if p.startswith(recipe.library + " ") and head in p.splitlines()[0]), None)
        assert part is not None, f"{recipe.target} is not on the page: regenerate it (see its first line)"
        assert f"Verdict: **{recipe.sequential}** alone, **{recipe.default}** by default." in part, recipe.target
        assert f"Under faults (`--no-concurrency --faults`): **{recipe.faults}**. {recipe.under_faults}." in part
        if recipe.default != "pass":
            assert "```mermaid" in part and f"Why: {recipe.cause}." in part and "What to do:" in part
        if recipe.fixed_by:
            assert f"Checked fix: `cachepact.adapters.libraries.{recipe.module}:{recipe.fixed_by}` (" in part
        if recipe.fixes:
            assert f"{recipe.fixes}." in part, recipe.target


def test_each_published_fix_fixes_recipes_of_its_own_library_and_passes():
    fixes = {(r.module, r.name): r for r in RECIPES if r.fixes}
    for recipe in RECIPES:
        if recipe.fixed_by:
            fix = fixes.get((recipe.module, recipe.fixed_by))
            assert fix is not None, f"{recipe.target}: its fix {recipe.fixed_by} is not a published fix"
            assert (fix.sequential, fix.default) == ("pass", "pass"), fix.target
    # Django's lock recipe is no published fix: with the clock moving inside races its holder outlasts
    # the lock's timeout (tests/test_race_clock.py); Django's cache has no lease to fill through.
    assert {r.module for r in fixes.values()} >= {"dogpile", "cachetools"}


class _DocsPop(LeasedRedisMapping):
    """The leased mapping with MutableMapping's own pop: it looks before it deletes."""

    pop = MutableMapping.pop


class _LooksAgain(LeasedRedisMapping):
    """The leased mapping with MutableMapping's own setdefault: @cached's look after the load
    takes a lease like any miss."""

    setdefault = MutableMapping.setdefault


class _PrefersCached(LeasedRedisMapping):
    """The leased mapping whose setdefault returns the cached item when its store was refused, as
    cachetools' docs put it: "prefer the item already in the cache"."""

    def setdefault(self, key, default=None):
        super().setdefault(key, default)
        value = self.client.get(key)
        return default if value is None else pickle.loads(value)


def _cached_over(mapping: type) -> object:
    return lambda env: cached_over(env, mapping(env.redis))


@pytest.mark.parametrize(
    ("mapping", "invariants"),
    [
        # The writer's look takes a lease and skips the delete (write-order); the marker it leaves
        # makes that app's next read serve without filling (who-populates): the first found counts.
        (_DocsPop, {"write-order", "who-populates"}),
        # A lease granted after the write lets the stale value in: a second fill, or a stale entry.
        (_LooksAgain, {"who-populates", "coherent-at-rest"}),
        # The cached item can be older than the value the read just loaded.
        (_PrefersCached, {"fresh-read"}),
    ],
    ids=["pop", "look", "prefer"],
)
def test_the_drafts_of_the_cachetools_fix_the_page_names_fail(mapping, invariants):
    """The mistakes the page says the kit caught in drafts of LeasedRedisMapping stay caught."""
    result = check(_cached_over(mapping), "read-through", seed=0, target=f"t:{mapping.__name__}")
    assert result.finding is not None and result.finding.invariant in invariants, result.report()


def test_a_recipe_without_its_library_is_one_line_naming_the_extra():
    code = "import sys; sys.modules['cachetools'] = None; from cachepact.cli import console; console()"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "check",
            "cachepact.adapters.libraries.cachetools:cached",
            "--pattern",
            "read-through",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'cachepact[cachetools]'" in done.stderr and "\n" not in done.stderr.strip(), done.stderr


def _on_arguments(env):
    region = leased_region(env)

    @region.cache_on_arguments()
    def product(key):
        return env.db.get(key)

    def write(key, value):
        env.db.put(key, value)
        product.invalidate(key)

    return Adapter(read=product, write=write, cache_code="dogpile.cache", decode=decoder(region))


def _by_hand(env):
    from dogpile.cache.api import NO_VALUE

    region = leased_region(env)

    def read(key):
        value = region.get(key)
        if value is NO_VALUE:
            value = env.db.get(key)
            region.set(key, value)
        return value

    def write(key, value):
        env.db.put(key, value)
        region.delete(key)

    return Adapter(read=read, write=write, decode=decoder(region))


@pytest.mark.parametrize(("make", "pattern"), [(_on_arguments, "read-through"), (_by_hand, "cache-aside")])
def test_any_region_on_the_leased_dogpile_backend_is_fixed(make, pattern):
    """The page says the fix is the backend, not get_or_create: cache_on_arguments and get/set by
    hand on it pass too, with the race's refused fill reached."""
    result = check(make, pattern, seed=0, max_examples=30, target=f"t:{make.__name__}")
    assert result.passed, result.report()
    assert "fill-refused" in result.reached


def test_a_dogpile_creator_that_raised_leaves_no_lease_its_thread_fills_with_later():
    """The leased backend once kept a lease its creator's failed load abandoned in the thread-local,
    and the next miss on that thread filled with it (reported as who-populates)."""
    from cachepact.adapters.libraries.dogpile import get_or_create_leased

    result = check(get_or_create_leased, "read-through", faults=True, replay="seq/r:k1!3b,r:k1")
    assert result.passed, result.report()


def test_a_lock_whose_release_failed_is_waited_out_on_the_clock():
    """Every participant sleeps in a poll loop and only time can end it: the clock moves by the
    sleep, the dead holder's lock expires, the writer goes on (it was a false timeout)."""
    from cachepact.adapters.libraries.django import get_set_locked

    result = check(get_set_locked, "cache-aside", faults=True, replay="seq/r:k1!6b,w:k1,r:k1")
    assert result.passed, result.report()
    assert "write" in result.reached


def test_a_read_whose_look_at_a_version_key_failed_may_go_to_the_db():
    """Flask-Caching's memoize reads its version key first; when that read fails it calls the
    function. A failed look at any key is a miss for the read's own entry, not a hit it skipped
    (it was reported hit-after-fill)."""
    from cachepact.adapters.libraries.flask import memoize

    result = check(memoize, "read-through", faults=True, replay="seq/r:k1,r:k1,r:k1!1b")
    assert result.passed, result.report()
    assert "fault" in result.reached
