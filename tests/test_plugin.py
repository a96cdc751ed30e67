"""The pytest plugin: a user's suite gates on its adapter with one line, one test per invariant, and
fails with the report."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """pytest cuts the short summary to the terminal's width (80 in a subprocess): keep it whole."""
    monkeypatch.setenv("COLUMNS", "300")


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
    result.assert_outcomes(passed=9)  # the check, and each of cache-aside's 8 invariants


def test_a_broken_adapter_fails_with_the_same_report_as_the_cli(pytester):
    pytester.makepyfile(test_user=BAD)
    result = pytester.runpytest_subprocess("--cachepact-seed", "1")
    result.assert_outcomes(failed=1, passed=1, skipped=7)  # the check ran; it stopped at the failure
    text = result.stdout.str()
    assert "FAIL invalidate-not-update: the write w1 stored k1.v1 into the cache instead of deleting the entry" in text
    assert (
        "Replay: cachepact check cachepact.adapters.broken:aside_update_on_write --pattern cache-aside --replay 'seq/"
        in text
    )
    assert "Traceback" not in text and "def test()" not in text


def test_a_users_suite_under_pytest_xdist_gets_the_outcomes_and_report_of_one_process(pytester):
    pytester.makepyfile(test_user=GOOD + BAD.replace("test_my_cache", "test_broken"))
    args = ("--cachepact-max-examples", "20", "--cachepact-seed", "1", "-p", "xdist")
    one = pytester.runpytest_subprocess(*args, "-n", "0")
    spread = pytester.runpytest_subprocess(*args, "-n", "2")
    for result in (one, spread):
        result.assert_outcomes(passed=10, failed=1, skipped=7)
    assert "2 workers" in spread.stdout.str() or "gw1" in spread.stdout.str()
    # Each worker runs the check its tests need: the same seed, the same minimal run, the same replay.
    replay = [line for line in one.stdout.lines if line.startswith("Replay: ")]
    assert replay and replay == [line for line in spread.stdout.lines if line.startswith("Replay: ")][: len(replay)]


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
    result.stdout.fnmatch_lines(["FAILED test_user.py::test_my_cache::invalidate-not-update - the write w1 stored*"])


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
    passed.assert_outcomes(passed=9)  # its process-local lock holds in one process
    failed = pytester.runpytest_subprocess("--cachepact-seed", "0")
    failed.assert_outcomes(failed=1, passed=1, skipped=7)  # and not across two (the default)
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
    result.assert_outcomes(failed=1, passed=1, skipped=7)
    text = result.stdout.str()
    assert f"--redis fakeredis:// --db sqlite:///{db}" in text  # the replay line reruns it where it ran
    assert not db.exists()  # the kit's file, removed
    pytester.makepyfile(test_user=GOOD)
    unreachable = pytester.runpytest_subprocess("--cachepact-redis", "redis://127.0.0.1:1/0")
    unreachable.assert_outcomes(failed=1, skipped=8)
    text = unreachable.stdout.str()
    # Before: a traceback through the kit's backends. Now one line, the fix named, and nothing else.
    [line] = [line for line in text.splitlines() if "BackendError" in line and not line.startswith("FAILED")]
    assert line.startswith("BackendError: redis redis://127.0.0.1:1/0: cannot connect") and "running there?" in line
    assert "Traceback" not in text and "cachepact/backends" not in text and "site-packages" not in text
    unreachable.stdout.fnmatch_lines(["FAILED test_user.py::test_my_cache::check - BackendError: redis *"])


def line_of(source, text):
    """The line of ``source`` (as pytester writes it, dedented and stripped) that starts with ``text``."""
    import textwrap

    lines = textwrap.dedent(source).strip().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(text))


def junit(pytester, *args):
    """Each <testcase> of the JUnit file pytest writes: (classname, name) -> (status, message)."""
    result = pytester.runpytest_subprocess("--junitxml=out.xml", *args)
    cases = {}
    for case in ET.parse(pytester.path / "out.xml").iter("testcase"):
        outcome = next((child for child in case if child.tag in ("failure", "skipped", "error")), None)
        status = "pass" if outcome is None else outcome.tag
        cases[case.get("classname"), case.get("name")] = (status, None if outcome is None else outcome.get("message"))
    return result, cases


def test_junit_has_one_test_case_per_invariant_with_its_status(pytester):
    # Before: one <testcase> for the whole check, failed.
    pytester.makepyfile(test_user=BAD)
    _, cases = junit(pytester, "--cachepact-seed", "1")
    names = [name for _, name in cases]
    assert names == [
        "check",
        "who-loads",
        "who-populates",
        "write-order",
        "invalidate-not-update",
        "fresh-read",
        "coherent-at-rest",
        "hit-after-fill",
        "single-load",
    ]
    assert {classname for classname, _ in cases} == {"test_user.test_my_cache"}
    assert cases["test_user.test_my_cache", "check"] == ("pass", None)
    status, message = cases["test_user.test_my_cache", "invalidate-not-update"]
    assert status == "failure" and message == "the write w1 stored k1.v1 into the cache instead of deleting the entry"
    skipped = [v for (_, name), v in cases.items() if name not in ("check", "invalidate-not-update")]
    assert len(skipped) == 7 and all(status == "skipped" for status, _ in skipped)
    assert all(m.startswith("not run: the check stopped at the first failure after ") for _, m in skipped)


PARTIAL = """
from cachepact.adapters.reference import cache_aside
from cachepact import conformance_test

# Reads only: nothing could break write-order, invalidate-not-update, fresh-read, coherent-at-rest.
test_reads = conformance_test(cache_aside, pattern="cache-aside", replay="seq/r:k1,r:k1,r:k2")
"""


def test_an_invariant_not_run_is_skipped_with_why_and_fails_under_strict(pytester):
    pytester.makepyfile(test_user=PARTIAL)
    result, cases = junit(pytester, "-rs")
    result.assert_outcomes(passed=5, skipped=4)
    assert cases["test_user.test_reads", "fresh-read"] == (
        "skipped",
        "not run: nothing reached could break it (no run reached read-after-write)",
    )
    where = f"test_user.py:{line_of(PARTIAL, 'test_reads =')}"  # the line that made the test, not the plugin's
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] {where}: not run: * (no run reached read-after-write)"])
    strict = pytester.runpytest_subprocess("--cachepact-strict")
    strict.assert_outcomes(passed=5, failed=4)
    strict.stdout.fnmatch_lines(
        [
            "FAILED test_user.py::test_reads::fresh-read - not run: nothing reached could break it (no run reached "
            "read-after-write); strict asks every invariant to run"
        ]
    )
    assert "Traceback" not in strict.stdout.str()


def test_strict_is_also_an_ini_option_and_a_test_may_opt_out(pytester):
    pytester.makepyfile(
        test_user=PARTIAL + "test_lenient = conformance_test(cache_aside, replay='seq/r:k1', strict=False)\n"
    )
    pytester.makeini("[pytest]\ncachepact_strict = true\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5 + 4, failed=4, skipped=5)  # test_lenient: 4 pass, 5 not run, skipped
    assert "test_reads::fresh-read - not run" in result.stdout.str()


LOCKED = """
import threading

from cachepact import conformance_test
from cachepact.adapters.reference import cache_aside_leased, under_one_lock

locked = under_one_lock(cache_aside_leased, threading.Lock())  # at import: out of the kit's sight
test_locked = conformance_test(locked, pattern="cache-aside", max_examples=30, seed=0)
"""


def test_strict_fails_the_check_test_on_waits_out_of_the_kits_control(pytester):
    pytester.makepyfile(test_user=LOCKED)
    pytester.runpytest_subprocess().assert_outcomes(passed=9)
    strict = pytester.runpytest_subprocess("--cachepact-strict")
    strict.assert_outcomes(passed=8, failed=1)
    strict.stdout.fnmatch_lines(
        [
            "Strict: * times a thread blocked out of the kit's control*",
            "FAILED test_user.py::test_locked::check - strict: the check was not complete (see the Strict: lines)",
        ]
    )


UNUSABLE = """
from cachepact import conformance_test
from cachepact.adapters.reference import cache_aside


def boom(env):
    raise RuntimeError("no connection string")


test_boom = conformance_test(boom, pattern="cache-aside")
test_typo = conformance_test(cache_aside, pattern="cache-asid")
test_bad_option = conformance_test(cache_aside, pattern="cache-aside", max_ops=9)
"""


def test_definition_errors_and_bad_arguments_are_one_line_without_a_traceback(pytester):
    pytester.makepyfile(test_user=UNUSABLE)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(failed=3, skipped=16)  # the unknown pattern has no invariants to skip
    text = result.stdout.str()
    assert "Traceback" not in text and "cachepact/conformance" not in text and "_check.py" not in text, text
    result.stdout.fnmatch_lines(
        [
            "DefinitionError: test_user:boom raised RuntimeError: no connection string; fix the factory",
            "InvalidArgument: pattern 'cache-asid' is unknown; use one of: cache-aside, *",
            "InvalidArgument: max_ops must be between 2 and 6, not 9",
            f"SKIPPED [[]8[]] test_user.py:{line_of(UNUSABLE, 'test_boom =')}: not run: the check could not run "
            "(see test_user.py::test_boom::check)",
        ]
    )


FAULTY = """
from cachepact import conformance_test
from cachepact.adapters.faults import returns_none_on_db_error, delete_in_finally_with_ttl

test_tolerant = conformance_test(delete_in_finally_with_ttl, pattern="cache-aside", concurrency=False, seed=0)
test_phantom = conformance_test(returns_none_on_db_error, pattern="cache-aside", concurrency=False, seed=0)
"""


def test_faults_come_from_the_command_line_and_add_the_fault_invariants_as_tests(pytester):
    pytester.makepyfile(test_user=FAULTY)
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    plain.assert_outcomes(passed=2 + 2 * 8, skipped=0)  # without faults both pass, and 8 invariants each
    faulty = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--cachepact-faults")
    # test_tolerant: its check and 11 invariants pass; test_phantom: its check passes, no-phantom-read
    # fails, and the other 10 did not run (the check stopped at the failure): skipped.
    faulty.assert_outcomes(passed=1 + 11 + 1, failed=1, skipped=10)
    faulty.stdout.fnmatch_lines(["FAILED test_user.py::test_phantom::no-phantom-read - *returned None*"])
