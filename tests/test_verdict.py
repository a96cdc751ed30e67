"""explore, check and prove answer in one shape (``outcome``, a ``Verdict``): a gate reads them alike."""

from __future__ import annotations

import pytest

import cachepact
from cachepact.adapters.reference import RACE_FREE, REFERENCE
from cachepact.model import PROPERTIES, Scenario, Verdict, explore, invariant_names, pattern_named

CASES = [(pattern, name, make) for pattern, d in REFERENCE.items() for name, make in d.items() if "locked" not in name]


@pytest.mark.parametrize(("pattern", "name", "make"), CASES, ids=[n for _, n, _ in CASES])
def test_the_three_checkers_agree_in_one_shape(pattern, name, make):
    p = pattern_named(pattern)
    fixed = name in RACE_FREE
    model = explore(Scenario(pattern=p, readers=1, writers=1, leases=fixed)).outcome
    checked = cachepact.check(make, pattern, seed=0, max_examples=20).outcome
    proved = cachepact.prove(make, pattern, readers=1, writers=1).outcome
    for verdict in (model, checked, proved):
        assert isinstance(verdict, Verdict)
        assert verdict.holds is fixed, (name, verdict)
        assert verdict.word == ("pass" if fixed else "fail")
        if fixed:
            assert verdict.failed == () and verdict.counterexample is None
        else:
            assert "coherent-at-rest" in verdict.failed and len(verdict.counterexample) >= 5
    # The adapter's checks name the pattern's invariants; the model's, those over its states.
    assert [name for name, _ in checked.checks] == [name for name, _ in proved.checks]
    assert {name for name, _ in model.checks} == set(PROPERTIES) & set(invariant_names(p))


def test_no_verdict_is_none_not_a_pass():
    proof = cachepact.prove(REFERENCE["cache-aside"]["cache_aside_leased"], "cache-aside", limit=3)
    assert not proof.complete and proof.outcome.holds is None and proof.outcome.word == "none"
