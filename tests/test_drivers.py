"""How the drivers run Hypothesis: a failure of the kit's own inside a run is never a pass."""

from __future__ import annotations

import pytest
from hypothesis.errors import FlakyFailure

from cachepact.conformance.drive.hypothesis import run_seeded
from cachepact.conformance.runtime.signals import Violation


def test_a_kit_crash_hypothesis_calls_flaky_is_raised_not_taken_for_a_pass():
    def crashing():
        raise FlakyFailure("failed once, not on the rerun", [RuntimeError("dictionary changed size")])

    with pytest.raises(RuntimeError, match="dictionary changed size"):
        run_seeded(crashing, 0)


def test_a_violation_that_did_not_happen_again_ends_the_test_quietly():
    def flaky_violation():
        finding = type("F", (), {"invariant": "fresh-read", "message": "stale"})()
        raise FlakyFailure("failed once, not on the rerun", [Violation(finding)])

    run_seeded(flaky_violation, 0)  # the test kept its failing run


def early_refresh(env):
    """A hit sometimes reloads early (a probabilistic refresh with no lease): hit-after-fill, at a
    moment ``random`` decides."""
    import random

    import cachepact

    def read(key):
        value = env.cache.get(key)
        if value is not None and random.random() > 0.3:
            return value
        value = env.db.get(key)
        if value is not None:
            env.cache.set(key, value)
        return value

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return cachepact.Adapter(read=read, write=write)


def test_a_replay_of_an_adapter_that_draws_from_random_is_the_run_it_names():
    import random

    import cachepact

    random.seed(1234)
    before = random.getstate()
    found = cachepact.check(early_refresh, "cache-aside", seed=0, concurrency=False)
    assert found.finding is not None and found.finding.invariant == "hit-after-fill"
    assert random.getstate() == before  # the process's random is left as it was
    for _ in range(3):
        again = cachepact.check(early_refresh, "cache-aside", replay=found.replay, instances=1)
        assert again.finding is not None and again.finding.culprit == found.finding.culprit, again.report()
