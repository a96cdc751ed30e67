"""Faults' figures in one process (issue 21's targets): what ``--faults`` costs, and how fast each fault
catalogue entry is caught.

    python bench/bench_faults.py                 # 20 seeds, 3 rounds
    python bench/bench_faults.py --seeds 5 --rounds 1

* **Cost.** The default check (seed 0, every phase) of adapters that pass both ways, without and
  with ``faults=True``, rounds interleaved so the machine's drift hits both alike: the race-free
  fault-tolerant adapters (``faults:leased_retries_with_ttl``, the model's retry design with and
  without a time to live) and the race-free references that
  survive faults. Target: at most 1.3x. (The references as written are not fault-tolerant: with
  faults they fail within the first phases, which says nothing of the cost; they are listed with
  their verdict for the record.)
* **Catalogue.** Each ``FAULT_CATALOGUE`` entry, default check with faults (concurrency on), over
  ``--seeds`` seeds: how many catch it with its invariant, and the median seconds. Target: 20/20 at
  most 0.3 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from cachepact import check
from cachepact.adapters import reference
from cachepact.adapters.faults import FAULT_CATALOGUE, RECOVERY_DESIGNS, leased_retries_with_ttl


def timed(make, pattern: str, faults: bool) -> tuple[float, str]:
    started = time.perf_counter()
    result = check(make, pattern, seed=0, faults=faults)
    verdict = result.verdict + (f" {result.finding.invariant}" if result.finding else "")
    return time.perf_counter() - started, verdict


def cost(rounds: int) -> dict[str, object]:
    adapters = [("cache-aside", "faults:leased_retries_with_ttl", leased_retries_with_ttl)]
    adapters += [  # the model's designs that converge and stay fresh, as adapter code
        ("cache-aside", f"faults:{make.__name__}", make)
        for (recovery, _), make in RECOVERY_DESIGNS.items()
        if recovery == "retry"
    ]
    adapters += [
        (pattern, f"reference:{name}", make)
        for pattern, table in reference.REFERENCE.items()
        for name, make in table.items()
        if name in reference.RACE_FREE and pattern in ("cache-aside", "read-through")
    ]
    out: dict[str, object] = {}
    total_plain = total_faults = 0.0
    for pattern, name, make in adapters:
        plain, faulty = [], []
        for _ in range(rounds):
            t, verdict_plain = timed(make, pattern, False)
            plain.append(t)
            t, verdict_faults = timed(make, pattern, True)
            faulty.append(t)
        p, f = statistics.median(plain), statistics.median(faulty)
        row = {"plain_s": round(p, 2), "faults_s": round(f, 2), "ratio": round(f / p, 2)}
        row["verdicts"] = f"{verdict_plain} / {verdict_faults}"
        out[name] = row
        print(json.dumps({name: row}), flush=True)
        if verdict_faults == "pass":
            total_plain += p
            total_faults += f
    if total_plain:
        out["ratio over those that pass with faults"] = round(total_faults / total_plain, 2)
    return out


def catalogue(seeds: int) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, bug in FAULT_CATALOGUE.items():
        times, caught = [], 0
        for seed in range(seeds):
            started = time.perf_counter()
            result = check(bug.make, bug.pattern, seed=seed, faults=True, target=name)
            times.append(time.perf_counter() - started)
            caught += result.finding is not None and result.finding.invariant == bug.invariant
        row = {"median_s": round(statistics.median(times), 3), "caught": f"{caught}/{seeds}"}
        out[name] = row
        print(json.dumps({name: row}), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps({"cost": cost(args.rounds), "catalogue": catalogue(args.seeds)}, indent=2))


if __name__ == "__main__":
    main()
