"""`cachepact check`: the CI gate's exit codes, files and one-line errors."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap

import pytest

from cachepact.cli import main

REF = "cachepact.adapters.reference"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("target", "pattern", "flags"),
    [
        (f"{REF}:cache_aside_leased", "cache-aside", ()),
        (f"{REF}:cache_aside_locked", "cache-aside", ("--instances", "1")),  # its lock holds in one process
        (f"{REF}:read_through_leased", "read-through", ()),
    ],
)
def test_a_race_free_reference_adapter_exits_0(capsys, target, pattern, flags):
    code, out, err = run(capsys, "check", target, "--pattern", pattern, *flags, "--max-examples", "30")
    assert code == 0, out
    header = out.splitlines()
    assert header[0] == " ".join(("cachepact check", target, "--pattern", pattern, *flags, "--max-examples", "30"))
    assert any(line.startswith("PASS: every invariant held over ") for line in header[1:3])
    assert err.startswith("cachepact: pass: ")  # one summary line when stderr is not a terminal


def test_a_broken_adapter_exits_1_and_writes_json_and_junit(capsys, tmp_path):
    js, xml = tmp_path / "r.json", tmp_path / "r.xml"
    code, out, _ = run(
        capsys,
        "check",
        "cachepact.adapters.broken:aside_update_on_write",
        "--pattern",
        "cache-aside",
        "--report-json",
        str(js),
        "--junit-xml",
        str(xml),
        "--no-concurrency",
    )
    assert code == 1
    assert "FAIL invalidate-not-update: the write w1 stored k1.v1 into the cache instead of deleting the entry" in out
    assert "--replay 'seq/w:k1'" in out or "--replay 'seq/" in out
    assert json.loads(js.read_text())["verdict"] == "fail"
    assert "<failure" in xml.read_text()


def test_replay_reruns_exactly_the_printed_sequence(capsys):
    target = "cachepact.adapters.broken:aside_local_memo"
    code, out, _ = run(capsys, "check", target, "--pattern", "cache-aside", "--no-concurrency")
    command = next(line for line in out.splitlines() if line.startswith("Replay: ")).removeprefix("Replay: ")
    assert command.startswith(f"cachepact check {target} --pattern cache-aside --instances 1 --replay 'seq/")
    code2, out2, _ = run(capsys, *shlex.split(command)[1:])
    assert code == code2 == 1
    # The same counterexample (the invariants line counts how many examples each run made).
    assert out.split("Invariants:")[0].split("\n", 1)[1] == out2.split("Invariants:")[0].split("\n", 1)[1]
    assert out2.splitlines()[0] == command


def test_replay_of_a_sequence_that_holds_exits_0(capsys):
    code, out, _ = run(
        capsys, "check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--replay", "seq/r:k1,w:k1,r:k1"
    )
    assert code == 0 and "PASS" in out


def test_strict_exits_1_on_a_pass_that_was_not_complete_and_says_why(capsys, tmp_path):
    js, xml = tmp_path / "r.json", tmp_path / "r.xml"
    argv = ["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--replay", "seq/r:k1,r:k1,r:k2"]
    assert run(capsys, *argv)[0] == 0  # no write in it: four invariants not run, which only --strict fails
    code, out, err = run(
        capsys,
        *argv,
        "--strict",
        "--report-json",
        str(js),
        "--junit-xml",
        str(xml),
        "--diagram",
        str(tmp_path / "d.mmd"),
    )
    assert code == 1 and err.startswith("cachepact: fail: ")
    assert out.splitlines()[0].endswith("--pattern cache-aside --strict --replay 'seq/r:k1,r:k1,r:k2'")
    assert "FAIL strict: 4 invariants held over 1 example" in out
    assert "Strict: fresh-read not run: nothing reached could break it (no run reached read-after-write)" in out
    assert "Replay:" not in out and not (tmp_path / "d.mmd").exists()  # no counterexample to replay or draw
    data = json.loads(js.read_text())
    assert data["verdict"] == "fail" and data["strict"] and len(data["strict_failures"]) == 4
    assert 'name="strict"><failure' in xml.read_text()


def test_strict_passes_a_complete_check(capsys):
    code, out, _ = run(
        capsys, "check", f"{REF}:cache_aside_leased", "--pattern", "cache-aside", "--strict", "--max-examples", "20"
    )
    assert code == 0 and "PASS: every invariant held" in out and "Strict:" not in out


def test_strict_adds_nothing_to_a_check_that_failed(capsys, tmp_path):
    # One bug, one CI failure: the invariants the stop left unrun are not-run, not a second failure.
    xml = tmp_path / "r.xml"
    argv = ["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--strict", "--junit-xml", str(xml)]
    code, out, _ = run(capsys, *argv)
    assert code == 1 and out.splitlines()[2].startswith("FAIL coherent-at-rest"), out
    assert "Strict:" not in out and "not run (" in out and 'name="strict"' not in xml.read_text()
    assert xml.read_text().count("<failure") == 1


BAD_TARGETS = {
    "missing_module.py": None,
    "raises.py": "def make(env):\n    raise RuntimeError('no connection string')\n",
    "not_adapter.py": "def make(env):\n    return {'read': 1}\n",
    "not_callable.py": (
        "import cachepact\ndef make(env):\n    return cachepact.Adapter(read=1, write=lambda k, v: None)\n"
    ),
    "bad_cache_code.py": (
        "import cachepact\ndef make(env):\n"
        "    return cachepact.Adapter(read=env.db.get, write=env.db.put, cache_code=[42])\n"
    ),
    "import_error.py": "import not_a_real_module_xyz\n",
    "async_generator_read.py": (
        "import cachepact\nasync def r(k):\n    yield None\n"
        "def make(env):\n    return cachepact.Adapter(read=r, write=env.db.put)\n"
    ),
    "value.py": "make = 3\n",
}
EXPECTED = {
    "missing_module.py": "no file",
    "raises.py": "raised RuntimeError: no connection string; fix the factory",
    "not_adapter.py": "returned a dict, not a cachepact.Adapter",
    "not_callable.py": "Adapter.read is an int, not a callable",
    "bad_cache_code.py": "cache_code entry 42 is an int; name classes, functions, modules",
    "import_error.py": "raised ModuleNotFoundError",
    "async_generator_read.py": "Adapter.read is an async generator function (it yields); pass a function",
    "value.py": "is an int, not a factory",
}


@pytest.mark.parametrize("name", list(BAD_TARGETS))
def test_an_unusable_target_exits_2_with_one_line_naming_the_fix(capsys, tmp_path, name):
    if BAD_TARGETS[name] is not None:
        (tmp_path / name).write_text(BAD_TARGETS[name])
    code, out, err = run(capsys, "check", f"{tmp_path / name}:make", "--pattern", "cache-aside")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and EXPECTED[name] in err, err


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["check", "no.such.module:make", "--pattern", "cache-aside"], "no module named 'no.such.module'"),
        (["check", f"{REF}:nope", "--pattern", "cache-aside"], "has no attribute 'nope'; callables there:"),
        (["check", REF, "--pattern", "cache-aside"], "names no factory"),
        (["check", f"{REF}:cache_aside", "--pattern", "write-behnd"], "use one of: cache-aside, read-through"),
        (["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--max-examples", "0"], "at least 1"),
        (["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--replay", "r:k1"], "not a replay string"),
        (["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--replay", "seq/x:k9"], "bad operation"),
        (
            ["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--report-json", "/no/such/dir/r.json"],
            "does not exist",
        ),
        (
            ["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--max-ops", "0"],
            "--max-ops: must be at least 2",
        ),
        (
            ["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--max-ops", "1"],
            "--max-ops: must be at least 2",
        ),
        (
            ["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--max-ops", "50"],
            "--max-ops: must be at most 6",
        ),
        (
            ["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--replay", "con/r:k1"],
            "not a concurrent replay string",
        ),
        (
            ["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--instances", "0"],
            "--instances: must be at least 1",
        ),
        (
            ["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--instances", "9"],
            "--instances: must be at most 8",
        ),
        (["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--step-timeout", "0"], "must be above 0"),
        (["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--step-timeout", "nan"], "must be above 0"),
        (["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--step-timeout", "1e9"], "at most 3600"),
        (["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--step-timeout", "soon"], "number of seconds"),
        (
            ["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--diagram", "d.jpg"],
            "--diagram d.jpg: name a file ending in .mmd",
        ),
        (
            [
                "check",
                f"{REF}:cache_aside",
                "--pattern",
                "cache-aside",
                "--report-json",
                "r.out",
                "--junit-xml",
                "r.out",
            ],
            "--report-json and --junit-xml both name r.out; give each its own file",
        ),
        (
            ["check", f"{REF}:cache_aside", "--pattern", "cache-aside", "--junit-xml", "/proc/version"],
            "--junit-xml /proc/version: cannot write there",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, fix):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and fix in err, err


def test_an_adapter_raising_mid_operation_is_a_finding_not_a_crash(capsys):
    code, out, _ = run(
        capsys,
        "check",
        "cachepact.adapters.broken:aside_raises_on_absent",
        "--pattern",
        "cache-aside",
        "--no-concurrency",
    )
    assert code == 1
    assert "FAIL adapter-error: r1 raised KeyError: 'k3'" in out


def test_the_console_script_checks_a_users_file(tmp_path):
    user = tmp_path / "my_cache.py"
    user.write_text(
        textwrap.dedent("""
        import cachepact

        def make(env):
            def read(key):
                value = env.cache.get(key)
                if value is None:
                    value = env.db.get(key)
                    if value is not None:
                        env.cache.set(key, value)
                return value

            def write(key, value):
                env.db.put(key, value)
                env.cache.delete(key)

            return cachepact.Adapter(read=read, write=write)
    """)
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cachepact",
            "check",
            "my_cache:make",
            "--pattern",
            "cache-aside",
            "--max-examples",
            "20",
            "--no-concurrency",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "cachepact", "check", "my_cache:make", "--pattern", "read-through"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1 and "FAIL who-loads" in proc.stdout


def test_on_a_terminal_a_long_run_shows_its_progress(tmp_path):
    import os
    import pty

    leader, follower = pty.openpty()
    env = dict(os.environ, CACHEPACT_PROGRESS_AFTER="0")  # "long" from the start, so no waiting
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cachepact",
            "check",
            f"{REF}:cache_aside_leased",
            "--pattern",
            "cache-aside",
            "--max-examples",
            "20",
            "--no-concurrency",
        ],
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        env=env,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert b"examples, " in shown and b"operations ..." in shown
    assert b"cachepact: pass" not in shown  # the one-line summary is for logs, not terminals


def test_bad_arguments_are_refused_before_the_target_is_even_loaded(capsys):
    code, _, err = run(capsys, "check", "no.such.module:make", "--pattern", "cache-aside", "--instances", "9")
    assert code == 2 and "--instances" in err  # not "no module named": arguments first


def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # as one line: argparse wraps at the terminal's width
    assert "(default: 5.0)" in out and "(default: 3)" in out  # --step-timeout, --max-ops
    assert "(default: None)" not in out and "(default: False)" not in out  # nothing to give: not shown
    with pytest.raises(SystemExit):
        main(["explore", "--help"])
    assert "(default: 2000000)" in " ".join(capsys.readouterr().out.split())  # --max-states


SLOW = """
import pathlib, cachepact
from cachepact.adapters.reference import cache_aside_leased

def make(env):
    pathlib.Path(__file__).with_name("started").touch()  # the test presses Ctrl-C once this exists
    return cache_aside_leased(env)
"""


def test_ctrl_c_ends_with_one_line_exit_130_and_the_reports_of_what_ran(tmp_path):
    import signal
    import time

    (tmp_path / "slow.py").write_text(SLOW)
    js, xml = tmp_path / "r.json", tmp_path / "r.xml"
    args = ["check", "slow.py:make", "--pattern", "cache-aside", "--max-examples", "100000"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachepact", *args, "--report-json", str(js), "--junit-xml", str(xml)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling another process's progress: no event to wait on
    time.sleep(0.5)  # into the run proper, past loading the target
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("cachepact: interrupted after ") and f"what ran is in {js} and {xml}" in err
    data = json.loads(js.read_text())
    assert data["verdict"] == "interrupted" and data["interrupted"] is True and data["operations"] > 0
    assert data["exhaustive"] is None  # how far a search went that Ctrl-C cut short is no claim
    assert "pass" not in {c["status"] for c in data["checks"]}  # nothing reads as a pass: no verdict
    assert '<testcase classname="cachepact.cache-aside" name="interrupted"><error ' in xml.read_text()


def test_ctrl_c_swallowed_where_it_landed_still_stops_the_check():
    """Python raises Ctrl-C wherever the main thread is, and some places swallow it (Hypothesis' gc
    callback printed "Exception ignored" and a CI run went on for 100,000 examples): the check notes
    the signal and raises it again between runs."""
    import contextlib
    import signal

    import cachepact
    from cachepact.adapters.reference import cache_aside_leased

    seen = []

    def swallowing_observer(examples: int, operations: int) -> None:
        seen.append(examples)
        if examples == 3:
            with contextlib.suppress(KeyboardInterrupt):  # raised here, then lost, as in a gc callback
                signal.raise_signal(signal.SIGINT)

    with pytest.raises(cachepact.errors.Interrupted) as caught:
        cachepact.check(cache_aside_leased, "cache-aside", max_examples=200, on_progress=swallowing_observer)
    assert seen[-1] == 3 and caught.value.result.interrupted and caught.value.result.examples == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the check's handler is gone


def test_ctrl_c_inside_a_gc_callback_stops_the_check_quietly(capfd):
    """What CI saw: SIGINT landed in Hypothesis' gc callback, and Python printed "Exception ignored in"
    with a traceback. The check stops, and prints nothing of it."""
    import gc
    import signal
    import sys

    import cachepact
    from cachepact.adapters.reference import cache_aside_leased

    def interrupting_collection(phase: str, info: dict) -> None:
        # Armed on the third example only: a collection the process happens to start earlier (while
        # the factory is tried, on a thread of its own) is not the one this test is about.
        if phase == "start" and armed and not fired:
            fired.append(True)
            signal.raise_signal(signal.SIGINT)  # raised inside the callback: Python can only report it

    def collect_on_the_third(examples: int, operations: int) -> None:
        if examples == 3:
            armed.append(True)
            gc.collect()

    fired: list[bool] = []
    armed: list[bool] = []
    hook = sys.unraisablehook
    gc.callbacks.append(interrupting_collection)
    try:
        with pytest.raises(cachepact.errors.Interrupted):
            cachepact.check(cache_aside_leased, "cache-aside", max_examples=200, on_progress=collect_on_the_third)
    finally:
        gc.callbacks.remove(interrupting_collection)
    assert fired and sys.unraisablehook is hook  # the check's hook is gone too
    err = capfd.readouterr().err
    assert "Exception ignored" not in err and "KeyboardInterrupt" not in err, err


@pytest.mark.parametrize("argv", [["explain"], ["check", f"{REF}:cache_aside", "--pattern", "cache-aside"]])
def test_a_reader_that_goes_away_ends_the_output_quietly(argv):
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachepact", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    proc.stdout.close()  # as `| head -1` does once it has its line, here before the first one
    err = proc.stderr.read()
    assert proc.wait(timeout=60) in (0, 1)
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


def test_the_output_pre_check_creates_and_removes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "report.json").symlink_to("out/report.json")  # the user's link, to a file not made yet
    code, _, err = run(capsys, "check", f"{REF}:nope", "--pattern", "cache-aside", "--report-json", "report.json")
    assert code == 2 and "has no attribute 'nope'" in err
    assert (tmp_path / "report.json").is_symlink() and not (tmp_path / "out" / "report.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "report.json"]


def test_ctrl_c_inside_hypothesis_setup_is_still_ctrl_c():
    """Hypothesis may turn a KeyboardInterrupt in its own setup into an internal AssertionError with the
    interrupt in its chain (seen as a traceback and exit 1, 1 run in 10): the kit reads it as Ctrl-C."""
    from cachepact.conformance.drive.hypothesis import run_seeded

    def test():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise AssertionError  # what hypothesis/core.py does when state._runner is None  # noqa: B904

    with pytest.raises(KeyboardInterrupt):
        run_seeded(test, 0)
    with pytest.raises(ValueError):
        run_seeded(lambda: (_ for _ in ()).throw(ValueError("an adapter's own")), 0)


def test_a_signal_handler_of_the_callers_that_does_not_raise_is_left_to_decide():
    """A program's own SIGINT handler (a graceful shutdown, a count of presses) keeps its meaning: the
    check notes only interrupts a handler raises."""
    import signal

    import cachepact
    from cachepact.adapters.reference import cache_aside_leased

    presses = []

    def counting(signum, frame):
        presses.append(signum)

    def press_once(examples: int, operations: int) -> None:
        if examples == 3:
            signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGINT, counting)
    try:
        result = cachepact.check(cache_aside_leased, "cache-aside", max_examples=20, on_progress=press_once)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert presses == [signal.SIGINT] and not result.interrupted and result.passed


def test_an_interrupted_sequential_check_closes_the_world_it_cut_short(monkeypatch):
    """A noted Ctrl-C is raised where a sequence's world is counted: that world is closed all the
    same (its app instances' threads told to end), as every other world is."""
    import contextlib
    import signal

    import cachepact
    from cachepact.adapters.reference import cache_aside_leased
    from cachepact.conformance.drive.world import World

    made, closed = [], []
    init, close = World.__init__, World.close
    monkeypatch.setattr(World, "__init__", lambda self, *a, **k: (made.append(self), init(self, *a, **k))[1])
    monkeypatch.setattr(World, "close", lambda self: (closed.append(self), close(self))[1])

    def press(examples: int, operations: int) -> None:
        if examples == 2:
            with contextlib.suppress(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)

    with pytest.raises(cachepact.errors.Interrupted):
        cachepact.check(cache_aside_leased, "cache-aside", concurrency=False, max_examples=50, on_progress=press)
    assert made and {id(w) for w in made} <= {id(w) for w in closed}


def test_a_check_writes_nothing_into_the_working_directory(tmp_path):
    # Hypothesis caches the literals of local modules under ./.hypothesis; the kit's draws do not
    # use them, and a check leaves the user's folder as it found it.
    (tmp_path / "shop_cache.py").write_text(
        "from cachepact import Adapter\n\n"
        "LIMITS = [150, 250, 4096]\n\n"
        "def make(env):\n"
        "    def read(key):\n"
        "        value = env.cache.get(key)\n"
        "        if value is None:\n"
        "            value = env.db.get(key)\n"
        "            if value is not None:\n"
        "                env.cache.set(key, value)\n"
        "        return value\n\n"
        "    def write(key, value):\n"
        "        env.db.put(key, value)\n"
        "        env.cache.delete(key)\n\n"
        "    return Adapter(read=read, write=write)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "cachepact", "check", "shop_cache.py:make"]
        + ["--pattern", "cache-aside", "--no-concurrency"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop_cache.py"]


# -- what the adapter's libraries log ---------------------------------------------------------------

_LOGGING_ADAPTER = """
import logging
import cachepact

log = logging.getLogger("mylib.cache")
{configure}

def make(env):
    def read(key):
        value = env.cache.get(key)
        if value is None:
            log.warning("miss on %s", key, exc_info=ValueError("a traceback"))
            value = env.db.get(key)
            if value is not None:
                env.cache.set(key, value)
        return value

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return cachepact.Adapter(read=read, write=write)
"""


@pytest.mark.parametrize("configured", [False, True], ids=["unconfigured", "basicConfig"])
def test_what_the_adapter_logs_is_counted_in_one_line_unless_logging_is_configured(tmp_path, configured):
    # Before: each record and its traceback printed by Python's last resort (thousands of lines
    # under --faults, around the report).
    configure = "logging.basicConfig()" if configured else ""
    (tmp_path / "logs_adapter.py").write_text(_LOGGING_ADAPTER.format(configure=configure))
    done = subprocess.run(
        [sys.executable, "-m", "cachepact", "check", "logs_adapter:make", "--pattern", "cache-aside"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the textbook race
    if configured:  # the user's handler takes every record, as before
        assert "WARNING:mylib.cache:miss on k" in done.stderr and "a traceback" in done.stderr
        assert "not shown" not in done.stderr
    else:
        assert "Traceback" not in done.stderr and "miss on" not in done.stderr
        [note] = [line for line in done.stderr.splitlines() if "not shown" in line]
        assert note.startswith("cachepact: the adapter's code logged ") and "(mylib.cache " in note
        assert "logging.basicConfig()" in note


def test_workers_gives_the_report_of_one_process_and_a_bad_count_is_one_line(capsys):
    target, flags = f"{REF}:cache_aside_locked", ("--pattern", "cache-aside", "--max-examples", "30")
    code_one, out_one, _ = run(capsys, "check", target, *flags)
    code_two, out_two, _ = run(capsys, "check", target, *flags, "--workers", "2")
    assert code_one == code_two == 1  # its lock is per process: the race across two instances
    # The same report, to the command it shows to run it again; the time it took aside.
    assert out_two and [_untimed(x) for x in out_two.splitlines()] == [_untimed(x) for x in out_one.splitlines()]
    code, out, err = run(capsys, "check", target, *flags, "--workers", "0")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "--workers" in err


def _untimed(line: str) -> str:
    import re

    return re.sub(r"\d+\.\d+ s\b", "T s", line)
