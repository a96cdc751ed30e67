"""Conformance throughput and time-to-catch, side by side with the peer a user writes today.

    python bench/bench_conformance.py

The peer is a hand-written Hypothesis RuleBasedStateMachine that drives the same reference
adapter over plain in-memory stores and checks only read-after-write. cachepact runs the same
number of examples and steps with every check on (recording, attribution, refinement, the eight
invariants, coherence after every operation).
"""

from __future__ import annotations

import itertools
import statistics
import time
import types

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, rule

import cachepact
from cachepact.adapters.broken import CATALOGUE
from cachepact.adapters.reference import REFERENCE

EXAMPLES, STEPS = 200, 25
# The same universe the kit draws from: three colliding keys, one never written.
KEYS = ("k1", "k2", "k3")
INITIAL = {"k1": "k1.v0", "k2": "k2.v0"}


class FakeDB(dict):
    """The peer's stores, as a user writes them for a test: dicts, with memcache-style leases."""

    def put(self, key, value):
        self[key] = value


class FakeCache(dict):
    def __init__(self):
        super().__init__()
        self.leases = {}
        self.tokens = itertools.count(1)

    def set(self, key, value, ttl=None):  # a lock's TTL (the library's CacheLock) is not modelled here
        if value is not None:
            self[key] = value

    def add(self, key, value, ttl=None):
        if key in self:
            return False
        self.set(key, value)
        return True

    def delete(self, key):
        self.pop(key, None)
        self.leases.pop(key, None)

    def lease_get(self, key):
        if key in self:
            return self[key], None
        if key in self.leases:
            return None, None
        self.leases[key] = token = next(self.tokens)
        return None, token

    def lease_set(self, key, value, token):
        if self.leases.get(key) != token:
            return False
        del self.leases[key]
        self.set(key, value)
        return True


def peer(make) -> tuple[int, float]:
    ops = [0]

    class ReadAfterWrite(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            env = types.SimpleNamespace(db=FakeDB(INITIAL), cache=FakeCache())
            self.adapter = make(env)
            self.model = dict(INITIAL)
            self.n = 0

        @rule(key=st.sampled_from(KEYS))
        def read(self, key):
            ops[0] += 1
            assert self.adapter.read(key) == self.model.get(key)

        @rule(key=st.sampled_from(KEYS))
        def write(self, key):
            ops[0] += 1
            self.n += 1
            self.adapter.write(key, f"v{self.n}")
            self.model[key] = f"v{self.n}"

    config = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    test = get_state_machine_test(ReadAfterWrite, settings=config)
    start = time.perf_counter()
    test()
    return ops[0], time.perf_counter() - start


def ours(make, pattern) -> tuple[int, float]:
    start = time.perf_counter()
    # The peer is sequential, so is this side: the same drawn sequences, every sequential check on.
    result = cachepact.check(make, pattern, max_examples=EXAMPLES, steps=STEPS, concurrency=False)
    assert result.passed, result.report()
    return result.operations, time.perf_counter() - start


def main() -> None:
    print(f"== throughput: {EXAMPLES} examples x up to {STEPS} operations, same adapter, same process")
    for pattern, adapters in REFERENCE.items():
        for name, make in adapters.items():
            if "redis" in name:
                continue  # the peer's env is two dicts: no Redis for it to reach
            # Alternating rounds, so both sides see the same machine state; this VM's timing wanders by
            # +-20% run to run, so the figure is the median of the per-round ratios, with its range.
            ratios, peer_rates, our_rates = [], [], []
            for _ in range(7):
                try:
                    p_ops, p_t = peer(make)
                except Exception as e:  # the peer's own verdict, reported, not a crash
                    # Its background threads (a refresh, a flusher) run free beside the peer's reads,
                    # unscheduled: a read can meet a refresh that loaded before the write.
                    print(f"{name:<22} peer failed ({type(e).__name__}): its background threads race its reads")
                    break
                o_ops, o_t = ours(make, pattern)
                peer_rates.append(p_ops / p_t)
                our_rates.append(o_ops / o_t)
                ratios.append(our_rates[-1] / peer_rates[-1])
            if not ratios:
                continue
            print(
                f"{name:<22} peer {statistics.median(peer_rates):>7,.0f} ops/s   "
                f"cachepact {statistics.median(our_rates):>7,.0f} ops/s   "
                f"ratio median {statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f})"
            )

    print("\n== default check (sequential + concurrent) of each reference adapter")
    for pattern, adapters in REFERENCE.items():
        for name, make in adapters.items():
            start = time.perf_counter()
            result = cachepact.check(make, pattern)
            # The plain ones lose the stale-set race; the locked one too, across two app instances
            # (its lock is per process: it passes with instances=1, see bench_concurrency.py).
            why = f" ({result.finding.invariant}: the stale-set race)" if result.finding else ""
            print(f"{name:<22} {result.verdict}{why} in {time.perf_counter() - start:.2f} s")

    print("\n== time to catch each catalogue entry, median over 10 seeds")
    worst = 0.0
    for name, entry in CATALOGUE.items():
        times, caught = [], 0
        for seed in range(10):
            start = time.perf_counter()
            result = cachepact.check(entry.make, entry.pattern, seed=seed)
            times.append(time.perf_counter() - start)
            caught += result.finding is not None and result.finding.invariant == entry.invariant
        median = statistics.median(times)
        worst = max(worst, median)
        print(f"{name:<32} {entry.invariant:<22} caught {caught}/10  median {median:.3f} s  max {max(times):.3f} s")
    print(f"worst median: {worst:.3f} s")


if __name__ == "__main__":
    main()
