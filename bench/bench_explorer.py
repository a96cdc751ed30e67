"""Explorer throughput and reduction, side by side with minicheck on the same model, in one process.

    python bench/bench_explorer.py            # the figures the closing notes quote
    python bench/bench_explorer.py --quick    # a smaller run

minicheck (PyPI) is a general-purpose breadth-first explicit-state checker. It is handed the very
same transition function (``System.successors``) and the same two properties, so the comparison
is between the search engines, not between two models.
"""

from __future__ import annotations

import argparse
import time

from cachepact.model import CACHE_ASIDE, WRITE_THROUGH, Scenario, State, System, explore


def minicheck_run(scenario: Scenario) -> tuple[int, float, dict]:
    from minicheck import Protocol, check_safety

    system = System(scenario)
    system.skip_stutter = True  # the same successor function the explorer uses

    def coherent(d: dict) -> bool:
        return System.coherent_at_rest(State(**d))

    model = Protocol(
        name=scenario.name,
        candidate=False,
        fields=tuple(system.initial()._fields),
        initial=system.initial(),
        transitions=lambda s: [(label, nxt) for label, nxt, _ in system.successors(s)],
        invariants={"coherent-at-rest": coherent, "fresh-read": lambda d: not d["stale"]},
    )
    start = time.perf_counter()
    result = check_safety(model, max_states=50_000_000)
    elapsed = time.perf_counter() - start
    verdict = {name: p["holds"] for name, p in result["properties"].items()}
    return result["reachable_states"], elapsed, verdict


def row(tool: str, scenario: Scenario, states: int, seconds: float, verdict: str) -> str:
    rate = states / seconds if seconds else float("inf")
    return f"{tool:<24} {scenario.name:<78} {states:>9} states {seconds:>7.2f} s {rate:>9,.0f} states/s  {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    same_model = [
        Scenario(pattern=CACHE_ASIDE, leases=True, readers=2, writers=2, keys=2),
        Scenario(pattern=CACHE_ASIDE, leases=True, readers=3, writers=2, keys=2),
    ]
    same_model.append(Scenario(pattern=WRITE_THROUGH, locks=True, readers=2, writers=2, keys=2))
    if not args.quick:
        same_model.append(Scenario(pattern=CACHE_ASIDE, leases=True, readers=3, writers=3, keys=2))
        same_model.append(Scenario(pattern=WRITE_THROUGH, locks=True, readers=3, writers=3, keys=2))

    print("== raw throughput, unreduced model, full sweep (both tools, same successor function)")
    for sc in same_model:
        mc_states, mc_time, mc_verdict = minicheck_run(sc)
        print(row("minicheck", sc, mc_states, mc_time, str(mc_verdict)))
        ours = explore(sc, reduce=False, max_states=50_000_000)
        verdict = {p.name: p.holds for p in ours.properties}
        print(row("cachepact (no reduce)", sc, ours.states, ours.elapsed, str(verdict)))
        assert ours.states == mc_states and verdict == mc_verdict, "the two tools disagree"

    print("\n== reduction: key independence + reader/writer symmetry")
    big = [Scenario(pattern=CACHE_ASIDE, leases=True, readers=3, writers=3, keys=2)]
    big.append(Scenario(pattern=CACHE_ASIDE, leases=True, readers=4, writers=4, keys=2))
    for sc in big:
        reduced = explore(sc, max_states=50_000_000)
        print(row("cachepact (reduced)", sc, reduced.states, reduced.elapsed, reduced.verdict))

    print("\n== counterexamples stay shortest")
    for sc in (
        Scenario(pattern=CACHE_ASIDE, readers=1, writers=1),
        Scenario(pattern=CACHE_ASIDE, readers=4, writers=4, keys=2),
        Scenario(pattern=WRITE_THROUGH, readers=1, writers=2),
    ):
        r = explore(sc)
        lengths = {p.name: len(p.counterexample) for p in r.violations()}
        print(f"{sc.name:<78} {lengths} in {r.elapsed:.3f} s")


if __name__ == "__main__":
    main()
