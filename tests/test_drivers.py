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
