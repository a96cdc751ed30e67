"""What cachepact costs a process that imports it, and a pytest run that never uses it.

    python bench/bench_import.py

* ``import cachepact``: goal at most 0.1 s. Measured two ways, best of 10 fresh interpreters each:
  ``-X importtime``'s cumulative figure for the package, and wall time beside ``python -c pass``.
* the pytest plugin: goal at most 20 ms. A project with one trivial test, collected and run by
  ``pytest`` with the plugin and with ``-p no:cachepact`` side by side, best of 10 each.
* what installing cachepact costs such a run in all: cachepact depends on Hypothesis, which
  registers a pytest plugin of its own; that one is measured too (``-p no:hypothesispytest``),
  so the figure a user pays is on the page, not only the part this project controls.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 10
HEAVY = ("pytest", "hypothesis", "networkx", "matplotlib", "attrs")


def wall(argv: list[str], cwd: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, cwd=cwd)
    return time.perf_counter() - start


def importtime() -> tuple[float, set[str]]:
    """Cumulative import time of ``cachepact`` (s), and the heavy top-level packages it loaded."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import cachepact"], check=True, capture_output=True, text=True
    ).stderr
    cumulative = 0.0
    loaded = set()
    for line in err.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)$", line)
        if not m:
            continue
        name = m.group(3)
        if name == "cachepact":
            cumulative = int(m.group(1)) / 1e6
        if name.split(".")[0] in HEAVY:
            loaded.add(name.split(".")[0])
    return cumulative, loaded


def main() -> None:
    runs = [importtime() for _ in range(ROUNDS)]
    best = min(t for t, _ in runs)
    heavy = set().union(*(loaded for _, loaded in runs))
    bare = min(wall([sys.executable, "-c", "pass"]) for _ in range(ROUNDS))
    ours = min(wall([sys.executable, "-c", "import cachepact"]) for _ in range(ROUNDS))
    print(f"import cachepact: {best * 1000:.1f} ms (-X importtime, best of {ROUNDS}); goal <= 100 ms")
    print(f"  wall: python -c pass {bare * 1000:.1f} ms, python -c 'import cachepact' {ours * 1000:.1f} ms")
    print(f"  heavy packages loaded: {', '.join(sorted(heavy)) or 'none'}")

    with tempfile.TemporaryDirectory() as project:
        Path(project, "test_app.py").write_text("def test_nothing():\n    assert True\n")
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        runs: dict[str, list[float]] = {"both": [], "no cachepact": [], "neither": []}
        for _ in range(ROUNDS):  # alternate, so all see the same machine
            runs["both"].append(wall(pytest, cwd=project))
            runs["no cachepact"].append(wall([*pytest, "-p", "no:cachepact"], cwd=project))
            runs["neither"].append(wall([*pytest, "-p", "no:cachepact", "-p", "no:hypothesispytest"], cwd=project))
    best = {name: min(times) for name, times in runs.items()}
    ours = best["both"] - best["no cachepact"]
    theirs = best["no cachepact"] - best["neither"]
    print(
        f"pytest on a project that never uses cachepact (best of {ROUNDS}): {best['neither'] * 1000:.1f} ms with "
        f"neither plugin, {best['no cachepact'] * 1000:.1f} ms with Hypothesis' plugin, "
        f"{best['both'] * 1000:.1f} ms with both"
    )
    print(f"  cachepact's plugin costs {ours * 1000:.1f} ms (goal <= 20 ms)")
    print(
        f"  Hypothesis' plugin, installed with it as a dependency, costs {theirs * 1000:.1f} ms "
        "(it imports Hypothesis at the end of every run; projects already using Hypothesis pay it anyway)"
    )


if __name__ == "__main__":
    main()
