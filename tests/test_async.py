"""Coroutine adapters: ``async def`` reads and writes on the kit's own event loop, ``env.async_cache``
and ``env.async_db``, tasks attributed to who started them, time on the loop the kit's."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import cachepact
from cachepact import Adapter, check

# -- the same logic, written both ways ------------------------------------------------------------


def textbook_sync(env):
    def read(key):
        v = env.cache.get(key)
        if v is None:
            v = env.db.get(key)
            if v is not None:
                env.cache.set(key, v)
        return v

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return Adapter(read=read, write=write)


def textbook_async(env):
    async def read(key):
        v = await env.async_cache.get(key)
        if v is None:
            v = await env.async_db.get(key)
            if v is not None:
                await env.async_cache.set(key, v)
        return v

    async def write(key, value):
        await env.async_db.put(key, value)
        await env.async_cache.delete(key)

    return Adapter(read=read, write=write)


def polling_sync(env):
    """Told to wait (another holds the lease), it sleeps and looks again, then loads without filling."""

    def read(key):
        for _ in range(3):
            v, t = env.cache.lease_get(key)
            if v is not None:
                return v
            if t is not None:
                v = env.db.get(key)
                env.cache.lease_set(key, v, t)
                return v
            time.sleep(0.05)
        return env.db.get(key)

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return Adapter(read=read, write=write)


def polling_async(env):
    async def read(key):
        for _ in range(3):
            v, t = await env.async_cache.lease_get(key)
            if v is not None:
                return v
            if t is not None:
                v = await env.async_db.get(key)
                await env.async_cache.lease_set(key, v, t)
                return v
            await asyncio.sleep(0.05)
        return await env.async_db.get(key)

    async def write(key, value):
        await env.async_db.put(key, value)
        await env.async_cache.delete(key)

    return Adapter(read=read, write=write)


def deferred_delete_sync(env):
    """The write returns and deletes later, on a thread it started."""
    read = polling_sync(env).read

    def write(key, value):
        env.db.put(key, value)
        threading.Thread(target=env.cache.delete, args=(key,)).start()

    return Adapter(read=read, write=write)


def deferred_delete_async(env):
    """The write returns and deletes later, in a task it left running."""
    read = polling_async(env).read

    async def write(key, value):
        await env.async_db.put(key, value)
        asyncio.get_running_loop().create_task(env.async_cache.delete(key))

    return Adapter(read=read, write=write)


def verdict(result):
    return result.finding.invariant if result.finding else "pass"


@pytest.mark.parametrize(
    ("sync", "async_", "same_points"),
    [
        (textbook_sync, textbook_async, True),
        (polling_sync, polling_async, True),  # one asyncio.sleep is one wait, as one time.sleep is
        # A task runs on its operation's thread, a helper thread on its own: where the thread starts is
        # one more point to switch at, so the two explore different trees to the same verdict.
        (deferred_delete_sync, deferred_delete_async, False),
    ],
    ids=["textbook", "polling", "deferred-delete"],
)
@pytest.mark.parametrize("concurrency", [False, True], ids=["sequential", "concurrent"])
def test_an_async_adapter_gets_the_verdict_of_its_sync_twin(sync, async_, same_points, concurrency):
    plain = check(sync, "cache-aside", seed=0, concurrency=concurrency, max_examples=60)
    coroutine = check(async_, "cache-aside", seed=0, concurrency=concurrency, max_examples=60)
    assert verdict(coroutine) == verdict(plain), coroutine.report()
    if same_points:  # the same scheduling points: the very same runs, and replay strings
        assert (coroutine.examples, coroutine.operations) == (plain.examples, plain.operations)
        assert coroutine.replay == plain.replay
    if coroutine.finding is not None:  # and its replay line reruns it
        again = check(async_, "cache-aside", replay=coroutine.replay)
        assert verdict(again) == verdict(coroutine)


def test_the_textbook_race_and_a_deferred_delete_are_found():
    assert verdict(check(textbook_async, "cache-aside", seed=0)) == "coherent-at-rest"
    late = check(deferred_delete_async, "cache-aside", seed=0)
    assert verdict(late) == "fresh-read", late.report()
    # the table shows the write returning before its task deletes
    rows = [s.describe() for s in late.steps if s.op == "w1"]
    assert rows.index("write(k1, k1.v1) returned") < rows.index("cache.delete(k1)")


# -- who makes a call: tasks keep the identity of the code that started them ----------------------


class AsyncReadThrough:
    """A read-through library that loads in a task of its own (as one that batches loads does)."""

    def __init__(self, env):
        self.env = env

    async def get(self, key):
        v = await self.env.async_cache.get(key)
        if v is None:
            v = await asyncio.create_task(self.env.async_db.get(key))
            if v is not None:
                (_,) = await asyncio.gather(self.env.async_cache.add(key, v))
        return v


def read_through(env, *, declared: bool):
    library = AsyncReadThrough(env)

    async def write(key, value):
        await env.async_db.put(key, value)
        await env.async_cache.delete(key)

    return Adapter(read=library.get, write=write, cache_code=AsyncReadThrough if declared else ())


def test_a_task_the_cache_started_is_the_caches():
    result = check(lambda env: read_through(env, declared=True), "read-through", seed=0, concurrency=False)
    assert result.passed, result.report()
    assert result.status("who-loads") == "pass" and result.status("who-populates") == "pass"


def test_a_task_the_app_started_is_the_apps():
    result = check(lambda env: read_through(env, declared=False), "read-through", seed=0, concurrency=False)
    assert verdict(result) == "who-loads"


# -- time on the loop ----------------------------------------------------------------------------


def test_asyncio_sleep_and_timeouts_run_on_the_kits_clock():
    """An hour's sleep inside a read takes no real time: the loop's waits are the kit's."""

    def make(env):
        async def read(key):
            async with asyncio.timeout(7200):
                await asyncio.sleep(3600)
                return await env.async_db.get(key)

        async def write(key, value):
            await env.async_db.put(key, value)

        return Adapter(read=read, write=write)

    started = time.perf_counter()
    result = check(make, "cache-aside", replay="seq/r:k1,w:k1,r:k1")
    assert time.perf_counter() - started < 60  # an hour of sleeping, at most seconds of real time
    assert result.finding is not None and result.finding.invariant in ("who-populates", "who-loads")


# -- definition ------------------------------------------------------------------------------------


def test_an_async_generator_is_refused_naming_the_fix():
    async def read(key):
        yield None

    with pytest.raises(cachepact.DefinitionError, match="async generator function"):
        Adapter(read=read, write=lambda k, v: None)


def test_a_task_that_raises_after_the_write_returned_is_the_operations_error():
    def make(env):
        async def fail():
            raise RuntimeError("the background delete failed")

        async def read(key):
            return await env.async_db.get(key)

        async def write(key, value):
            await env.async_db.put(key, value)
            asyncio.get_running_loop().create_task(fail())

        return Adapter(read=read, write=write)

    result = check(make, "cache-aside", replay="seq/w:k1")
    assert verdict(result) == "adapter-error"
    assert "the background delete failed" in result.finding.message


# -- from a new user's trial ----------------------------------------------------------------------


def test_work_through_wait_for_and_task_groups_leaves_no_asyncio_noise(capfd):
    def make(env):
        async def read(key):
            v, t = await asyncio.wait_for(env.async_cache.lease_get(key), timeout=2)
            if v is None:
                v = await asyncio.wait_for(env.async_db.get(key), timeout=2)
                if t is not None:
                    await env.async_cache.lease_set(key, v, t)
            return v

        async def write(key, value):
            await env.async_db.put(key, value)
            async with asyncio.TaskGroup() as group:
                group.create_task(env.async_cache.delete(key))
                group.create_task(env.async_db.put(f"audit:{key}", value))

        return Adapter(read=read, write=write)

    result = check(make, "cache-aside", seed=0, max_examples=100)
    assert result.passed, result.report()
    err = capfd.readouterr().err
    assert "never retrieved" not in err and "destroyed" not in err and "Traceback" not in err


def test_an_event_nothing_sets_is_a_timeout_named_at_once():
    def make(env):
        async def read(key):
            await asyncio.Event().wait()

        async def write(key, value):
            await env.async_db.put(key, value)

        return Adapter(read=read, write=write)

    started = time.perf_counter()
    result = check(make, "cache-aside", replay="seq/r:k1")
    assert result.finding.invariant == "timeout"
    assert "waits for an asyncio future nothing completes" in result.finding.message
    assert time.perf_counter() - started < 4  # not the 5 s step timeout


def test_a_callback_the_write_scheduled_with_call_later_is_its_work():
    """A delete scheduled half a second after the write returned runs (on the kit's clock), and a
    read in between sees the old value."""

    def make(env):
        read = polling_async(env).read

        async def write(key, value):
            await env.async_db.put(key, value)
            asyncio.get_running_loop().call_later(0.5, env.cache.delete, key)

        return Adapter(read=read, write=write)

    result = check(make, "cache-aside", seed=0)
    assert verdict(result) == "fresh-read", result.report()
    assert verdict(check(make, "cache-aside", seed=0, concurrency=False)) == "pass"


def test_async_with_a_transaction_is_the_with_block():
    def make(env):
        read = polling_async(env).read

        async def write(key, value):
            async with env.async_db.transaction() as tx:
                await env.async_db.put(key, value)
                tx.on_commit(lambda: env.cache.delete(key))

        return Adapter(read=read, write=write)

    result = check(make, "cache-aside", seed=0, max_examples=60)
    assert result.passed, result.report()
    assert "commit" in result.reached


def test_an_app_threads_operations_share_one_loop_and_a_world_closes_its_loops():
    """As one process's requests share its loop: the reads of one app instance run on one loop (it is
    kept, not made anew per operation), and no loop outlives the check (each is closed with its
    thread when the world ends)."""
    worlds: list[list[tuple[str, asyncio.AbstractEventLoop]]] = []

    def make(env):
        adapter = textbook_async(env)
        loops: list[tuple[str, asyncio.AbstractEventLoop]] = []
        worlds.append(loops)

        async def read(key):
            loops.append(("read", asyncio.get_running_loop()))
            return await adapter.read(key)

        async def write(key, value):
            loops.append(("write", asyncio.get_running_loop()))
            await adapter.write(key, value)

        return Adapter(read=read, write=write)

    result = check(make, "cache-aside", replay="seq/r:k1,r:k2,w:k1,r:k1,w:k2", instances=1)
    assert result.passed, result.report()
    loops = worlds[-1]
    reads = {id(loop) for kind, loop in loops if kind == "read"}
    writes = {id(loop) for kind, loop in loops if kind == "write"}
    assert len(loops) == 5 and len(reads) == 1 and len(writes) == 1 and reads != writes
    assert all(loop.is_closed() for world in worlds for _, loop in world)


# -- from a second new user's trial: single-flight over leases, tasks as refreshes ----------------


def single_flight_async(env):
    """Request coalescing over leases: one read of a key loads, others in flight join its future
    (giving back a lease they were granted); the write evicts its process's in-flight load."""
    cache, db = env.async_cache, env.async_db
    inflight: dict = {}

    async def read(key):
        value, token = await cache.lease_get(key)
        if value is not None:
            return value
        fut = inflight.get(key)
        if fut is not None:
            if token is not None:
                await cache.lease_set(key, None, token)  # gives the lease back: no fill
            return await fut
        fut = inflight[key] = asyncio.get_running_loop().create_future()
        try:
            value = await db.get(key)
            if token is not None:
                await cache.lease_set(key, value, token)
            fut.set_result(value)
            return value
        except BaseException as e:  # the kit's unwinding of a cut schedule passes through here too
            fut.set_exception(e)
            raise
        finally:
            if inflight.get(key) is fut:
                del inflight[key]

    async def write(key, value):
        await db.put(key, value)
        await cache.delete(key)
        inflight.pop(key, None)

    return Adapter(read=read, write=write)


def single_flight_sync(env):
    import concurrent.futures

    cache, db = env.cache, env.db
    inflight: dict = {}
    mutex = threading.Lock()

    def read(key):
        value, token = cache.lease_get(key)
        if value is not None:
            return value
        with mutex:
            fut = inflight.get(key)
            leader = fut is None
            if leader:
                fut = inflight[key] = concurrent.futures.Future()
        if not leader:
            if token is not None:
                cache.lease_set(key, None, token)
            return fut.result()
        try:
            value = db.get(key)
            if token is not None:
                cache.lease_set(key, value, token)
            fut.set_result(value)
            return value
        except BaseException as e:
            fut.set_exception(e)
            raise
        finally:
            with mutex:
                if inflight.get(key) is fut:
                    del inflight[key]

    def write(key, value):
        db.put(key, value)
        cache.delete(key)
        with mutex:
            inflight.pop(key, None)

    return Adapter(read=read, write=write)


@pytest.mark.parametrize(
    ("make", "waits_then_joins", "gives_back"),
    [
        (single_flight_sync, "con/|r:k1,r:k1/000111", "con/|r:k1,r:k1,w:k1/000002211110"),
        (single_flight_async, "con/|r:k1,r:k1,w:k1/00101", None),  # an asyncio.Lock-free twin: other points
    ],
    ids=["threads", "asyncio"],
)
def test_a_read_told_to_wait_may_join_a_load_and_giving_a_lease_back_is_no_fill(make, waits_then_joins, gives_back):
    """Two false alarms: a read whose lease_get said wait and that joined another read's load was
    who-loads (the model wanted it to look again), and lease_set(key, None, token), the lease given
    back, was a fill before loading (who-populates). Every schedule of two reads and a write holds."""
    for replay in filter(None, (waits_then_joins, gives_back)):
        result = check(make, "cache-aside", instances=1, replay=replay)
        assert result.passed and "joined-load" in result.reached, result.report()
    proof = cachepact.prove(make, "cache-aside", readers=2, writers=1)
    assert proof.holds, proof.report()


def test_what_an_adapter_raises_while_the_kit_unwinds_a_cut_schedule_is_no_finding(caplog):
    """The kit cuts redundant schedules short by unwinding their operations; the single-flight read
    passes that on to its future (``set_exception``), whose waiter was cancelled by then, so the read
    raised InvalidStateError (a false adapter-error) and asyncio logged 'exception was never
    retrieved' for the kit's own signal."""
    result = check(single_flight_async, "cache-aside", instances=1, seed=3)
    assert result.passed, result.report()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def refresh_task(env, *, threads: bool):
    """Refresh-ahead: a hit on an entry over 10 s old starts a refresh (a task, or its twin, a
    thread) that stores what it loads unconditionally; misses fill through a lease."""

    class Refresher:
        def __init__(self):
            self.tasks: set = set()

        def _hit(self, key, raw):
            entry = raw.split("@")
            if time.time() - float(entry[1]) > 10:
                if threads:
                    threading.Thread(target=self.refresh_sync, args=(key,)).start()
                else:
                    task = asyncio.get_running_loop().create_task(self.refresh(key))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
            return entry[0]

        async def read(self, key):
            raw, token = await env.async_cache.lease_get(key)
            if raw is not None:
                return self._hit(key, raw)
            value = await env.async_db.get(key)
            if token is not None and value is not None:
                await env.async_cache.lease_set(key, f"{value}@{time.time()}", token, ttl=300)
            return value

        async def refresh(self, key):
            value = await env.async_db.get(key)
            await env.async_cache.set(key, f"{value}@{time.time()}", ttl=300)

        def refresh_sync(self, key):
            value = env.db.get(key)
            env.cache.set(key, f"{value}@{time.time()}", ttl=300)

    refresher = Refresher()

    async def write(key, value):
        await env.async_db.put(key, value)
        await env.async_cache.delete(key)

    return Adapter(
        read=refresher.read,
        write=write,
        cache_code=(Refresher,),
        decode=lambda raw: raw.split("@")[0],
    )


@pytest.mark.parametrize("threads", [True, False], ids=["thread", "create_task"])
def test_a_task_a_read_leaves_running_in_refresh_ahead_is_a_refresh_as_a_thread_is(threads):
    """A refresh started with asyncio.create_task was part of its read: 'refresh' never reached
    alone, and the race judged as the read's fill (coherent-at-rest, with a hint about leases)
    where its threaded twin's is no-stale-refresh."""

    def make(env):
        return refresh_task(env, threads=threads)

    alone = check(make, "refresh-ahead", concurrency=False, seed=0)
    assert alone.passed and "refresh" in alone.reached, alone.report()
    raced = check(make, "refresh-ahead", seed=0)
    assert verdict(raced) == "no-stale-refresh", raced.report()
    assert "the refresh rf1 loaded" in raced.report()


def test_an_async_factory_is_refused_in_one_line_naming_the_fix():
    import warnings

    async def make(env):
        return textbook_async(env)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a coroutine never awaited would warn: it is closed instead
        with pytest.raises(cachepact.DefinitionError, match="make the factory a plain def"):
            check(make, "cache-aside")


def gives_lease_back(env, *, before_load: bool):
    """Gives its lease back (``lease_set(key, None, token)``) and never fills: a cache that never caches."""

    def read(key):
        value, token = env.cache.lease_get(key)
        if value is not None:
            return value
        if before_load and token is not None:
            env.cache.lease_set(key, None, token)
        value = env.db.get(key)
        if not before_load and token is not None:
            env.cache.lease_set(key, None, token)
        return value

    return Adapter(read=read, write=textbook_sync(env).write)


@pytest.mark.parametrize("before_load", [True, False], ids=["before-load", "after-load"])
def test_a_lease_given_back_by_a_read_that_joins_nothing_leaves_its_fill_owed(before_load):
    """Giving a lease back is no fill, and excuses none either: only a read that joins another's load
    may return without filling (a review found the release rule passing a cache that never fills)."""

    def make(env):
        return gives_lease_back(env, before_load=before_load)

    result = check(make, "cache-aside", concurrency=False, seed=0, max_examples=50)
    assert verdict(result) == "who-populates", result.report()
    assert not cachepact.prove(make, "cache-aside", readers=2, writers=1).holds
