"""Background work as teams write it: a flusher thread ``make`` starts, a periodic loop, a ``Timer``,
a thread or executor task a read starts for a refresh, ``Adapter(flush=...)``; an operation returns
when its function returns and ends when the work it started is done."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import cachepact
from cachepact import Adapter, check, prove
from cachepact.adapters import broken, reference


class QueueFlusher:
    """Write-behind with one flusher thread started in the constructor, draining a queue of keys and
    putting each key's value as the cache holds it now (safe within one process)."""

    def __init__(self, env, *, queued_values: bool = False):
        self.env = env
        self.queued_values = queued_values
        self.dirty = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        while True:
            item = self.dirty.get()
            if self.queued_values:  # (key, value) as queued: a second write may queue first
                self.env.db.put(*item)
            else:
                value = self.env.cache.get(item)
                if value is not None:
                    self.env.db.put(item, value)

    def get(self, key):
        value = self.env.cache.get(key)
        if value is None:
            value = self.env.db.get(key)
            if value is not None:
                self.env.cache.add(key, value)
        return value

    def put(self, key, value):
        self.env.cache.set(key, value)
        self.dirty.put((key, value) if self.queued_values else key)


def queue_flusher(env):
    c = QueueFlusher(env)
    return Adapter(read=c.get, write=c.put, cache_code=QueueFlusher)


def queued_values(env):
    c = QueueFlusher(env, queued_values=True)
    return Adapter(read=c.get, write=c.put, cache_code=QueueFlusher)


class Periodic(QueueFlusher):
    """Write-behind whose flusher wakes every 5 seconds and puts what is pending."""

    def __init__(self, env):
        self.env = env
        self.pending = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            time.sleep(5)
            with self.lock:
                batch, self.pending = self.pending, {}
            for key, value in batch.items():
                self.env.db.put(key, value)

    def put(self, key, value):
        with self.lock:
            self.env.cache.set(key, value)
            self.pending[key] = value


def periodic(env):
    c = Periodic(env)
    return Adapter(read=c.get, write=c.put, cache_code=(QueueFlusher, Periodic))


def buffered(env, *, flush: bool = True):
    reads = QueueFlusher.__new__(QueueFlusher)
    reads.env = env
    pending: dict = {}

    def write(key, value):
        env.cache.set(key, value)
        pending[key] = value

    def drain():
        while pending:
            key = next(iter(pending))
            env.db.put(key, pending.pop(key))

    return Adapter(read=reads.get, write=write, flush=drain if flush else None, cache_code=QueueFlusher)


def test_a_flusher_thread_started_in_make_is_scheduled_and_its_flushes_judged():
    one = check(queue_flusher, "write-behind", seed=0, instances=1)
    assert one.passed, one.report()
    assert "flush" in one.reached
    # Two processes, each flushing its own queue: a key's writes reach the DB out of order.
    two = check(queue_flusher, "write-behind", seed=0)
    assert two.finding is not None and two.finding.invariant == "flush-order", two.report()
    report = two.report()
    assert "fl1 (background, app 1)" in report and "fl2 (background, app 2)" in report  # a flusher each
    assert "background worker" in report


def test_a_queue_of_values_filled_after_the_entry_puts_two_writes_out_of_order_even_in_one_process():
    result = check(queued_values, "write-behind", seed=0, instances=1)
    assert result.finding is not None and result.finding.invariant == "flush-order", result.report()
    assert "no put of anything older than" in result.report()  # what would have been right


def test_a_periodic_flusher_is_woken_by_moving_the_clock_when_work_is_left():
    result = check(periodic, "write-behind", seed=0, instances=1, concurrency=False)
    assert result.passed, result.report()
    again = check(periodic, "write-behind", replay="seq/w:k1,r:k1", instances=1)
    assert again.passed
    assert "flush" in again.reached


def test_a_write_never_flushed_is_a_lost_write_and_flush_is_called_when_given():
    lost = check(lambda env: buffered(env, flush=False), "write-behind", seed=0, concurrency=False)
    assert lost.finding is not None and lost.finding.invariant == "no-lost-write"
    assert "never flushed" in lost.finding.message
    kept = check(buffered, "write-behind", seed=0, instances=1)
    assert kept.passed, kept.report()
    assert "flush" in kept.reached


def test_flush_must_be_callable():
    with pytest.raises(
        cachepact.DefinitionError, match=r"^Adapter.flush is an int, not a callable; pass a function taking no argument"
    ):
        Adapter(read=print, write=print, flush=1)


def test_a_refresh_a_read_starts_is_background_work_and_its_stale_store_is_caught():
    entry = broken.CATALOGUE["ra_blind_refresh"]
    result = check(entry.make, "refresh-ahead", seed=0)
    assert result.finding is not None and result.finding.invariant == "no-stale-refresh", result.report()
    report = result.report()
    assert "rf1 (background, app 2)" in report  # started by r2, on app 2
    assert "discard the refresh" in report  # what the model allowed there
    # The refresh loaded before the write and stored after it: its steps straddle the write's.
    ops = [s.op for s in result.steps if s.target in ("db", "cache")]
    assert ops.index("rf1") < ops.index("w1") < len(ops) - 1 - ops[::-1].index("rf1")


def test_executor_work_a_read_submits_in_refresh_ahead_is_a_refresh_of_its_own():
    class PoolRefresh:
        def __init__(self, env):
            self.env, self.pool, self.at = env, ThreadPoolExecutor(max_workers=2), {}

        def reload(self, key):
            self.env.cache.set(key, self.env.db.get(key), ttl=600)
            self.at[key] = time.time()

        def get(self, key):
            value = self.env.cache.get(key)
            if value is not None:
                if time.time() - self.at.get(key, 0) > 60:
                    self.at[key] = time.time()
                    self.pool.submit(self.reload, key)
                return value
            value = self.env.db.get(key)
            if value is not None:
                self.env.cache.set(key, value, ttl=600)
                self.at[key] = time.time()
            return value

    def make(env):
        c = PoolRefresh(env)

        def write(key, value):
            env.db.put(key, value)
            env.cache.delete(key)

        return Adapter(read=c.get, write=write, cache_code=PoolRefresh)

    result = check(make, "refresh-ahead", replay="seq/r:k1,t:301,r:k1,r:k1")
    assert result.passed, result.report()
    assert "refresh" in result.reached


def test_a_write_that_hands_its_invalidation_to_a_thread_returns_before_it_and_fails_fresh_read():
    def make(env):
        inner = reference.cache_aside_leased(env)

        def write(key, value):
            env.db.put(key, value)
            threading.Timer(0.5, env.cache.delete, args=(key,)).start()

        return Adapter(read=inner.read, write=write)

    result = check(make, "cache-aside", seed=0)
    assert result.finding is not None and result.finding.invariant == "fresh-read", result.report()
    # Sequentially the Timer is done before the next operation begins: nothing to see there.
    assert check(make, "cache-aside", seed=0, concurrency=False).passed


def test_prove_ages_a_refresh_ahead_key_first_so_the_refresh_races_the_write():
    assert not prove(broken.CATALOGUE["ra_blind_refresh"].make, "refresh-ahead", readers=1, writers=1).holds
    fixed = prove(reference.refresh_ahead_locked, "refresh-ahead", readers=1, writers=1)
    assert fixed.holds and fixed.complete
    flushed = prove(reference.write_behind_locked, "write-behind", readers=1, writers=1)
    assert flushed.holds and flushed.complete


def test_flush_given_to_a_pattern_without_background_work_is_reported_unused():
    def make(env):
        inner = reference.cache_aside(env)
        return Adapter(read=inner.read, write=inner.write, flush=lambda: None)

    result = check(make, "cache-aside", seed=0, concurrency=False, max_examples=10)
    assert result.passed
    assert any(w.startswith("Adapter.flush was never called") for w in result.warnings)


def test_a_sequential_pass_of_a_background_pattern_says_what_it_did_not_explore():
    alone = check(reference.write_behind, "write-behind", seed=0, concurrency=False, max_examples=20)
    assert alone.passed
    assert any("background work ran one unit at a time" in w for w in alone.warnings)
    plain = check(reference.cache_aside, "cache-aside", seed=0, concurrency=False, max_examples=20)
    assert not any("background work" in w for w in plain.warnings)


def watched_refresh(env) -> Adapter:
    """Refresh-ahead over redis-py as a team writes it: misses fill through leases; a hit on an
    entry older than a minute is served and refreshed on a thread, which stores only if the key did
    not change since it looked (WATCH), as Caffeine discards a refresh a write raced."""
    import redis

    from cachepact.leases import Leases

    r, leases, stored_at = env.redis, Leases(env.redis), {}

    def refresh(key):
        with r.pipeline() as pipe:
            try:
                pipe.watch(key)
                if pipe.get(key) is None:
                    return
                value = env.db.get(key)
                pipe.multi()
                pipe.set(key, value, ex=600)
                pipe.execute()
                stored_at[key] = time.time()
            except redis.WatchError:
                pass  # a write (or expiry) changed the key since the refresh looked: discarded

    def read(key):
        value, token = leases.get(key)
        if value is not None:
            if time.time() - stored_at.get(key, 0.0) > 60:
                stored_at[key] = time.time()
                threading.Thread(target=refresh, args=(key,)).start()
            return value.decode()
        value = env.db.get(key)
        if token is not None:
            leases.set(key, value, token, ttl=600)
            stored_at[key] = time.time()
        return value

    def write(key, value):
        env.db.put(key, value)
        leases.delete(key)

    return Adapter(read=read, write=write, cache_code=(read, refresh))


def test_a_refresh_whose_watched_store_the_server_refused_is_discarded_not_stale():
    # r1 fills k1; r2 (app 2) hits it and starts a refresh, which WATCHes k1 and loads; w1 writes
    # and deletes k1; the refresh's EXEC is refused. It stored nothing: a discard, as the fix does
    # (the judge once took the refused store for a stale one).
    result = check(watched_refresh, "refresh-ahead", replay="con/|r:k1,r:k1@2,w:k1/000133322")
    assert result.passed, result.report()
    assert "refresh-discarded" in result.reached


def test_an_in_process_redis_aborts_a_transaction_whose_watched_key_expired():
    # Redis 6.0.9 on: a WATCHed key that expires before EXEC aborts it. fakeredis drops the key
    # without telling its watchers; the kit's server tells them when its clock expires the key.
    import redis

    from cachepact.backends._redis import RedisServer
    from cachepact.conformance.runtime.clock import VirtualClock

    server = RedisServer()
    try:
        with VirtualClock() as clock:
            client = redis.Redis.from_url(server.url, **server.options)
            client.set("k1", "v0", ex=30)
            server.register([b"k1"])
            server.pttl(b"k1")  # the kit reads a key's TTL after a command that may set one
            with client.pipeline() as pipe:
                pipe.watch("k1")
                clock.advance(31)
                assert b"k1" in server.expired()
                pipe.multi()
                pipe.set("k1", "v1")
                with pytest.raises(redis.WatchError):
                    pipe.execute()
    finally:
        server.close()
