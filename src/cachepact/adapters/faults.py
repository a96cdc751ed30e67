"""Adapters as teams write them around failing stores, for checks with faults (``--faults``).

``FAULT_CATALOGUE``: each breaks one fault invariant (or ``fresh-read``, where a swallowed failure
makes a write acknowledged) the way production code does: a swallowed delete, a write that raises
before invalidating, a "missing" or an error object cached after a failed load, a stand-in returned
for a value. ``FAULT_TOLERANT``: cache-aside written to meet failures, which passes with faults.
Each is checked in ``tests/test_faults.py``; the verdicts are pinned there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import attrs

from cachepact import ABSENT, Adapter, CacheError, DBError

TTL = 300  # seconds: the bound on what a lost invalidation costs
MISSING = "__missing__"  # what a team caches for "not in the DB"


@attrs.frozen(kw_only=True)
class FaultBug:
    name: str
    pattern: str
    invariant: str
    why: str
    make: Callable


FAULT_CATALOGUE: dict[str, FaultBug] = {}


def _bug(invariant: str, why: str, pattern: str = "cache-aside"):
    def register(make: Callable) -> Callable:
        FAULT_CATALOGUE[make.__name__] = FaultBug(
            name=make.__name__, pattern=pattern, invariant=invariant, why=why, make=make
        )
        return make

    return register


def _read(env, *, ttl: float | None = None) -> Callable:
    """Cache-aside's read that meets failures well: a failed lookup falls back to the DB, a failed
    fill is skipped, a failed load reaches the caller."""

    def read(key):
        try:
            value = env.cache.get(key)
        except CacheError:
            value = None
        if value is None:
            value = env.db.get(key)
            if value is not None:
                with contextlib.suppress(CacheError):
                    env.cache.set(key, value, ttl=ttl)
        return value

    return read


def _write(env) -> Callable:
    """A write that invalidates even when its put's reply was lost (it may have landed), and lets a
    failed delete reach the caller: what the entries whose bug is on the read side write with."""

    def write(key, value):
        try:
            env.db.put(key, value)
        finally:
            env.cache.delete(key)

    return write


@_bug("no-stale-after-failed-invalidate", "swallows a failed delete, and entries never expire")
def swallows_failed_delete(env) -> Adapter:
    def write(key, value):
        try:
            env.db.put(key, value)
        finally:
            with contextlib.suppress(CacheError):  # "the cache is best effort"
                env.cache.delete(key)

    return Adapter(read=_read(env), write=write)


@_bug("fresh-read", "swallows a failed delete; the TTL bounds the damage but the write was acknowledged")
def swallows_failed_delete_with_ttl(env) -> Adapter:
    def write(key, value):
        try:
            env.db.put(key, value)
        finally:
            with contextlib.suppress(CacheError):
                env.cache.delete(key)

    return Adapter(read=_read(env, ttl=TTL), write=write)


@_bug("no-stale-after-failed-invalidate", "lets a put's error escape before the delete (no finally), no TTL")
def raises_before_invalidating(env) -> Adapter:
    def write(key, value):
        env.db.put(key, value)  # its reply lost, it raises: the put landed, the delete never runs
        env.cache.delete(key)

    return Adapter(read=_read(env), write=write)


@_bug("no-poisoned-fill", "caches 'missing' when the DB read fails")
def caches_missing_on_db_error(env) -> Adapter:
    def read(key):
        value = env.cache.get(key)
        if value == MISSING:
            return None
        if value is None:
            try:
                value = env.db.get(key)
            except DBError:
                value = None
            env.cache.set(key, MISSING if value is None else value, ttl=TTL)
        return value

    return Adapter(read=read, write=_write(env), decode=lambda v: ABSENT if v == MISSING else v)


@_bug("no-poisoned-fill", "caches the error object when the DB read fails")
def caches_the_error(env) -> Adapter:
    def read(key):
        value = env.cache.get(key)
        if value is None:
            try:
                value = env.db.get(key)
            except DBError as e:
                value = e
            if value is not None:
                env.cache.set(key, value, ttl=TTL)
        return None if isinstance(value, Exception) else value

    return Adapter(read=read, write=_write(env))


@_bug("no-phantom-read", "returns None when the DB read fails, as if the key were absent")
def returns_none_on_db_error(env) -> Adapter:
    def read(key):
        value = env.cache.get(key)
        if value is None:
            try:
                value = env.db.get(key)
            except DBError:
                return None
            if value is not None:
                env.cache.set(key, value, ttl=TTL)
        return value

    return Adapter(read=read, write=_write(env))


@_bug("no-phantom-read", "returns a default when the cache and the DB fail", pattern="read-through")
def returns_a_default(env) -> Adapter:
    def read(key):
        try:
            value = env.cache.get(key)
            if value is None:
                value = env.db.get(key)
                if value is not None:
                    env.cache.set(key, value, ttl=TTL)
            return value
        except ConnectionError:
            return "unavailable"

    return Adapter(read=read, write=_write(env), cache_code=(read,))


def _write_retrying(env, tries: int = 3) -> Callable:
    """A write that invalidates in a ``finally`` (its put may have landed though its reply was lost),
    retrying the delete, and lets the last failure reach the caller."""

    def write(key, value):
        try:
            env.db.put(key, value)
        finally:
            for attempt in range(tries):
                try:
                    env.cache.delete(key)
                    break
                except CacheError:
                    if attempt == tries - 1:
                        raise

    return write


def retries_with_ttl(env) -> Adapter:
    """Meets failures: a failed lookup falls back to the DB, a failed fill is skipped, the DB's
    errors reach the caller; the write invalidates in a ``finally`` (its put may have landed though
    its reply was lost), retrying the delete, and every entry has a time to live as the bound on
    what a lost invalidation costs."""

    return Adapter(read=_read(env, ttl=TTL), write=_write_retrying(env))


def delete_in_finally_with_ttl(env) -> Adapter:
    """The smallest change that converges: delete in a ``finally``, entries with a time to live, and
    failures reach the caller."""

    def read(key):
        value = env.cache.get(key)
        if value is None:
            value = env.db.get(key)
            if value is not None:
                env.cache.set(key, value, ttl=TTL)
        return value

    def write(key, value):
        try:
            env.db.put(key, value)
        finally:
            env.cache.delete(key)

    return Adapter(read=read, write=write)


def _leased_read(env, *, ttl: float | None) -> Callable:
    """A read that fills through a lease: a failed lease lookup falls back to the DB without filling,
    a failed fill is skipped."""

    def read(key):
        try:
            value, token = env.cache.lease_get(key)
        except CacheError:
            return env.db.get(key)
        if value is not None:
            return value
        value = env.db.get(key)
        if token is not None:
            with contextlib.suppress(CacheError):
                env.cache.lease_set(key, value, token, ttl=ttl)
        return value

    return read


def leased_retries_with_ttl(env) -> Adapter:
    """``retries_with_ttl`` with its fills through leases (``env.cache.lease_get``/``lease_set``): the
    write's delete voids a reader's lease, so it holds in flight too. A failed lease lookup falls back
    to the DB without filling; a failed fill is skipped."""

    return Adapter(read=_leased_read(env, ttl=TTL), write=_write_retrying(env))


FAULT_TOLERANT: dict[str, Callable] = {
    "leased_retries_with_ttl": leased_retries_with_ttl,
    "retries_with_ttl": retries_with_ttl,
    "delete_in_finally_with_ttl": delete_in_finally_with_ttl,
}


# -- one adapter per recovery design the model explores (``cachepact explain --faults``) ------------
# Reads fill through leases, as the model's designs do, so what a check finds is the failure's
# doing. ``RECOVERY_DESIGNS`` maps (recovery, time to live) to the adapter; tests/test_convergence.py
# checks that each gets the verdict the explorer proves for its design.


def _design(recovery: str, ttl: float | None) -> Callable:
    def make(env) -> Adapter:
        def delete(key, *, retry: bool) -> None:
            while True:  # the run's faults are finite: a retry loop ends
                try:
                    env.cache.delete(key)
                    return
                except CacheError:
                    if not retry:
                        return  # logged, and given up

        def write(key, value):
            if recovery == "delete-twice":
                delete(key, retry=False)
            try:
                env.db.put(key, value)
            finally:
                delete(key, retry=recovery == "retry")

        return Adapter(read=_leased_read(env, ttl=ttl), write=write)

    make.__name__ = f"{recovery.replace('-', '_')}{'_with_ttl' if ttl else ''}_design"
    make.__doc__ = f"The model's {recovery!r} design{' with a time to live' if ttl else ''}, as adapter code."
    return make


RECOVERY_DESIGNS: dict[tuple[str, bool], Callable] = {
    (recovery, ttl is not None): _design(recovery, ttl)
    for recovery in ("give-up", "retry", "delete-twice")
    for ttl in (None, TTL)
}
