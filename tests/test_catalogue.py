"""Every broken adapter is caught with the invariant it declares; every correct one passes."""

from __future__ import annotations

import pytest

from cachepact.adapters.broken import CATALOGUE
from cachepact.adapters.reference import REFERENCE
from cachepact.conformance import INVARIANTS, check

REFERENCES = [(pattern, name, make) for pattern, d in REFERENCE.items() for name, make in d.items()]


@pytest.mark.parametrize("entry", list(CATALOGUE.values()), ids=list(CATALOGUE))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_broken_adapter_is_caught_by_its_declared_invariant(entry, seed):
    result = check(entry.make, entry.pattern, seed=seed, target=entry.name)
    assert not result.passed, f"{entry.name} ({entry.why}) passed"
    assert result.finding.invariant == entry.invariant, result.report()


def test_the_catalogue_covers_every_invariant_for_both_patterns():
    for pattern in REFERENCE:
        declared = {b.invariant for b in CATALOGUE.values() if b.pattern == pattern}
        assert set(INVARIANTS) | {"adapter-error"} <= declared, pattern


@pytest.mark.parametrize(("pattern", "name", "make"), REFERENCES, ids=[n for _, n, _ in REFERENCES])
@pytest.mark.parametrize("seed", range(5))
def test_every_reference_adapter_passes_over_many_seeds(pattern, name, make, seed):
    result = check(make, pattern, seed=seed, target=name)
    assert result.passed, result.report()
    assert result.not_reached == (), "a pass that never reached a hit/miss/fill says little"


@pytest.mark.parametrize(("pattern", "name", "make"), REFERENCES, ids=[n for _, n, _ in REFERENCES])
def test_a_reference_adapter_checked_against_the_other_pattern_fails_who_loads(pattern, name, make):
    other = "read-through" if pattern == "cache-aside" else "cache-aside"
    result = check(make, other, seed=0)
    assert result.finding is not None and result.finding.invariant == "who-loads"
