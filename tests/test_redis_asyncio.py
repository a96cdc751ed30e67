"""redis.asyncio inside a check: every command an asyncio client sends (``env.async_redis``, a client
the adapter or a library makes from ``env.redis_url``) is recorded as redis-py's are, so an asyncio
adapter and its synchronous twin get the same runs; ``cachepact.leases.AsyncLeases``; asyncio
primitives shared between operations.

Before, every such command was refused (exit 2), and before that it changed the server out of the
kit's sight (a false who-populates, keys left on a real server)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest
import redis
import redis.asyncio

import cachepact
from cachepact import Adapter, check
from cachepact.adapters.libraries.redis_asyncio import get_set as textbook_async  # the twins' coroutine sides
from cachepact.adapters.libraries.redis_asyncio import leased as leased_async
from cachepact.leases import AsyncLeases, Leases


def verdict(result):
    return result.finding.invariant if result.finding else "pass"


# -- the same logic over redis-py and redis.asyncio ---------------------------------------------------


def textbook_sync(env):
    r = env.redis

    def read(key):
        raw = r.get(f"user:{key}")
        if raw is not None:
            return raw.decode()
        value = env.db.get(key)
        if value is not None:
            r.set(f"user:{key}", value, ex=300)
        return value

    def write(key, value):
        env.db.put(key, value)
        r.delete(f"user:{key}")

    return Adapter(read=read, write=write)


def leased_sync(env):
    leases = Leases(env.redis)

    def read(key):
        value, token = leases.get(f"user:{key}")
        if value is not None:
            return value.decode()
        value = env.db.get(key)
        if token is not None:
            leases.set(f"user:{key}", value, token, ttl=300)
        return value

    def write(key, value):
        env.db.put(key, value)
        leases.delete(f"user:{key}")

    return Adapter(read=read, write=write)


def pipelined_from_url(env):
    """A client the adapter makes itself from the URL, filling in a MULTI/EXEC pipeline, decoding."""
    r = redis.asyncio.from_url(env.redis_url, decode_responses=True)

    async def read(key):
        cached = await r.get(f"user:{key}")
        if cached is not None:
            return cached
        value = await env.async_db.get(key)
        if value is not None:
            async with r.pipeline(transaction=True) as pipe:
                pipe.set(f"user:{key}", value)
                pipe.expire(f"user:{key}", 300)
                await pipe.execute()
        return value

    async def write(key, value):
        await env.async_db.put(key, value)
        await r.unlink(f"user:{key}")

    return Adapter(read=read, write=write)


def versioned_watch(env):
    """Fills under WATCH of a version key the write bumps: a fill that raced a write is refused."""
    r = env.async_redis

    async def read(key):
        raw = await r.get(f"user:{key}")
        if raw is not None:
            return raw.decode()
        async with r.pipeline() as pipe:
            await pipe.watch(f"ver:{key}")
            value = await env.async_db.get(key)
            if value is not None:
                pipe.multi()
                pipe.set(f"user:{key}", value, ex=300)
                with contextlib.suppress(redis.WatchError):  # a write came in between: serve it uncached
                    await pipe.execute()
        return value

    async def write(key, value):
        await env.async_db.put(key, value)
        async with r.pipeline(transaction=True) as pipe:
            pipe.incr(f"ver:{key}")
            pipe.delete(f"user:{key}")
            await pipe.execute()

    return Adapter(read=read, write=write)


@pytest.mark.parametrize(
    ("sync", "async_"),
    [(textbook_sync, textbook_async), (leased_sync, leased_async)],
    ids=["textbook", "leased"],
)
@pytest.mark.parametrize("concurrency", [False, True], ids=["sequential", "concurrent"])
def test_a_redis_asyncio_adapter_gets_the_runs_of_its_redis_py_twin(sync, async_, concurrency):
    plain = check(sync, "cache-aside", seed=0, concurrency=concurrency, max_examples=60)
    coroutine = check(async_, "cache-aside", seed=0, concurrency=concurrency, max_examples=60)
    assert verdict(coroutine) == verdict(plain), coroutine.report()
    assert (coroutine.examples, coroutine.operations) == (plain.examples, plain.operations)
    assert coroutine.replay == plain.replay
    if coroutine.finding is not None:
        assert "SET user:k1 k1.v0 EX 300" in coroutine.report()  # the asyncio client's command, as sent


def test_the_stale_set_race_is_found_through_a_client_made_from_the_url():
    result = check(pipelined_from_url, "cache-aside", seed=0)
    assert verdict(result) == "coherent-at-rest", result.report()
    assert "MULTI/EXEC" in result.report()
    again = check(pipelined_from_url, "cache-aside", replay=result.replay)
    assert verdict(again) == "coherent-at-rest"


def test_a_watched_fill_that_a_write_invalidates_is_refused_and_passes():
    result = check(versioned_watch, "cache-aside", seed=0, max_examples=150)
    assert result.passed, result.report()


def test_a_lease_proof_over_redis_asyncio_matches_the_threaded_one():
    plain = cachepact.prove(leased_sync, "cache-aside", readers=1, writers=1)
    coroutine = cachepact.prove(leased_async, "cache-aside", readers=1, writers=1)
    assert plain.outcome.holds and coroutine.outcome.holds
    assert coroutine.schedules == plain.schedules


def test_on_a_real_server_the_asyncio_clients_commands_are_judged_and_cleaned_up(redis_server_url):
    from test_refusals import empty_db

    url = empty_db(redis_server_url)
    result = check(pipelined_from_url, "cache-aside", seed=0, redis=url)
    assert verdict(result) == "coherent-at-rest", result.report()
    assert redis.Redis.from_url(url).dbsize() == 0  # the asyncio client's keys were the run's, removed
    leased = check(leased_async, "cache-aside", seed=0, redis=url, max_examples=40)
    assert leased.passed, leased.report()
    assert redis.Redis.from_url(url).dbsize() == 0


def test_outside_a_check_redis_asyncio_is_itself():
    import fakeredis

    from cachepact.conformance.runtime.session import lingering

    check(textbook_async, "cache-aside", seed=0, max_examples=5)
    if not lingering():
        assert not hasattr(redis.asyncio.client.Redis.execute_command, "_cachepact_original")
        assert not hasattr(redis.asyncio.client.Pipeline.execute, "_cachepact_original")

    async def plain():
        client = fakeredis.FakeAsyncRedis()
        await client.set("x", "1")
        async with client.pipeline() as pipe:
            pipe.get("x")
            return await pipe.execute()

    assert asyncio.run(plain()) == [b"1"]


# -- AsyncLeases ----------------------------------------------------------------------------------------


def test_async_leases_grant_fill_and_void_as_leases_do():
    import fakeredis

    async def run():
        leases = AsyncLeases(fakeredis.FakeAsyncRedis(), tokens=iter(["a", "b", "c"]).__next__)
        assert await leases.get("k") == (None, "a")  # a miss: the lease is ours
        assert await leases.get("k") == (None, None)  # another reader: wait
        await leases.delete("k")  # a write voids the lease
        assert await leases.set("k", "stale", "a", ttl=300) is False
        value, token = await leases.get("k")
        assert (value, token) == (None, "b")  # the spare token "b", then
        assert await leases.set("k", "fresh", token, ttl=300) is True
        assert await leases.get("k") == (b"fresh", None)
        assert await leases.set("k", "x", None) is False  # no lease held: nothing sent

    asyncio.run(run())


def test_async_leases_refuse_a_bad_ttl_in_one_line():
    import fakeredis

    with pytest.raises(cachepact.InvalidArgument, match="lease_ttl"):
        AsyncLeases(fakeredis.FakeAsyncRedis(), lease_ttl=0)


# -- asyncio primitives shared between operations ---------------------------------------------------------


def _locked(primitive):
    """Readers and writers of a key hold one asyncio primitive made in make: within one process the
    stale-set race cannot happen."""

    def make(env):
        guard = primitive()

        async def read(key):
            async with guard:
                cached = await env.async_cache.get(key)
                if cached is not None:
                    return cached
                value = await env.async_db.get(key)
                if value is not None:
                    await env.async_cache.set(key, value)
                return value

        async def write(key, value):
            async with guard:
                await env.async_db.put(key, value)
                await env.async_cache.delete(key)

        return Adapter(read=read, write=write)

    return make


@pytest.mark.parametrize("primitive", [asyncio.Lock, asyncio.Semaphore], ids=["Lock", "Semaphore"])
def test_an_asyncio_lock_made_in_make_serves_every_operation(primitive):
    # Before: a false timeout (each operation has a loop of its own, and asyncio bound the lock to
    # the first).
    result = check(_locked(primitive), "cache-aside", seed=0, instances=1, max_examples=120)
    assert result.passed, result.report()
    proof = cachepact.prove(_locked(primitive), "cache-aside", readers=2, writers=1, instances=1)
    assert proof.outcome.holds
    # Waits happened: a schedule where the writer waited for a reader's lock exists.
    assert proof.schedules > 3


def test_an_event_another_operation_sets_ends_the_wait():
    """A write's refresher signals readers through an asyncio.Event made in make."""

    def make(env):
        filled = asyncio.Event()

        async def read(key):
            if key == "k2":
                await filled.wait()  # k2's readers wait for a k1 read to have filled
            value = await env.async_db.get(key)
            if key == "k1":
                filled.set()
            return value

        async def write(key, value):
            await env.async_db.put(key, value)

        return Adapter(read=read, write=write)

    result = check(make, "cache-aside", replay="con/|r:k2,r:k1/0000")
    assert verdict(result) not in ("timeout", "crash"), result.report()


def test_a_lock_nobody_releases_is_a_timeout_named_at_once():
    def make(env):
        lock = asyncio.Lock()

        async def read(key):
            await lock.acquire()  # never released
            value = await env.async_db.get(key)
            await env.async_cache.set(key, value)
            return value

        async def write(key, value):
            await env.async_db.put(key, value)

        return Adapter(read=read, write=write)

    started = time.perf_counter()
    result = check(make, "cache-aside", replay="con/|r:k1,r:k1/0000", instances=1)
    assert result.finding.invariant == "timeout", result.report()
    assert "asyncio future nothing completes" in result.finding.message
    assert time.perf_counter() - started < 4


def test_the_sync_twin_with_a_threading_lock_agrees():
    def make(env):
        guard = threading.Lock()

        def read(key):
            with guard:
                cached = env.cache.get(key)
                if cached is not None:
                    return cached
                value = env.db.get(key)
                if value is not None:
                    env.cache.set(key, value)
                return value

        def write(key, value):
            with guard:
                env.db.put(key, value)
                env.cache.delete(key)

        return Adapter(read=read, write=write)

    plain = check(make, "cache-aside", seed=0, instances=1, max_examples=120)
    coroutine = check(_locked(asyncio.Lock), "cache-aside", seed=0, instances=1, max_examples=120)
    assert plain.passed and coroutine.passed


# -- Ctrl-C ------------------------------------------------------------------------------------------

_SLOW_ASYNC = """
import asyncio, pathlib, cachepact
from cachepact.leases import AsyncLeases

def make(env):
    pathlib.Path(__file__).with_name("started").touch()  # the test presses Ctrl-C once this exists
    leases = AsyncLeases(env.async_redis)

    async def read(key):
        value, token = await leases.get(f"user:{key}")
        if value is not None:
            return value.decode()
        value = await env.async_db.get(key)
        if token is not None:
            await leases.set(f"user:{key}", value, token, ttl=300)
        return value

    async def write(key, value):
        await env.async_db.put(key, value)
        await leases.delete(f"user:{key}")
        asyncio.create_task(asyncio.sleep(0.5))  # a task left running: the write's work

    return cachepact.Adapter(read=read, write=write)
"""


def test_ctrl_c_during_an_async_check_ends_quietly_and_leaves_no_key(tmp_path, redis_server_url):
    import signal
    import subprocess
    import sys

    from test_refusals import empty_db

    url = empty_db(redis_server_url)
    (tmp_path / "slow_async.py").write_text(_SLOW_ASYNC)
    args = ["check", "slow_async.py:make", "--pattern", "cache-aside", "--max-examples", "100000", "--redis", url]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachepact", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling another process's progress: no event to wait on
    time.sleep(1.0)  # into the run proper
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert out == "" and err.count("\n") == 1 and err.startswith("cachepact: interrupted after "), err
    assert "Traceback" not in err and "Task was destroyed" not in err and "never retrieved" not in err
    assert redis.Redis.from_url(url).dbsize() == 0  # the asyncio client's keys were the run's, removed


# -- a task one operation made, another awaits ---------------------------------------------------------


def _coalescing(wrap):
    """Single-flight: the first reader's load is a task in a map made in make; readers that miss
    meanwhile await that task (through ``wrap``: plain, ``shield``, ``wait_for``, ``gather``)."""

    def make(env):
        inflight = {}

        async def load(key):
            value = await env.async_db.get(key)
            if value is not None:
                await env.async_cache.set(key, value)
            return value

        async def read(key):
            value = await env.async_cache.get(key)
            if value is not None:
                return value
            task = inflight.get(key)
            if task is None:
                task = inflight[key] = asyncio.ensure_future(load(key))
                task.add_done_callback(lambda _: inflight.pop(key, None))
            return await wrap(task)

        async def write(key, value):
            await env.async_db.put(key, value)
            await env.async_cache.delete(key)

        return Adapter(read=read, write=write)

    return make


def _coalescing_threads(env):
    """The threaded twin: a concurrent.futures.Future per in-flight load, shared between threads."""
    from concurrent.futures import Future

    inflight = {}
    guard = threading.Lock()

    def read(key):
        value = env.cache.get(key)
        if value is not None:
            return value
        with guard:
            future = inflight.get(key)
            mine = future is None
            if mine:
                future = inflight[key] = Future()
        if not mine:
            return future.result()
        try:
            value = env.db.get(key)
            if value is not None:
                env.cache.set(key, value)
            future.set_result(value)
            return value
        finally:
            with guard:
                inflight.pop(key, None)

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return Adapter(read=read, write=write)


async def _gathered(task):
    (value,) = await asyncio.gather(task)
    return value


async def _timed(task):
    return await asyncio.wait_for(task, 5)


@pytest.mark.parametrize(
    "wrap",
    [lambda t: t, asyncio.shield, _gathered],
    ids=["await", "shield", "gather"],
)
def test_a_task_another_operation_made_can_be_awaited(wrap):
    # Before: the waiter raised "got Future attached to a different loop" (a false adapter-error),
    # and once that was lifted, each operation waited for the other's main task (a false timeout).
    # Then a read that returned what another read loaded was a false who-loads, threaded or not.
    plain = cachepact.prove(_coalescing_threads, "cache-aside", readers=2, writers=0, instances=1)
    coroutine = cachepact.prove(_coalescing(wrap), "cache-aside", readers=2, writers=0, instances=1)
    assert plain.outcome.holds, plain.report()
    assert coroutine.outcome.holds and coroutine.outcome.checks == plain.outcome.checks, coroutine.report()


def test_a_timeout_around_a_shared_load_cancels_it_for_every_request():
    """``wait_for(task, 5)`` cancels the task when the 5 s run out, and the task is every waiting
    request's load (the reason ``asyncio.shield`` exists): the request that made it raises
    CancelledError, the one that timed out TimeoutError. The kit lets a timed wait run out, as time
    may, and shows both."""
    proof = cachepact.prove(_coalescing(_timed), "cache-aside", readers=2, writers=0, instances=1)
    assert not proof.outcome.holds
    report = proof.report()
    assert "FAIL adapter-error" in report and "raised CancelledError" in report, report
    assert "read(k1) raised TimeoutError" in report, report


def test_a_read_that_joins_a_load_older_than_a_completed_write_is_caught():
    """Naive coalescing: the second reader began after the write completed, yet joined the first
    reader's load, which the write had superseded. Leases keep the cache right; the read is stale."""

    def make(env):
        inflight = {}

        async def load(key):
            value, token = await env.async_cache.lease_get(key)
            if value is not None:
                return value
            value = await env.async_db.get(key)
            if token is not None:
                await env.async_cache.lease_set(key, value, token)
            return value

        async def read(key):
            task = inflight.get(key)
            if task is None:
                task = inflight[key] = asyncio.ensure_future(load(key))
                task.add_done_callback(lambda _: inflight.pop(key, None))
            return await task

        async def write(key, value):
            await env.async_db.put(key, value)
            await env.async_cache.delete(key)

        return Adapter(read=read, write=write)

    proof = cachepact.prove(make, "cache-aside", readers=2, writers=1, instances=1)
    assert not proof.outcome.holds
    assert [name for name, status in proof.outcome.checks if status == "fail"] == ["fresh-read"], proof.report()
    assert "returned k1.v0, older than k1.v1 written before the read began" in proof.report()
    # The default check (two app instances) finds it too: the two reads must share a process, and
    # the small races are also tried with two requests of one process against a third elsewhere.
    result = check(make, "cache-aside", seed=0)
    assert verdict(result) == "fresh-read", result.report()


def test_an_asyncio_client_made_with_the_redis_options_is_recorded():
    """``redis.asyncio.Redis.from_url(env.redis_url, **env.redis_options)``: the options name the
    in-process server's synchronous connection class, which an asyncio pool could not connect with;
    during a check the client's commands go through its twin, so it never has to."""

    def make(env):
        r = redis.asyncio.Redis.from_url(env.redis_url, **env.redis_options)

        async def read(key):
            raw = await r.get(f"user:{key}")
            if raw is not None:
                return raw.decode()
            value = await env.async_db.get(key)
            if value is not None:
                await r.set(f"user:{key}", value, ex=300)
            return value

        async def write(key, value):
            await env.async_db.put(key, value)
            await r.delete(f"user:{key}")

        return Adapter(read=read, write=write)

    assert check(make, "cache-aside", seed=0, concurrency=False, max_examples=30).passed
    raced = check(make, "cache-aside", seed=0)
    assert verdict(raced) == "coherent-at-rest" and "SET user:k1 k1.v0 EX 300" in raced.report()


def test_a_task_an_operation_that_is_over_left_in_a_map_can_still_be_awaited():
    """The operation that made the task has ended and its loop is closed; a later request finds the
    task, done, in the map and gathers it (from a fresh-eyes review: "Event loop is closed")."""

    def make(env):
        done = {}

        async def load(key):
            value = await env.async_db.get(key)
            if value is not None:
                await env.async_cache.set(key, value)
            return value

        async def read(key):
            task = done.get(key)
            if task is None:
                task = done[key] = asyncio.ensure_future(load(key))  # kept, done or not: a memo of tasks
            (value,) = await asyncio.gather(task)
            return value

        async def write(key, value):
            await env.async_db.put(key, value)
            done.pop(key, None)
            await env.async_cache.delete(key)

        return Adapter(read=read, write=write)

    result = check(make, "cache-aside", replay="seq/r:k1,r:k1")
    assert "Event loop is closed" not in result.report()
    assert result.passed, result.report()


def test_asyncio_debug_mode_changes_nothing(monkeypatch):
    # -X dev or PYTHONASYNCIODEBUG made every wake-up from another operation's thread an error.
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")
    result = check(_locked(asyncio.Lock), "cache-aside", seed=0, instances=1, max_examples=30)
    assert result.passed, result.report()


def test_an_asyncio_client_on_another_database_of_the_run_server_is_refused_in_one_line():
    def make(env):
        r = redis.asyncio.from_url(env.redis_url.rsplit("/", 1)[0] + "/3")

        async def read(key):
            return await r.get(f"user:{key}")

        async def write(key, value):
            await env.async_db.put(key, value)

        return Adapter(read=read, write=write)

    with pytest.raises(cachepact.UsageError) as refused:
        check(make, "cache-aside", seed=0, max_examples=5)
    assert "logical database 3" in str(refused.value) and "\n" not in str(refused.value)
