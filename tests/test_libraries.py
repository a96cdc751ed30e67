"""The library recipes (adapters/libraries): the verdicts the kit gives the libraries teams use.

Each recipe uses its library as the library's documentation shows. A library upgrade that changes
what it does under a race is a failing test here, naming the recipe and the verdict that changed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cachepact import check
from cachepact.adapters.libraries.findings import RECIPES, verdict

# dogpile.cache.redis stores with SETEX, which redis-py marks deprecated: the library's, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")

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
        if recipe.default != "pass":
            assert "```mermaid" in part and f"Why: {recipe.cause}." in part and "What to do:" in part


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
