"""Writes in a DB transaction (``env.db.transaction()``), as teams write them: where the cache step
goes relative to the commit.

Every read here fills through a lease (the fix for the textbook stale-set race), so the one race
left to find is the transaction's own. ``TRANSACTION_CATALOGUE`` maps each adapter to its pattern and
the verdict of the default check (``pass`` or the invariant it fails); ``tests/test_transactions.py``
pins them on the in-memory DB, SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from cachepact import Adapter


@attrs.frozen(kw_only=True)
class TransactionCase:
    name: str
    pattern: str
    verdict: str  # "pass", or the invariant the default check fails
    make: Callable


TRANSACTION_CATALOGUE: dict[str, TransactionCase] = {}


def _case(verdict: str, pattern: str = "cache-aside"):
    def register(make: Callable) -> Callable:
        TRANSACTION_CATALOGUE[make.__name__] = TransactionCase(
            name=make.__name__, pattern=pattern, verdict=verdict, make=make
        )
        return make

    return register


def _leased_read(env) -> Callable:
    def read(key):
        value, token = env.cache.lease_get(key)
        if value is None:
            value = env.db.get(key)
            if token is not None:
                env.cache.lease_set(key, value, token)
        return value

    return read


@_case("invalidate-after-commit")
def invalidate_inside_transaction(env) -> Adapter:
    """The delete inside the ``with`` block: it lands before the commit, so a read between the two
    reloads the old value and caches it for good."""

    def write(key, value):
        with env.db.transaction():
            env.db.put(key, value)
            env.cache.delete(key)

    return Adapter(read=_leased_read(env), write=write)


@_case("pass")
def invalidate_after_transaction(env) -> Adapter:
    """The delete after the block, once the commit made the value visible."""

    def write(key, value):
        with env.db.transaction():
            env.db.put(key, value)
        env.cache.delete(key)

    return Adapter(read=_leased_read(env), write=write)


@_case("pass")
def invalidate_on_commit(env) -> Adapter:
    """The delete registered as a callback (Django's ``transaction.on_commit`` shape): run after the
    commit, never after a rollback."""

    def write(key, value):
        with env.db.transaction() as tx:
            env.db.put(key, value)
            tx.on_commit(lambda: env.cache.delete(key))

    return Adapter(read=_leased_read(env), write=write)


@_case("pass")
def invalidate_inside_and_after(env) -> Adapter:
    """A delete inside the block and another after it: the first is harmless (as an eviction), the
    second is the one that counts."""

    def write(key, value):
        with env.db.transaction():
            env.db.put(key, value)
            env.cache.delete(key)
        env.cache.delete(key)

    return Adapter(read=_leased_read(env), write=write)


@_case("pass")
def nested_savepoint(env) -> Adapter:
    """An audit row written in a savepoint that fails and is rolled back to, the write's own put in
    the outer block, the delete on commit: only the outer put is committed."""

    def write(key, value):
        with env.db.transaction() as tx:
            env.db.put(key, value)
            try:
                with env.db.transaction():
                    env.db.put(key, "scratch")
                    raise LookupError("the audit insert failed")
            except LookupError:
                pass
            tx.on_commit(lambda: env.cache.delete(key))

    return Adapter(read=_leased_read(env), write=write)


def _read_through_add(env) -> Callable:
    def read(key):
        value = env.cache.get(key)
        if value is None:
            value = env.db.get(key)
            if value is not None:
                env.cache.add(key, value)
        return value

    return read


@_case("invalidate-after-commit", pattern="write-through")
def store_inside_transaction(env) -> Adapter:
    """Write-through storing the new value inside the block: readers see a value the DB has not
    committed (and that a rollback would leave behind)."""
    read = _read_through_add(env)

    def write(key, value):
        with env.db.transaction():
            env.db.put(key, value)
            env.cache.set(key, value)

    return Adapter(read=read, write=write, cache_code=[read, write])


@_case("coherent-at-rest", pattern="write-through")
def store_after_transaction(env) -> Adapter:
    """Write-through storing the new value once the block committed: the commit order is right, and
    what is left is write-through's own race (two writes' stores landing in the other order than
    their commits), which is not the transaction's doing."""
    read = _read_through_add(env)

    def write(key, value):
        with env.db.transaction():
            env.db.put(key, value)
        env.cache.set(key, value)

    return Adapter(read=read, write=write, cache_code=[read, write])


__all__ = ["TRANSACTION_CATALOGUE", "TransactionCase"]
