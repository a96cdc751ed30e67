"""The model with failure transitions: which recovery designs converge, proved by the explorer, and
the checker agreeing with it on adapter code of each design."""

from __future__ import annotations

import pytest

from cachepact import check
from cachepact.adapters.faults import RECOVERY_DESIGNS
from cachepact.cli import main
from cachepact.model import CONVERGES, Scenario, convergence, designs_for, explore, pattern_named

CACHE_ASIDE = pattern_named("cache-aside")

# (recovery, ttl) -> (converges, fresh-read), as the explorer proves them for 2 readers and 1 writer.
EXPECTED = {
    ("give-up", False): (False, False),
    ("give-up", True): (True, False),
    ("retry", False): (True, True),
    ("retry", True): (True, True),
    ("outbox", False): (True, False),
    ("outbox", True): (True, False),
    ("delete-twice", False): (False, False),
    ("delete-twice", True): (True, False),
}


@pytest.mark.parametrize("pattern", ["cache-aside", "read-through", "refresh-ahead"])
def test_which_designs_converge(pattern):
    results = {(r.recovery, r.ttl): (r.converges, r.fresh) for r in convergence(pattern_named(pattern))}
    assert results == EXPECTED


def test_a_write_that_stores_has_no_outbox_or_second_delete_and_write_behind_has_no_design():
    assert designs_for(pattern_named("write-through")) == ("give-up", "retry")
    assert designs_for(pattern_named("write-behind")) == ()
    results = {(r.recovery, r.ttl): (r.converges, r.fresh) for r in convergence(pattern_named("write-through"))}
    assert results == {k: v for k, v in EXPECTED.items() if k[0] in ("give-up", "retry")}


def test_every_design_reaches_the_failure_it_is_about():
    for r in convergence(CACHE_ASIDE):
        reached = explore(r.scenario).reached
        assert "fault" in reached and "failed-invalidation" in reached, r.name
        if r.ttl:
            assert "expiry" in reached


def test_the_counterexample_shows_the_failed_call_and_the_entry_it_left():
    result = explore(Scenario(pattern=CACHE_ASIDE, leases=True, faults=1, recovery="delete-twice"))
    cex = {p.name: p.counterexample for p in result.violations()}[CONVERGES]
    rows = [(s.op, s.describe(), s.shown_result) for s in cex]
    assert rows[0] == ("w1", "cache.delete(k1)", "")
    assert rows[-1] == ("w1", "cache.delete(k1)", "CacheError (it failed before taking effect)")
    assert ("r1", "cache.lease_set(k1, v0, tok(r1))", "True") in rows  # filled between the two deletes


def test_no_faults_leaves_the_model_as_it_was():
    plain = explore(Scenario(pattern=CACHE_ASIDE, leases=True, readers=2, writers=2))
    budget_unused = explore(Scenario(pattern=CACHE_ASIDE, leases=True, readers=2, writers=2, recovery="retry"))
    assert (plain.states, plain.transitions) == (budget_unused.states, budget_unused.transitions)
    assert [p.name for p in plain.properties] == [p.name for p in budget_unused.properties]
    assert CONVERGES not in [p.name for p in plain.properties]


@pytest.mark.parametrize("recovery", ["give-up", "retry", "outbox", "delete-twice"])
def test_reduction_agrees_with_the_unreduced_search(recovery):
    sc = Scenario(pattern=CACHE_ASIDE, leases=True, readers=2, writers=1, keys=2, faults=1, recovery=recovery)
    reduced, full = explore(sc), explore(sc, reduce=False)
    assert [(p.name, p.holds) for p in reduced.properties] == [(p.name, p.holds) for p in full.properties]


@pytest.mark.parametrize(
    ("design", "make"),
    RECOVERY_DESIGNS.items(),
    ids=[f"{recovery}-{'ttl' if ttl else 'no-ttl'}" for recovery, ttl in RECOVERY_DESIGNS],
)
def test_the_checker_agrees_with_the_explorer_on_each_design(design, make):
    """A check with faults of adapter code written to each design: it passes exactly where the
    explorer proves every property, and otherwise fails one the explorer says is violated."""
    model = {(r.recovery, r.ttl): r for r in convergence(CACHE_ASIDE)}[design]
    result = check(make, "cache-aside", seed=0, faults=True)
    violated = {name for name, held in model.verdicts if not held}
    if not violated:
        assert result.passed, result.report()
    else:
        assert result.finding is not None and result.finding.invariant in violated, result.report()


def test_the_delete_twice_race_is_found_by_the_exhaustive_fault_phase():
    """A second delete failing after a read filled between the first delete and the put: only a
    race with a fault shows it, and the check enumerates those for the smallest race."""
    result = check(RECOVERY_DESIGNS["delete-twice", False], "cache-aside", seed=0, faults=True)
    assert result.finding.invariant == CONVERGES
    assert result.replay.startswith("con/") and "!3b" in result.replay


def test_explain_faults_prints_the_fault_rows_and_the_designs(capsys):
    assert main(["explain", "--faults", "--pattern", "cache-aside"]) == 0
    out = capsys.readouterr().out
    assert "write: invalidate (App) fails" in out
    assert "raise (fill nothing: no-poisoned-fill" in out
    designs = {}
    for line in out.splitlines():
        cells = [c for c in line.split("  ") if c.strip()]
        if len(cells) == 6 and cells[0] == "cache-aside":
            designs[cells[1].strip()] = cells[2].strip()
    assert designs["give-up"] == "stale forever" and designs["give-up + time to live"] == "converges"
    assert designs["retry"] == "converges" and designs["delete-twice"] == "stale forever"


def test_explore_faults_on_the_command_line(capsys):
    assert main(["explore", "--pattern", "cache-aside", "--leases", "--faults", "1", "--recovery", "retry"]) == 0
    assert f"{CONVERGES}: holds" in capsys.readouterr().out
    code = main(["explore", "--pattern", "cache-aside", "--leases", "--faults", "1", "--recovery", "delete-twice"])
    assert code == 1
    assert f"{CONVERGES}: VIOLATED" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["--pattern", "cache-aside", "--recovery", "retry"], "add --faults 1"),
        (["--pattern", "write-through", "--faults", "1", "--recovery", "outbox"], "use one of give-up, retry"),
        (["--pattern", "cache-aside", "--faults", "9"], "--faults"),
    ],
)
def test_explore_refuses_a_recovery_without_faults_or_that_does_not_apply(argv, fix, capsys):
    try:
        code = main(["explore", *argv])
    except SystemExit as e:  # argparse's own refusal of a value out of range
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert fix in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["explain", "--faults", "--invariants"], "ask for one"),
        (["explain", "--faults", "--leases"], "drop them"),
        (["explore", "--pattern", "write-behind", "--faults", "1"], "drop --faults"),
    ],
)
def test_views_and_faults_that_do_not_go_together_are_refused(argv, fix, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fix in err and len(err.strip().splitlines()) == 1
