"""``env.db.transaction()``: staged puts visible at commit, never on an exception; the commit as the
write point (``invalidate-after-commit``); a real transaction on SQLite and PostgreSQL."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import cachepact
from cachepact.adapters.transactions import TRANSACTION_CATALOGUE
from cachepact.backends._sql import open_sql_db
from cachepact.conformance.record.env import build, run_operation
from cachepact.model import invariant_names, pattern_named


def world(write, *, initial=None):
    def make(env):
        return cachepact.Adapter(read=env.db.get, write=lambda k, v: write(env, k, v))

    return build(make, initial=initial if initial is not None else {"k1": "k1.v0"})


def calls(h):
    return [s.describe() for s in h.recorder.steps]


# -- what a transaction does ----------------------------------------------------------------------


def test_a_put_is_seen_by_its_own_transaction_and_by_nobody_else_until_the_commit():
    seen = {}

    def write(env, key, value):
        with env.db.transaction():
            env.db.put(key, value)
            seen["inside"] = env.db.get(key)
            seen["others"] = h.db.get(key)  # what any other connection reads now
        seen["after"] = h.db.get(key)

    h = world(write)
    run_operation(h.adapters[0].write, "k1", "k1.v1")
    assert seen == {"inside": "k1.v1", "others": "k1.v0", "after": "k1.v1"}
    assert calls(h) == ["db.put(k1, k1.v1) in tx1", "db.get(k1) in tx1", "db.commit(tx1: k1 = k1.v1)"]


def test_an_exception_rolls_back_and_goes_on():
    def write(env, key, value):
        with env.db.transaction():
            env.db.put(key, value)
            raise KeyError("validation failed")

    h = world(write)
    with pytest.raises(KeyError):
        run_operation(h.adapters[0].write, "k1", "k1.v1")
    assert h.db.get("k1") == "k1.v0"
    assert calls(h) == ["db.put(k1, k1.v1) in tx1", "db.rollback(tx1)"]


def test_on_commit_runs_after_the_commit_in_order_and_never_after_a_rollback():
    order = []

    def write(env, key, value):
        with env.db.transaction() as tx:
            env.db.put(key, value)
            tx.on_commit(lambda: order.append(("first", h.db.get(key))))
            tx.on_commit(lambda: order.append(("second", h.db.get(key))))
        if value == "k1.v2":
            with env.db.transaction() as tx:
                tx.on_commit(lambda: order.append("never"))
                raise ValueError

    h = world(write)
    run_operation(h.adapters[0].write, "k1", "k1.v1")
    assert order == [("first", "k1.v1"), ("second", "k1.v1")]
    with pytest.raises(ValueError):
        run_operation(h.adapters[0].write, "k1", "k1.v2")
    assert "never" not in order


def test_a_nested_block_is_a_savepoint():
    def write(env, key, value):
        with env.db.transaction():
            env.db.put(key, value)
            with pytest.raises(LookupError), env.db.transaction():
                env.db.put(key, "scratch")
                env.db.put("k2", "k2.scratch")
                raise LookupError
            with env.db.transaction():
                env.db.put("k3", "k3.v1")

    h = world(write)
    run_operation(h.adapters[0].write, "k1", "k1.v1")
    assert h.db.snapshot() == {"k1": "k1.v1", "k3": "k3.v1"}


def test_each_thread_has_its_own_transaction_and_the_world_numbers_them():
    def write(env, key, value):
        with env.db.transaction():
            env.db.put(key, value)

    h = world(write)
    run_operation(h.adapters[0].write, "k1", "k1.v1")
    run_operation(h.adapters[0].write, "k2", "k2.v1")
    assert [s.tx for s in h.recorder.steps] == ["tx1", "tx1", "tx2", "tx2"]


def test_on_commit_refuses_what_it_cannot_call():
    def write(env, key, value):
        with env.db.transaction() as tx:
            tx.on_commit("delete k1")

    h = world(write)
    with pytest.raises(TypeError, match="on_commit takes a function"):
        run_operation(h.adapters[0].write, "k1", "k1.v1")


# -- the commit on SQL databases: one real transaction ------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'run.db'}"
    return request.getfixturevalue("postgres_server_url")


def test_put_many_is_all_or_nothing_on_sql(sql_url: str) -> None:
    db = open_sql_db(sql_url)
    try:
        db.reset({"k1": "k1.v0"})
        db.put_many({"k1": "k1.v1", "k2": "k2.v1"})
        assert db.snapshot() == {"k1": "k1.v1", "k2": "k2.v1"}
        with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):  # pickle cannot store it: all fails
            db.put_many({"k1": "k1.v2", "k3": lambda: None})
        assert db.snapshot() == {"k1": "k1.v1", "k2": "k2.v1"}
    finally:
        db.close()


@pytest.mark.parametrize("name", ["invalidate_inside_transaction", "invalidate_on_commit"])
def test_the_verdicts_hold_on_sql(sql_url: str, name: str) -> None:
    case = TRANSACTION_CATALOGUE[name]
    result = cachepact.check(case.make, case.pattern, seed=0, db=sql_url, max_examples=60, target=name)
    assert (result.finding.invariant if result.finding else "pass") == case.verdict, result.report()
    assert "commit" in result.reached


# -- the judge: the commit is the write point ----------------------------------------------------


@pytest.mark.parametrize("case", TRANSACTION_CATALOGUE.values(), ids=list(TRANSACTION_CATALOGUE))
def test_catalogue_verdicts(case) -> None:
    result = cachepact.check(case.make, case.pattern, seed=0, target=case.name)
    assert (result.finding.invariant if result.finding else "pass") == case.verdict, result.report()
    assert "commit" in result.reached
    assert result.status("invalidate-after-commit") in ("pass", "fail", "not-run")
    if case.verdict == "pass":
        assert result.status("invalidate-after-commit") == "pass"


def test_an_invalidation_inside_the_transaction_is_caught_by_the_race_between_it_and_the_commit():
    result = cachepact.check(TRANSACTION_CATALOGUE["invalidate_inside_transaction"].make, "cache-aside", seed=0)
    assert result.finding.invariant == "invalidate-after-commit"
    assert "inside its transaction, before the commit made its value visible" in result.finding.message
    report = result.report()
    assert "db.commit(tx1: k1 = k1.v1)" in report and "db.put(k1, k1.v1) in tx1" in report
    # the reader runs between the delete and the commit; the replay line reruns exactly that
    again = cachepact.check(
        TRANSACTION_CATALOGUE["invalidate_inside_transaction"].make, "cache-aside", replay=result.replay
    )
    assert again.finding.invariant == "invalidate-after-commit"


def test_without_a_race_an_invalidation_inside_the_transaction_harms_nothing():
    """One operation at a time, nothing can read between the delete and the commit: it passes (the
    judge judges what the order did, not the order)."""
    result = cachepact.check(
        TRANSACTION_CATALOGUE["invalidate_inside_transaction"].make, "cache-aside", seed=0, concurrency=False
    )
    assert result.passed, result.report()


def test_the_invariant_is_listed_only_by_checks_whose_writes_committed():
    plain = cachepact.check(
        lambda env: cachepact.Adapter(read=env.db.get, write=env.db.put), "cache-aside", seed=0, concurrency=False
    )
    names = [name for name, _ in plain.statuses]
    assert "invalidate-after-commit" not in names
    assert "invalidate-after-commit" not in invariant_names(pattern_named("cache-aside"))
    assert "invalidate-after-commit" in cachepact.INVARIANTS
    tx = cachepact.check(TRANSACTION_CATALOGUE["invalidate_on_commit"].make, "cache-aside", seed=0, concurrency=False)
    assert dict(tx.statuses)["invalidate-after-commit"] == "pass"


# -- faults on the commit -------------------------------------------------------------------------


def test_a_commit_whose_reply_was_lost_committed_and_skipped_its_callbacks():
    """The commit took effect, the caller got DBError, on_commit never ran: the entry the read filled
    before is stale for good."""
    make = TRANSACTION_CATALOGUE["invalidate_on_commit"].make
    result = cachepact.check(make, "cache-aside", faults=True, replay="seq/r:k1,w:k1!2l")
    assert result.finding.invariant == "no-stale-after-failed-invalidate", result.report()
    assert "db.commit(tx1: k1 = k1.v1)" in result.report()
    assert "DBError (lost reply: it took effect)" in result.report()


def test_a_commit_that_failed_before_taking_effect_leaves_the_db_as_it_was():
    make = TRANSACTION_CATALOGUE["invalidate_on_commit"].make
    result = cachepact.check(make, "cache-aside", faults=True, replay="seq/r:k1,w:k1!2b,r:k1")
    assert result.passed, result.report()
    assert "raised" in result.reached


# -- from a new user's trial ----------------------------------------------------------------------


def test_a_savepoint_rolled_back_drops_its_callbacks_and_says_so():
    """As Django does: a callback given inside a savepoint that rolled back never runs."""
    ran = []

    def write(env, key, value):
        with env.db.transaction() as tx:
            env.db.put(key, value)
            with pytest.raises(LookupError), env.db.transaction():
                tx.on_commit(lambda: ran.append("inner"))
                raise LookupError
            tx.on_commit(lambda: ran.append("outer"))

    h = world(write)
    run_operation(h.adapters[0].write, "k1", "k1.v1")
    assert ran == ["outer"]
    assert "db.rollback(tx1 to its savepoint)" in calls(h)


def test_on_commit_on_a_transaction_that_ended_is_an_error_not_a_callback_dropped():
    def write(env, key, value):
        with env.db.transaction() as tx:
            env.db.put(key, value)
        tx.on_commit(lambda: env.cache.delete(key))

    h = world(write)
    with pytest.raises(RuntimeError, match="tx1 has already ended: call on_commit inside its with block"):
        run_operation(h.adapters[0].write, "k1", "k1.v1")


def _retrying(env, *, transaction: bool):
    def read(key):
        value, token = env.cache.lease_get(key)
        if value is None:
            value = env.db.get(key)
            if token is not None:
                env.cache.lease_set(key, value, token, ttl=300)
        return value

    def write(key, value):
        for attempt in range(5):
            try:
                if transaction:
                    with env.db.transaction():
                        env.db.put(key, value)
                else:
                    env.db.put(key, value)
                break
            except cachepact.DBError:
                if attempt == 4:
                    raise
        for _ in range(5):
            try:
                env.cache.delete(key)
                return
            except cachepact.CacheError:
                pass

    return cachepact.Adapter(read=read, write=write)


@pytest.mark.parametrize(("transaction", "replay"), [(True, "seq/r:k1,w:k1!2b"), (False, "seq/r:k1,w:k1!1b")])
def test_a_write_that_retries_a_put_or_commit_that_failed_is_no_put_twice(transaction, replay):
    """The failed put never landed: the retry is the write's put (it was reported write-order)."""
    make = lambda env: _retrying(env, transaction=transaction)  # noqa: E731
    again = cachepact.check(make, "cache-aside", faults=True, replay=replay)
    assert again.passed, again.report()
    assert cachepact.check(make, "cache-aside", seed=0, faults=True).passed


def test_a_fault_past_an_operations_fourth_call_is_tried():
    """A write that reads twice, commits at its fifth call and deletes after: a failed commit reply or
    delete is tried by the fault phase, which walks every call an operation makes."""

    def make(env):
        def read(key):
            value = env.cache.get(key)
            if value is None:
                value = env.db.get(key)
                if value is not None:
                    env.cache.set(key, value)
            return value

        def write(key, value):
            env.db.get(key)
            env.db.get("stock")
            with env.db.transaction() as tx:
                env.db.put(key, value)
                env.db.put("stock", 1)
                tx.on_commit(lambda: env.cache.delete(key))

        return cachepact.Adapter(read=read, write=write)

    result = cachepact.check(make, "cache-aside", seed=0, faults=True, concurrency=False)
    assert result.finding.invariant == "no-stale-after-failed-invalidate", result.report()


def test_a_factory_that_writes_a_run_key_is_refused_naming_the_fix():
    def make(env):
        env.db.put("k1", "seeded")
        return cachepact.Adapter(read=env.db.get, write=env.db.put)

    with pytest.raises(cachepact.DefinitionError, match=r"wrote k1 to env.db \('seeded'\); the run's keys"):
        cachepact.check(make, "cache-aside", seed=0)


def test_a_store_inside_the_transaction_is_told_the_commit_comes_first():
    result = cachepact.check(TRANSACTION_CATALOGUE["store_inside_transaction"].make, "write-through", seed=0)
    assert result.finding.invariant == "invalidate-after-commit"
    assert result.finding.allowed == ("the commit of its transaction (db.commit: k1 = k1.v1)",)
