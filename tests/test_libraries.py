"""The library recipes (adapters/libraries): the verdicts the kit gives the libraries teams use.

Each recipe uses its library as the library's documentation shows. A library upgrade that changes
what it does under a race is a failing test here, naming the recipe and the verdict that changed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from cachepact import check
from cachepact.adapters.libraries import cachetools as cachetools_recipes
from cachepact.adapters.libraries import django as django_recipes
from cachepact.adapters.libraries import dogpile as dogpile_recipes
from cachepact.adapters.libraries import flask as flask_recipes

# dogpile.cache.redis stores with SETEX, which redis-py marks deprecated: the library's, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")

# (recipe, pattern, verdict sequentially, verdict by default: concurrent, 2 app instances,
#  situations the sequential check cannot see)
VERDICTS = [
    (dogpile_recipes.get_or_create, "read-through", "pass", "coherent-at-rest", ()),
    (dogpile_recipes.get_or_create_redis, "read-through", "pass", "coherent-at-rest", ()),
    (dogpile_recipes.cache_on_arguments, "read-through", "pass", "coherent-at-rest", ()),
    (dogpile_recipes.get_set, "cache-aside", "pass", "coherent-at-rest", ()),
    (cachetools_recipes.cached, "read-through", "pass", "coherent-at-rest", ()),
    (django_recipes.get_set, "cache-aside", "pass", "coherent-at-rest", ()),
    (django_recipes.get_set_redis, "cache-aside", "pass", "coherent-at-rest", ()),
    (django_recipes.get_or_set, "read-through", "pass", "coherent-at-rest", ()),
    (django_recipes.get_or_set_redis, "read-through", "pass", "coherent-at-rest", ()),
    (flask_recipes.memoize, "read-through", "pass", "coherent-at-rest", ()),
    (flask_recipes.cached, "read-through", "pass", "coherent-at-rest", ()),
    # One instance's L1 answers every repeat read, out of the kit's sight: the shared cache never hits.
    (cachetools_recipes.ttl_cache, "cache-aside", "pass", "fresh-read", ("hit",)),
]


def _verdict(result):
    return result.finding.invariant if result.finding else "pass"


@pytest.mark.parametrize(
    ("make", "pattern", "sequential", "concurrent", "unseen"),
    VERDICTS,
    ids=[f"{m.__module__.rsplit('.', 1)[1]}:{m.__name__}" for m, *_ in VERDICTS],
)
def test_each_recipe_gets_its_published_verdict(make, pattern, sequential, concurrent, unseen):
    name = f"{make.__module__}:{make.__name__}"
    alone = check(make, pattern, seed=0, concurrency=False)
    assert _verdict(alone) == sequential, f"{name} sequentially: {_verdict(alone)}, not {sequential}\n{alone.report()}"
    assert alone.not_reached == unseen, f"{name}: a pass that never reached {alone.not_reached} says little"
    raced = check(make, pattern, seed=0, max_examples=30)
    assert _verdict(raced) == concurrent, f"{name} by default: {_verdict(raced)}, not {concurrent}\n{raced.report()}"


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
