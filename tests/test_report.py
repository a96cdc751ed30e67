"""The report is a contract: these tests pin its text."""

from __future__ import annotations

import contextlib
import json

import pytest

from cachepact import check
from cachepact.adapters.broken import CATALOGUE


def test_a_stale_memo_report_shows_the_minimal_sequence_the_culprit_and_the_replay():
    result = check(CATALOGUE["aside_local_memo"].make, "cache-aside", seed=0, target="m:f", concurrency=False)
    assert (
        result.report()
        == f"""\
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

Invariants: 0 pass, 1 fail (fresh-read), 7 not run (who-loads, who-populates, write-order, \
invalidate-not-update, coherent-at-rest, hit-after-fill, single-load: the check stopped at the first failure \
after {result.examples} examples)
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


# -- honest statuses and strict mode --------------------------------------------------------------


def test_a_check_stopped_at_its_first_failure_lists_no_other_invariant_as_pass():
    # Before: the seven others were "pass" in text, JSON and JUnit after a dozen examples.
    result = check(CATALOGUE["aside_double_load"].make, "cache-aside", seed=0)
    statuses = dict(result.statuses)
    assert statuses.pop("single-load") == "fail" and set(statuses.values()) == {"not-run"}
    why = f"the check stopped at the first failure after {result.examples} examples"
    assert result.why_not_run("who-loads") == why
    assert "Invariants: 0 pass, 1 fail (single-load), 7 not run (who-loads, who-populates, write-order, " in (
        result.report()
    )
    assert f", hit-after-fill: {why})\n" in result.report()
    checks = {c["invariant"]: c for c in json.loads(result.to_json())["checks"]}
    assert checks["who-loads"]["status"] == "not-run" and checks["who-loads"]["reason"] == f"not run: {why}"
    assert checks["single-load"]["reason"] is None
    xml = result.to_junit()
    assert xml.count(f'<skipped message="not run: {why}"/>') == 7 and 'skipped="7"' in xml


def test_a_pass_keeps_its_statuses_and_says_why_an_invariant_was_not_run():
    from cachepact.adapters.reference import cache_aside

    result = check(cache_aside, "cache-aside", replay="seq/r:k1,r:k1,r:k2")
    assert result.passed and result.status("who-loads") == "pass" and result.status("fresh-read") == "not-run"
    assert result.why_not_run("fresh-read") == "nothing reached could break it (no run reached read-after-write)"
    assert '<skipped message="not run: nothing reached could break it (no run reached write)"/>' in result.to_junit()


def test_strict_fails_a_pass_that_left_an_invariant_not_run_one_line_per_reason():
    from cachepact import Options
    from cachepact.adapters.reference import cache_aside

    result = check(cache_aside, "cache-aside", replay="seq/r:k1,r:k1,r:k2", target="m:f", strict=True)
    assert result.options == Options(replay="seq/r:k1,r:k1,r:k2", instances=2, strict=True)
    assert result.strict and not result.passed and result.verdict == "fail" and result.finding is None
    assert result.outcome.holds is False
    text = result.report().splitlines()
    assert text[0] == "cachepact check m:f --pattern cache-aside --strict --replay 'seq/r:k1,r:k1,r:k2'"
    assert text[2].startswith("FAIL strict: 4 invariants held over 1 example, 3 operations (")
    assert text[2].endswith("but the check was not complete (each Strict: line below says why).")
    assert [line for line in text if line.startswith("Strict: ")] == [
        "Strict: write-order not run: nothing reached could break it (no run reached write)",
        "Strict: invalidate-not-update not run: nothing reached could break it (no run reached write)",
        "Strict: fresh-read not run: nothing reached could break it (no run reached read-after-write)",
        "Strict: coherent-at-rest not run: nothing reached could break it (no run reached invalidate or "
        "fill-during-write)",
    ]
    data = json.loads(result.to_json())
    assert data["verdict"] == "fail" and data["strict"] is True and len(data["strict_failures"]) == 4
    xml = result.to_junit()
    assert '<testcase classname="cachepact.cache-aside" name="strict"><failure message="strict: write-order' in xml
    assert 'failures="1"' in xml and 'skipped="4"' in xml
    lenient = check(cache_aside, "cache-aside", replay="seq/r:k1,r:k1,r:k2")
    assert lenient.passed and "Strict:" not in lenient.report() and json.loads(lenient.to_json())["strict"] is False


def test_strict_fails_a_pass_with_waits_out_of_the_kits_control():
    import _thread

    from cachepact.adapters.reference import cache_aside_leased, under_one_lock

    # A lock made before the check, out of sight (from _thread: a thread an earlier test left
    # behind keeps the kit's threading patches in place, and threading.Lock() would be the kit's).
    make = under_one_lock(cache_aside_leased, _thread.allocate_lock())
    lenient = check(make, "cache-aside", seed=0, max_examples=30)
    assert lenient.passed and lenient.uncontrolled > 0, lenient.report()
    strict = check(make, "cache-aside", seed=0, max_examples=30, strict=True)
    assert not strict.passed and strict.uncontrolled > 0
    assert strict.strict_failures == (
        f"{strict.uncontrolled} times a thread blocked out of the kit's control, so the interleavings there were "
        "not explored (make locks inside make(env))",
    )
    assert f"Strict: {strict.strict_failures[0]}" in strict.report()


def unobserved_look(env):
    """A correct redis-py cache-aside whose read also sends a command the kit cannot name the keys of."""
    from cachepact import Adapter
    from cachepact.adapters.redis_py import cache_aside_leased

    inner = cache_aside_leased(env)

    def read(key):
        env.redis.sort(f"stats:{key}")
        return inner.read(key)

    return Adapter(read=read, write=inner.write)


def test_strict_fails_a_pass_with_a_command_whose_effect_was_not_observed():
    lenient = check(unobserved_look, "cache-aside", seed=0, max_examples=10, concurrency=False)
    assert lenient.passed and lenient.unobserved == ("SORT",)
    assert json.loads(lenient.to_json())["unobserved"] == ["SORT"]
    strict = check(unobserved_look, "cache-aside", seed=0, max_examples=10, concurrency=False, strict=True)
    assert not strict.passed and strict.verdict == "fail"
    assert (
        "Strict: the effect of SORT was not observed: the kit could not name the keys it touched (use commands "
        "that name their keys)" in strict.report()
    )


def test_strict_must_be_a_bool():
    import pytest

    from cachepact import InvalidArgument
    from cachepact.adapters.reference import cache_aside

    with pytest.raises(InvalidArgument, match="strict must be True or False, not 'yes'"):
        check(cache_aside, "cache-aside", strict="yes")


@pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")  # SETEX is in real code
def test_redis_py_steps_are_rows_of_the_commands_as_sent_and_exists_shows_its_answer():
    from test_diagrams import redis_failure

    result = redis_failure()
    rows = [line.split() for line in result.report().splitlines() if "user:k1" in line and line[:1].isdigit()]
    assert [row[3:] for row in rows] == [
        ["EXISTS", "user:k1", "0"],  # before: the payload it read, "None"
        ["SETEX", "user:k1", "300", "k1.v0"],
        ["EXISTS", "user:k1", "1"],  # before: "b'k1.v0'"
        ["GET", "user:k1", "b'k1.v0'"],
    ]
    steps = json.loads(result.to_json())["checks"]
    cex = next(c["counterexample"] for c in steps if c["counterexample"])
    assert [(s["call"], s["result"]) for s in cex["steps"] if s["call"].startswith("EXISTS")] == [
        ("EXISTS user:k1", "0"),
        ("EXISTS user:k1", "1"),
    ]


def test_a_pipeline_is_one_row_listing_its_commands_and_what_each_did():
    import cachepact

    def make(env):
        r = env.redis

        def read(key):
            raw = r.get(f"u:{key}")
            if raw is not None:
                return raw.decode()
            value = env.db.get(key)
            if value is not None:
                other = "k2" if key != "k2" else "k1"
                with r.pipeline() as p:  # the bug: it caches the value under another key's name too
                    p.set(f"u:{key}", value, ex=300)
                    p.set(f"u:{other}", value, ex=300)
                    p.execute()
            return value

        def write(key, value):
            env.db.put(key, value)
            r.delete(f"u:{key}")

        return cachepact.Adapter(read=read, write=write)

    result = cachepact.check(make, "cache-aside", seed=0, concurrency=False)
    assert result.finding is not None and result.finding.invariant == "who-populates", result.report()
    report = result.report()
    rows = [line for line in report.splitlines() if "MULTI/EXEC: SET u:" in line]
    assert len(rows) == 1, report  # one call as sent, not a row per key it touched
    assert "<-- culprit" in rows[0] and "u:k1: stored k1.v0; u:k2: stored k1.v0" in rows[0]
    assert "Minimal failing sequence: 1 operation, 3 DB or cache calls" in report
    # The JSON and the diagram number calls as the table does: one step, the same culprit.
    import json

    from cachepact.diagrams import render, sequence_graph
    from cachepact.model import Trace

    cex = next(c["counterexample"] for c in json.loads(result.to_json())["checks"] if c["counterexample"])
    assert [s["n"] for s in cex["steps"]] == [1, 2, 3, 4] and cex["culprit"] == 3, cex
    assert cex["steps"][2]["call"].startswith("MULTI/EXEC: SET u:")
    mermaid = render(sequence_graph(Trace(steps=result.steps), culprit=result.finding.culprit), "mermaid", None)
    drawn = [line for line in mermaid.splitlines() if "MULTI/EXEC: SET u:" in line]
    assert len(drawn) == 1 and drawn[0].strip().split(": ", 1)[1].startswith("3. MULTI/EXEC"), mermaid
    assert "4. returns k1.v0" in mermaid and "violates the invariant" in mermaid


def test_a_one_command_transaction_says_so_and_a_refused_set_nx_shows_unchanged():
    import cachepact

    def make(env):
        r = env.redis

        def read(key):
            raw = r.get(f"u:{key}")
            if raw is not None:
                return raw.decode()
            r.set(f"lock:{key}", "held", nx=True, px=5000)
            r.set(f"lock:{key}", "held", nx=True, px=5000)  # the second is refused: it holds one
            value = env.db.get(key)
            if value is not None:
                with r.pipeline(transaction=True) as p:
                    p.set(f"u:{key}", value, ex=300)
                    p.execute()
            return value

        def write(key, value):
            env.db.put(key, value)  # the bug: it never invalidates

        return cachepact.Adapter(read=read, write=write)

    result = cachepact.check(make, "cache-aside", seed=0, concurrency=False)
    report = result.report()
    assert "MULTI/EXEC: SET u:k1 k1.v0 EX 300" in report, report
    refused = [line for line in report.splitlines() if "SET lock:k1 held NX PX 5000" in line]
    assert len(refused) == 2 and "unchanged" in refused[1] and "unchanged" not in refused[0], report


def test_a_transaction_refused_by_its_watch_is_one_row_however_many_keys_it_would_have_stored():
    import redis

    import cachepact

    def make(env):
        r = env.redis
        other = redis.Redis.from_url(env.redis_url, **env.redis_options)

        def read(key):
            with r.pipeline() as p:
                p.watch(f"w:{key}")
                other.incr(f"w:{key}")  # another client moves the watched key: EXEC runs nothing
                p.multi()
                p.incr(f"c1:{key}")
                p.set(f"c2:{key}", "x")
                with contextlib.suppress(redis.WatchError):
                    p.execute()
            return "bogus"  # a failure, so the report shows the steps

        return cachepact.Adapter(read=read, write=lambda key, value: env.db.put(key, value))

    result = cachepact.check(make, "cache-aside", replay="seq/r:k1")
    report = result.report()
    rows = [line for line in report.splitlines() if "MULTI/EXEC: INCRBY c1:k1 1; SET c2:k1 x" in line]
    assert len(rows) == 1, report
    assert "c1:k1: refused: a WATCHed key changed; c2:k1: refused: a WATCHed key changed" in rows[0]
    assert "1 operation, 3 DB or cache calls" in report


def test_a_refused_rename_would_have_stored_its_sources_value():
    from cachepact.conformance.record.redis_hook import _would_store

    was = {b"tmp:1": b"k1.v0"}
    publish = [("RENAME", "tmp:1", "catalog:k1"), ("EXPIRE", "catalog:k1", 300)]
    assert _would_store(publish, b"catalog:k1", was) == b"k1.v0"  # the EXPIRE after it stores nothing
    assert _would_store([("SETEX", "catalog:k1", 300, "k1.v2")], b"catalog:k1", was) == "k1.v2"
    assert _would_store([("INCRBY", "n:k1", 1)], b"n:k1", was) is None
