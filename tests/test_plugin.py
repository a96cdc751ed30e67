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
    assert "FAIL invalidate-not-update: the write w1 stored k1.v1 into the cache instead of deleting the entry" in text
    assert (
        "Replay: cachepact check cachepact.adapters.broken:aside_update_on_write --pattern cache-aside --replay 'seq/"
        in text
    )
    assert "Traceback" not in text and "def test()" not in text


def test_the_returned_test_also_runs_when_called_directly():
    from cachepact import ConformanceFailure, conformance_test
    from cachepact.adapters.broken import aside_update_on_write
    from cachepact.adapters.reference import cache_aside_leased

    conformance_test(cache_aside_leased, pattern="cache-aside", max_examples=10, concurrency=False)()
    failing = conformance_test(aside_update_on_write, pattern="cache-aside", target="mine:make", concurrency=False)
    try:
        failing()
    except ConformanceFailure as e:
        assert e.result.target == "mine:make" and "Replay: cachepact check mine:make" in str(e)
    else:
        raise AssertionError("a broken adapter passed")


def test_a_bad_plugin_option_is_a_usage_error_naming_its_range(pytester):
    pytester.makepyfile(test_user=GOOD)
    result = pytester.runpytest_subprocess("--cachepact-max-examples", "-3")
    assert result.ret == 4  # pytest's usage error
    result.stderr.fnmatch_lines(["*--cachepact-max-examples: must be at least 1, not -3*"])


def test_the_short_summary_names_the_invariant_and_what_broke_it(pytester):
    pytester.makepyfile(test_user=BAD)
    result = pytester.runpytest_subprocess("--cachepact-seed", "1", "-rf")
    result.stdout.fnmatch_lines(["FAILED test_user.py::test_my_cache - invalidate-not-update: the write w1*"])


LOCAL = """
from cachepact import conformance_test
from cachepact.adapters.reference import cache_aside_locked


def make(env):
    return cache_aside_locked(env)


test_in_one_process = conformance_test(make, pattern="cache-aside")
"""


def test_instances_and_step_timeout_options_reach_the_check_and_the_replay_line_runs(pytester):
    pytester.makepyfile(test_local=LOCAL)
    passed = pytester.runpytest_subprocess("--cachepact-instances", "1", "--cachepact-step-timeout", "2")
    passed.assert_outcomes(passed=1)  # its process-local lock holds in one process
    failed = pytester.runpytest_subprocess("--cachepact-seed", "0")
    failed.assert_outcomes(failed=1)  # and not across two (the default)
    text = failed.stdout.str()
    # Before: "cachepact check make ...". The factory's test file sits in the folder pytest runs
    # from, so module:name reruns it (a test file in a subfolder is named by its path instead).
    replay = next(line for line in text.splitlines() if line.startswith("Replay: ")).removeprefix("Replay: ")
    assert replay.startswith("cachepact check test_local:make --pattern cache-aside --replay 'con/")
    import shlex

    from cachepact.cli import main

    assert main(shlex.split(replay)[1:]) == 1  # from the project's folder, it reruns the failure


def test_bad_instances_or_step_timeout_options_are_usage_errors(pytester):
    pytester.makepyfile(test_local=LOCAL)
    for option, value, fix in (
        ("--cachepact-instances", "0", "must be at least 1"),
        ("--cachepact-step-timeout", "-1", "must be above 0"),
        ("--cachepact-max-examples", "0", "must be at least 1"),
    ):
        result = pytester.runpytest_subprocess(option, value)
        assert result.ret == 4 and fix in result.stderr.str()
        assert "Traceback" not in result.stderr.str()


def test_the_redis_and_db_options_reach_every_conformance_test(pytester, tmp_path):
    pytester.makepyfile(test_user=BAD)
    db = tmp_path / "plugin.db"
    result = pytester.runpytest_subprocess(
        "--cachepact-seed", "1", "--cachepact-redis", "fakeredis://", "--cachepact-db", f"sqlite:///{db}"
    )
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert f"--redis fakeredis:// --db sqlite:///{db}" in text  # the replay line reruns it where it ran
    assert not db.exists()  # the kit's file, removed
    pytester.makepyfile(test_user=GOOD)
    unreachable = pytester.runpytest_subprocess("--cachepact-redis", "redis://127.0.0.1:1/0")
    unreachable.assert_outcomes(failed=1)
    assert "BackendError: redis redis://127.0.0.1:1/0: cannot connect" in unreachable.stdout.str()
