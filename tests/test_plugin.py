"""The pytest plugin: a user's suite gates on its adapter with one line, and fails with the report."""

from __future__ import annotations

pytest_plugins = ["pytester"]

GOOD = """
from cachepact.adapters.reference import cache_aside_leased
from cachepact import conformance_test

test_my_cache = conformance_test(cache_aside_leased, pattern="cache-aside")
"""

BAD = """
from cachepact.adapters.broken import aside_update_on_write
from cachepact import conformance_test

test_my_cache = conformance_test(aside_update_on_write, pattern="cache-aside")
"""


def test_a_conforming_adapter_passes_in_a_users_suite(pytester):
    pytester.makepyfile(test_user=GOOD)
    result = pytester.runpytest_subprocess("--cachepact-max-examples", "20")
    result.assert_outcomes(passed=1)


def test_a_broken_adapter_fails_with_the_same_report_as_the_cli(pytester):
    pytester.makepyfile(test_user=BAD)
    result = pytester.runpytest_subprocess("--cachepact-seed", "1")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "FAIL invalidate-not-update: the write w1 stored v1 into the cache instead of deleting the entry" in text
    assert "Replay: cachepact check aside_update_on_write --pattern cache-aside --replay 'seq/" in text
    assert "Traceback" not in text and "def test()" not in text
