"""The async catalogue (``adapters/coroutines.py``): each coroutine adapter gets its published verdicts
sequentially and by default, and the verdicts of its synchronous twin."""

from __future__ import annotations

import pytest

from cachepact import check
from cachepact.adapters.coroutines import ASYNC_CATALOGUE

CASES = list(ASYNC_CATALOGUE.values())


def verdict(result):
    return result.finding.invariant if result.finding else "pass"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_coroutine_adapter_gets_its_verdicts_and_its_twins(case):
    alone = check(case.make, case.pattern, seed=0, concurrency=False, max_examples=60, instances=case.instances)
    assert verdict(alone) == case.sequential, alone.report()
    twin_alone = check(case.twin, case.pattern, seed=0, concurrency=False, max_examples=60, instances=case.instances)
    assert verdict(twin_alone) == verdict(alone), twin_alone.report()
    raced = check(case.make, case.pattern, seed=0, max_examples=60, instances=case.instances)
    assert verdict(raced) == case.default, raced.report()
    twin_raced = check(case.twin, case.pattern, seed=0, max_examples=60, instances=case.instances)
    assert verdict(twin_raced) == verdict(raced), twin_raced.report()
    if raced.finding is not None:  # its replay line reruns it
        assert verdict(check(case.make, case.pattern, replay=raced.replay, instances=case.instances)) == case.default


def test_the_catalogue_covers_each_kind_of_verdict():
    assert {c.sequential for c in CASES} >= {"pass", "who-populates", "fresh-read", "single-load", "who-loads"}
    assert {c.default for c in CASES} >= {"pass", "coherent-at-rest", "fresh-read"}
