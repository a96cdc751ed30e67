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


def test_a_seed_draws_the_same_examples_whatever_literals_the_loaded_modules_hold(tmp_path, monkeypatch):
    # Hypothesis draws now and then from the integer literals of local modules (the user's, the
    # kit's own when installed editable): one seed drew other examples from a checkout than from a
    # wheel. Loading a module full of literals must not change what a seed draws.
    from cachepact import Adapter, check
    from cachepact.adapters.reference import cache_aside

    def drawn() -> list[tuple[str, object]]:
        calls: list[tuple[str, object]] = []

        def make(env):
            inner = cache_aside(env)

            def read(key):
                calls.append(("r", key))
                return inner.read(key)

            def write(key, value):
                calls.append(("w", key))
                inner.write(key, value)

            return Adapter(read=read, write=write)

        check(make, "cache-aside", seed=3, concurrency=False, max_examples=40, steps=20)
        return calls

    before = drawn()
    assert drawn() == before
    (tmp_path / "literals_galore.py").write_text("TABLE = [" + ", ".join(str(i) for i in range(100, 1000)) + "]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("literals_galore")
    assert drawn() == before
