"""The report is a contract: these tests pin its text."""

from __future__ import annotations

import json

from cachepact import check
from cachepact.adapters.broken import CATALOGUE


def test_a_stale_memo_report_shows_the_minimal_sequence_the_culprit_and_the_replay():
    result = check(CATALOGUE["aside_local_memo"].make, "cache-aside", seed=0, target="m:f", concurrency=False)
    assert (
        result.report()
        == """\
cachepact check m:f --pattern cache-aside --no-concurrency --seed 0
FAIL fresh-read: the read r2 of k1 returned k1.v0, older than k1.v1 written before the read began

Minimal failing sequence: 3 operations, 5 DB or cache calls
#  op  actor  call                       result  note
-  --  -----  -------------------------  ------  -----------
1  r1  App    cache.get(k1)              None
2  r1  App    db.get(k1)                 k1.v0
3  r1  App    cache.set(k1, k1.v0)
4  r1  App    read(k1) returned          k1.v0
5  w1  App    db.put(k1, k1.v1)
6  w1  App    cache.delete(k1)
7  w1  App    write(k1, k1.v1) returned
8  r2  App    read(k1) returned          k1.v0   <-- culprit
Model allowed at that point: return k1.v1

Final state:
key  db     cache
---  -----  -----
k1   k1.v1  None
k2   k2.v0  None
k3   None   None

Invariants: 6 pass, 1 fail (fresh-read), 1 not run (hit-after-fill: nothing reached could break them)
Reached: miss, load, fill, write, invalidate, absent-read, read-after-write
Never reached: hit (the run says nothing about those paths)
Replay: cachepact check m:f --pattern cache-aside --instances 1 --replay 'seq/r:k1,w:k1,r:k1'"""
    )


def test_the_culprit_of_a_who_populates_failure_is_the_fill_by_the_wrong_party():
    result = check(CATALOGUE["through_app_fills"].make, "read-through", seed=0, target="m:f")
    text = result.report()
    assert "FAIL who-populates: in read-through the entry is filled by Cache; here App filled it" in text
    assert "3  r1  App    cache.set(k1, k1.v0)          <-- culprit" in text
    assert "Model allowed at that point: Cache: cache.set(k1, k1.v0) | Cache: cache.add(k1, k1.v0)" in text


def test_replaying_the_printed_string_reproduces_the_failure_exactly():
    make = CATALOGUE["aside_wrong_key_invalidated"].make
    first = check(make, "cache-aside", seed=3, target="m:f")
    again = check(make, "cache-aside", replay=first.replay, target="m:f")
    assert again.finding == first.finding and again.steps == first.steps
    # From the verdict to the coverage: the first line is each run's own command, coverage differs (one run vs many).
    upto_coverage = lambda text: text[text.index("FAIL") : text.index("Invariants:")]  # noqa: E731
    assert upto_coverage(again.report()) == upto_coverage(first.report())
    assert again.report().splitlines()[0] == f"cachepact check m:f --pattern cache-aside --replay '{first.replay}'"


def test_json_lists_every_invariant_with_its_status_and_the_counterexample():
    result = check(CATALOGUE["aside_double_load"].make, "cache-aside", seed=0)
    data = json.loads(result.to_json())
    assert data["verdict"] == "fail" and data["pattern"] == "cache-aside"
    statuses = {c["invariant"]: c["status"] for c in data["checks"]}
    assert statuses["single-load"] == "fail" and list(statuses.values()).count("fail") == 1
    [failed] = [c for c in data["checks"] if c["status"] == "fail"]
    cex = failed["counterexample"]
    assert cex["replay"] == result.replay and cex["steps"][cex["culprit"] - 1]["call"] == "db.get(k1)"


def test_junit_has_one_case_per_invariant_and_the_report_in_the_failure():
    result = check(CATALOGUE["aside_double_load"].make, "cache-aside", seed=0)
    xml = result.to_junit()
    assert xml.count("<testcase ") == 8 and xml.count("<failure ") == 1
    assert 'name="single-load"><failure message="single-load: ' in xml
