"""The command line: output a reader relies on, and exit codes CI gates on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cachepact.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("pattern", ["cache-aside", "read-through"])
def test_explore_of_the_seed_pattern_exits_1_with_the_five_step_stale_set(capsys, pattern):
    code, out, _ = run(capsys, "explore", "--pattern", pattern, "--readers", "1", "--writers", "1")
    assert code == 1
    assert "verdict: violated" in out
    assert "coherent-at-rest: VIOLATED; shortest counterexample, 5 steps:" in out
    who = "App  " if pattern == "cache-aside" else "Cache"
    assert f"5  r1  {who}  cache.set(k1, v0)" in out
    assert "states" in out and "transitions" in out and " s\n" in out


@pytest.mark.parametrize("pattern", ["cache-aside", "read-through"])
def test_explore_with_leases_exits_0(capsys, pattern):
    code, out, _ = run(capsys, "explore", "--pattern", pattern, "--leases", "--readers", "2", "--writers", "2")
    assert code == 0
    assert "verdict: holds" in out and "coherent-at-rest: holds" in out and "fresh-read: holds" in out
    assert "never reached" not in out


def test_explain_prints_the_seed_table(capsys):
    code, out, _ = run(capsys, "explain")
    assert code == 0
    lines = out.splitlines()
    # The seed's two patterns first, then the write-through ones, then those with background work
    assert lines[0].split() == [
        "step",
        "cache-aside",
        "read-through",
        "write-through",
        "cache-aside+write-through",
        "refresh-ahead",
        "write-behind",
    ]
    load = next(line for line in lines if line.startswith("read, miss: load"))
    assert "App: db.get(k1)" in load and "Cache: db.get(k1)" in load
    populate = next(line for line in lines if line.startswith("read, miss: populate"))
    assert "App: cache.set(k1, v0)" in populate and "Cache: cache.set(k1, v0)" in populate
    write = next(line for line in lines if line.startswith("write"))
    assert write.count("App: db.put(k1, v1); App: cache.delete(k1)") == 3  # refresh-ahead's write too
    assert "Cache: db.put(k1, v1); Cache: cache.set(k1, v1)" in write  # write-through's library
    assert "App: db.put(k1, v1); App: cache.set(k1, v1)" in write  # the app writing through
    background = next(line for line in lines if line.startswith("background"))
    assert "refresh: Cache: db.get(k1) -> v0; Cache: cache.set(k1, v0)" in background
    assert "flush: Cache: cache.get(k1) -> v1; Cache: db.put(k1, v1)" in background


def test_explain_one_pattern(capsys):
    code, out, _ = run(capsys, "explain", "--pattern", "read-through")
    assert code == 0 and "cache-aside" not in out.splitlines()[0]


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["explore", "--pattern", "write-back"], "use one of: cache-aside, read-through"),
        (["explore", "--pattern", "cache-aside", "--readers", "0"], "--readers: must be at least 1, not 0"),
        (["explore", "--pattern", "cache-aside", "--writers", "-3"], "--writers: must be at least 1, not -3"),
        (["explore", "--pattern", "cache-aside", "--keys", "two"], "--keys: must be a whole number"),
        (
            [
                "explore",
                "--pattern",
                "cache-aside",
                "--leases",
                "--readers",
                "3",
                "--writers",
                "3",
                "--max-states",
                "50",
            ],
            "raise --max-states or lower --readers/--writers/--keys",
        ),
        (
            ["explore", "--pattern", "cache-aside", "--readers", "99999999999999999999"],
            "--readers: must be at most 8, not 99999999999999999999",
        ),
        (["explore", "--pattern", "cache-aside", "--keys", "5"], "--keys: must be at most 4"),
        (["explore", "--pattern", "cache-aside", "--max-states", "10000000000"], "--max-states: must be at most"),
        (["explore"], "required: --pattern"),
        (["frobnicate"], "invalid choice"),
        ([], "required: COMMAND"),
    ],
)
def test_bad_input_is_one_line_naming_the_fix_and_exit_2(capsys, argv, fix):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("cachepact: error: ") and fix in err


def test_the_console_script_exits_2_without_a_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "cachepact", "explore", "--pattern", "nope"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
