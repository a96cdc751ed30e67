"""A check's peak memory against its number of examples, each a whole process.

    python bench/bench_memory.py [TARGET PATTERN]

Runs ``cachepact check`` at the default budget, at ``--max-examples 2000`` and at 6,000, and reads
each process's peak resident set from the OS (``wait4``). Target: 6,000 examples within 1.3x the
peak of 2,000 (memory flat in the work, so a nightly run of 100,000 fits where a CI run does).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

TARGET, PATTERN = "cachepact.adapters.reference:cache_aside_leased", "cache-aside"


def peak(args: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MiB, seconds, exit code) of one ``cachepact check`` process."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "cachepact", "check", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.perf_counter() - start, child.returncode


def main() -> None:
    target, pattern = sys.argv[1:3] if len(sys.argv) >= 3 else (TARGET, PATTERN)
    print(f"== peak memory of `cachepact check {target} --pattern {pattern}`, a process each")
    peaks = {}
    for examples in (None, 2000, 6000):
        budget = [] if examples is None else ["--max-examples", str(examples)]
        mib, seconds, code = peak([target, "--pattern", pattern, *budget])
        peaks[examples] = mib
        shown = "default" if examples is None else examples
        print(f"{shown:>8} examples: {mib:6.1f} MiB in {seconds:6.1f} s (exit {code})")
    ratio = peaks[6000] / peaks[2000]
    print(f"6,000 / 2,000: {ratio:.2f}x (target at most 1.3x: {'met' if ratio <= 1.3 else 'NOT met'})")


if __name__ == "__main__":
    main()
