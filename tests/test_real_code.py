"""Code shaped the way teams write it: decorators, helper threads, hangs, several app instances.

Each adapter here is written the way an application would be, against the public contract only,
and each test states the verdict a user should expect.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import cachepact
from cachepact.adapters.reference import cache_aside_leased, under_one_lock

# -- attribution: decorators --------------------------------------------------------------------


def cached(env):
    """A caching decorator factory, as a small in-house library would write one (read-through)."""

    def decorator(load):
        @functools.wraps(load)
        def wrapper(key):
            value = env.cache.get(key)
            if value is None:
                value = load(key)
                if value is not None:
                    env.cache.set(key, value)
            return value

        wrapper.invalidate = lambda key: env.cache.delete(key)
        return wrapper

    return decorator


def _decorated(env, cache_code):
    @cached(env)
    def load_user(key):
        return env.db.get(key)

    def write(key, value):
        env.db.put(key, value)
        load_user.invalidate(key)

    return cachepact.Adapter(read=load_user, write=write, cache_code=cache_code(load_user))


def naming_the_wrapper(env):
    return _decorated(env, lambda wrapped: (wrapped,))


def naming_the_factory(env):
    return _decorated(env, lambda wrapped: (cached,))


@pytest.mark.parametrize("make", [naming_the_wrapper, naming_the_factory])
def test_a_decorated_loader_named_in_cache_code_is_read_through(make):
    # The wrapper's own cache calls and the load it makes are the Cache's, whether cache_code names
    # the decorated function (the wrapper, not the function functools.wraps points at) or the
    # decorator factory (every wrapper it makes).
    result = cachepact.check(make, "read-through", seed=0, concurrency=False)
    assert result.passed, result.report()
    assert result.warnings == ()


def unrelated_helper(key):
    return key


def naming_what_never_runs(env):
    adapter = cache_aside_leased(env)
    return cachepact.Adapter(read=adapter.read, write=adapter.write, cache_code=(unrelated_helper,))


def test_a_cache_code_entry_that_attributes_nothing_is_a_warning_naming_it():
    result = cachepact.check(naming_what_never_runs, "cache-aside", seed=0, concurrency=False)
    assert result.passed
    [warning] = result.warnings
    assert warning.startswith(f"cache_code entry {__name__}.unrelated_helper was never on the call stack")
    assert f"Warning: {warning}" in result.report()


# The cache layer of a small service: this module is the cache code; writes live elsewhere.
CACHE_LAYER = """
import cachepact
from {writes} import save


def make(env):
    return cachepact.Adapter(read=lambda key: through(env, key), write=save(env), cache_code=("{name}",))


def through(env, key):
    value = env.cache.get(key)
    if value is None:
        value = env.db.get(key)
        if value is not None:
            env.cache.set(key, value)
    return value
"""
WRITES = """
def save(env):
    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return write
"""


def test_a_file_target_is_imported_under_its_own_name_so_module_names_in_cache_code_match(tmp_path, capsys):
    from cachepact.cli import main

    (tmp_path / "loose_cache.py").write_text(CACHE_LAYER.format(name="loose_cache", writes="loose_writes"))
    (tmp_path / "loose_writes.py").write_text(WRITES)
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cache_layer.py").write_text(CACHE_LAYER.format(name="shop.cache_layer", writes="shop.writes"))
    (package / "writes.py").write_text(WRITES)
    for target in (f"{tmp_path}/loose_cache.py:make", f"{package}/cache_layer.py:make"):
        code = main(["check", target, "--pattern", "read-through", "--no-concurrency", "--max-examples", "20"])
        out = capsys.readouterr().out
        # Before: imported as cachepact_target_<hash>, the name matched nothing: who-loads.
        assert code == 0, out
        assert "Warning" not in out


def test_a_file_that_would_shadow_a_loaded_module_is_a_definition_error(tmp_path, capsys):
    from cachepact.cli import main

    (tmp_path / "json.py").write_text("def make(env):\n    pass\n")
    assert main(["check", f"{tmp_path}/json.py:make", "--pattern", "cache-aside"]) == 2
    err = capsys.readouterr().err
    assert "would be imported as module 'json', but 'json' is already" in err and err.count("\n") == 1


# -- helper threads -----------------------------------------------------------------------------


def pooled_loader(env):
    """Read-through whose library loads on a worker pool (a timeout around the DB, say)."""
    pool = ThreadPoolExecutor(max_workers=2)

    class Loader:
        def get(self, key):
            value = env.cache.get(key)
            if value is None:
                value = pool.submit(env.db.get, key).result(timeout=30)
                if value is not None:
                    env.cache.set(key, value)
            return value

    loader = Loader()

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return cachepact.Adapter(read=loader.get, write=write, cache_code=Loader)


def test_a_load_run_on_an_executor_belongs_to_the_read_that_submitted_it():
    result = cachepact.check(pooled_loader, "read-through", seed=0, concurrency=False)
    assert result.passed, result.report()  # before: adapter-error, a thread the kit did not start


def async_aside(hop):
    """Cache-aside as textbooks write it, served from sync code by ``asyncio.run``; every DB and
    cache call hops to a worker thread the way ``hop`` makes it awaitable."""

    def make(env):
        cache_get, cache_set, db_get = (hop(f) for f in (env.cache.get, env.cache.set, env.db.get))

        async def aget(key):
            value = await cache_get(key)
            if value is None:
                value = await db_get(key)
                if value is not None:
                    await cache_set(key, value)
            return value

        def write(key, value):
            env.db.put(key, value)
            env.cache.delete(key)

        return cachepact.Adapter(read=lambda key: asyncio.run(aget(key)), write=write)

    return make


def in_executor(fn):
    """``loop.run_in_executor`` on the loop's default executor."""
    return lambda *args: asyncio.get_running_loop().run_in_executor(None, fn, *args)


def sync_to_async(fn):
    """asgiref's, which is what Django's async cache API (``cache.aget``) is."""
    from asgiref.sync import sync_to_async as hop

    return hop(fn)


@pytest.mark.parametrize("hop", [in_executor, sync_to_async])
def test_work_an_event_loop_hands_to_a_thread_is_the_operations(hop, caplog):
    make = async_aside(hop)
    # Before: adapter-error (a thread the kit did not start called env), or a hang.
    alone = cachepact.check(make, "cache-aside", seed=0, concurrency=False)
    assert alone.passed, alone.report()
    assert {"miss", "hit", "load", "fill"} <= set(alone.reached)
    # Under interleaving: the textbook stale-set race, found through the event loop like any other.
    result = cachepact.check(make, "cache-aside", seed=0, max_examples=30)
    assert result.finding is not None and result.finding.invariant == "coherent-at-rest", result.report()
    assert result.uncontrolled == 0  # the loop never blocked where the kit cannot see
    # A schedule cut short unwinds through the event loop without asyncio logging it as an error.
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


def delayed_double_delete(env):
    """The "delayed double delete" idiom: delete, then delete again a moment later from a Timer."""
    adapter = cache_aside_leased(env)

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)
        threading.Timer(0.5, env.cache.delete, args=(key,)).start()

    return cachepact.Adapter(read=adapter.read, write=write)


def test_a_timers_second_delete_is_credited_to_the_write_that_started_it():
    result = cachepact.check(delayed_double_delete, "cache-aside", seed=0, replay="seq/w:k1,r:k1,w:k2")
    assert result.passed, result.report()
    from cachepact.conformance.drive.world import Setup, rerun_sequence
    from cachepact.model import CACHE_ASIDE

    run = rerun_sequence(Setup(make=delayed_double_delete, pattern=CACHE_ASIDE), [("w", "k1", 0), ("r", "k1", 0)])
    deletes = [s.op for s in run.steps if s.describe() == "cache.delete(k1)"]
    assert deletes == ["w1", "w1"]  # before: the second was credited to whatever ran when it fired


def background_fill(env):
    """Fill the cache from a thread so the request returns sooner (a common latency trick)."""

    def read(key):
        value = env.cache.get(key)
        if value is None:
            value = env.db.get(key)
            if value is not None:
                threading.Thread(target=env.cache.set, args=(key, value), daemon=True).start()
        return value

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return cachepact.Adapter(read=read, write=write)


def test_an_operation_with_background_work_is_in_flight_until_it_ends():
    # Before: "the read r1 loaded k1.v0 but never filled the entry", the fill being one row below.
    alone = cachepact.check(background_fill, "cache-aside", seed=0, concurrency=False)
    assert alone.passed, alone.report()
    # Against a write, the late fill is the textbook race, culprit and all.
    raced = cachepact.check(background_fill, "cache-aside", seed=0)
    assert raced.finding.invariant == "coherent-at-rest"
    culprit = raced.steps[raced.finding.culprit]
    assert (culprit.op, culprit.describe()) == ("r1", "cache.set(k1, k1.v0)")


def joined_helper(env):
    """The write's delete runs on a thread the write starts and joins."""
    adapter = cache_aside_leased(env)

    def write(key, value):
        env.db.put(key, value)
        helper = threading.Thread(target=env.cache.delete, args=(key,))
        helper.start()
        helper.join()

    return cachepact.Adapter(read=adapter.read, write=write)


@pytest.mark.parametrize("make", [delayed_double_delete, joined_helper])
def test_threads_an_operation_starts_pass_the_default_check_with_every_wait_in_sight(make):
    # Before: "adapter-error: w1 raised RuntimeError: release unlocked lock" (Thread.start waited on
    # a kit Event, and a schedule cut short there broke the Condition), and a join was a blind wait.
    result = cachepact.check(make, "cache-aside", seed=0)
    assert result.passed, result.report()
    assert result.uncontrolled == 0
    assert "fill-during-write" in result.reached


def jumps_its_clock(env):
    """A read that computes for a while with the wall clock jumping under it (NTP, a suspended VM;
    here time-machine, as the kit's own clock moves do)."""
    import time_machine

    adapter = cache_aside_leased(env)

    def read(key):
        with time_machine.travel(time.time() + 600, tick=True):
            until = time.perf_counter() + 0.2
            while time.perf_counter() < until:
                pass  # work, not a wait: the kit sees no call for 0.2 s
        return adapter.read(key)

    return cachepact.Adapter(read=read, write=adapter.write)


def test_a_jump_of_the_clock_the_adapter_reads_does_not_count_toward_the_step_timeout():
    # Before: the scheduler timed steps on time.monotonic, which the virtual clock moves.
    result = cachepact.check(jumps_its_clock, "cache-aside", replay="seq/r:k1", step_timeout=1)
    assert result.passed, result.report()


# -- hangs end ----------------------------------------------------------------------------------

_NEVER = threading.Event()  # made at import: the kit cannot see it


def waits_on_an_event_of_its_own(env):
    never = threading.Event()  # made in make: the kit's own, so it knows nothing can set it

    def read(key):
        never.wait()
        return env.db.get(key)

    return cachepact.Adapter(read=read, write=env.db.put)


def waits_where_the_kit_cannot_see(env):
    def read(key):
        _NEVER.wait()
        return env.db.get(key)

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)

    return cachepact.Adapter(read=read, write=write)


def connects_forever(env):
    _NEVER.wait()  # a client connecting to a server that never answers, with no timeout of its own


def test_a_factory_that_never_returns_is_a_definition_error_within_the_step_timeout():
    started = time.monotonic()
    with pytest.raises(cachepact.DefinitionError) as e:
        cachepact.check(connects_forever, "cache-aside", step_timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert "connects_forever(env) did not return within 0.5 s (--step-timeout)" in str(e.value)


@pytest.mark.parametrize("concurrency", [True, False])
def test_an_operation_blocked_on_the_kits_own_event_is_a_timeout_at_once(concurrency):
    started = time.monotonic()
    result = cachepact.check(waits_on_an_event_of_its_own, "cache-aside", seed=0, concurrency=concurrency)
    assert result.finding.invariant == "timeout"
    assert result.finding.message.startswith("r1 would wait forever: r1 waits for the Event made at test_real_code.py:")
    assert result.finding.message.endswith(", never set")
    assert time.monotonic() - started < 5  # it knows; it does not wait a timeout out


@pytest.mark.parametrize("concurrency", [True, False])
def test_an_operation_blocked_out_of_sight_is_a_timeout_within_the_step_timeout(concurrency):
    started = time.monotonic()
    result = cachepact.check(
        waits_where_the_kit_cannot_see, "cache-aside", seed=0, concurrency=concurrency, step_timeout=1
    )
    # Called once, promptly: not waited out twice (Hypothesis' confirming rerun, a late first look).
    assert time.monotonic() - started < 1.9
    assert result.finding.invariant == "timeout"
    assert result.finding.message.startswith("r1 made no progress for 1 s (--step-timeout): r1 is stuck at ")
    assert "test_real_code.py:" in result.finding.message and "(in read)" in result.finding.message


# Module level: one lock for every instance, made before the check, where the kit cannot see it.
locked_at_import = under_one_lock(cache_aside_leased, threading.Lock())


def test_a_lock_made_at_import_is_counted_out_of_control_with_a_hint():
    result = cachepact.check(locked_at_import, "cache-aside", seed=0, max_examples=30)
    assert result.passed, result.report()
    assert result.uncontrolled > 0
    assert "Out of the kit's control: " in result.report()
    assert "make locks inside make(env)" in result.report()


# -- app instances ------------------------------------------------------------------------------


def process_l1(env):
    """A per-process L1 dict over a correct shared cache, invalidated only in its own process."""
    shared = cache_aside_leased(env)
    l1 = {}

    def read(key):
        if key not in l1:
            l1[key] = shared.read(key)
        return l1[key]

    def write(key, value):
        shared.write(key, value)
        l1.pop(key, None)

    return cachepact.Adapter(read=read, write=write)


def thread_local_memo(env):
    """A per-thread memo (request-scoped caches often are), cleared only on the writing thread."""
    shared = cache_aside_leased(env)
    memo = threading.local()

    def table():
        if not hasattr(memo, "values"):
            memo.values = {}
        return memo.values

    def read(key):
        if key not in table():
            table()[key] = shared.read(key)
        return table()[key]

    def write(key, value):
        shared.write(key, value)
        table().pop(key, None)

    return cachepact.Adapter(read=read, write=write)


def test_a_process_l1_is_caught_by_default_and_right_in_one_process_one_operation_at_a_time():
    result = cachepact.check(process_l1, "cache-aside", seed=0)
    assert result.finding is not None and result.finding.invariant == "fresh-read", result.report()
    assert sorted({app for _, app in result.placement}) == [0, 1]  # the writer runs on the other instance
    assert "@2" in result.replay
    text = result.report()
    assert "App instances: 2, sharing the DB and cache as processes do; --instances 1 checks one process." in text
    again = cachepact.check(process_l1, "cache-aside", replay=result.replay)
    assert again.finding == result.finding and again.steps == result.steps
    # In flight together, the local state has its own stale-set race, found with one instance too.
    alone = cachepact.check(process_l1, "cache-aside", seed=0, instances=1, concurrency=False)
    assert alone.passed, alone.report()


def test_a_thread_local_memo_is_caught_by_default():
    result = cachepact.check(thread_local_memo, "cache-aside", seed=0)
    assert result.finding is not None and result.finding.invariant == "fresh-read", result.report()
    again = cachepact.check(thread_local_memo, "cache-aside", replay=result.replay)
    assert again.finding == result.finding and again.steps == result.steps


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_thread_local_memo_fails_one_process_one_operation_at_a_time(seed):
    # A server's pool runs one process's consecutive requests on different threads: a memo its
    # write clears on the writing thread alone is stale on the others, with no concurrency at all.
    alone = cachepact.check(thread_local_memo, "cache-aside", seed=seed, instances=1, concurrency=False)
    assert alone.finding is not None and alone.finding.invariant == "fresh-read", alone.report()
    assert alone.placement and {app for _, app in alone.placement} == {0}
    again = cachepact.check(thread_local_memo, "cache-aside", replay=alone.replay, instances=1)
    assert again.finding == alone.finding and again.steps == alone.steps


def test_operations_one_at_a_time_run_reads_and_writes_on_two_threads_of_their_instance_every_run():
    threads: list[tuple[str, str, int]] = []  # (instance's label, r or w, thread ident), in operation order

    def recording(env):
        shared = cache_aside_leased(env)
        label = f"app{len(made)}"
        made.append(label)

        def read(key):
            threads.append((label, "r", threading.get_ident()))
            return shared.read(key)

        def write(key, value):
            threads.append((label, "w", threading.get_ident()))
            return shared.write(key, value)

        return cachepact.Adapter(read=read, write=write)

    def run() -> list[tuple[str, str, int]]:
        threads.clear()
        made.clear()
        result = cachepact.check(recording, "cache-aside", replay="seq/r:k1,w:k1,r:k1,r:k1,w:k1,r:k2@2,w:k2@2")
        assert result.passed, result.report()
        return threads[-7:]  # the replayed world's operations (the check builds the adapter once first)

    made: list[str] = []
    first = run()
    one = {(kind, ident) for label, kind, ident in first if label == first[0][0]}
    two = {(kind, ident) for label, kind, ident in first if label != first[0][0]}
    assert len(one) == 2 and len({ident for _, ident in one}) == 2  # one thread reads, another writes
    assert len(two) == 2 and not {i for _, i in one} & {i for _, i in two}  # the other instance's own
    # The same sequence lands on the same pattern of threads every time (idents are the OS's to reuse).
    second = run()
    shape = {ident: n for n, (_, _, ident) in reversed(list(enumerate(first)))}
    again = {ident: n for n, (_, _, ident) in reversed(list(enumerate(second)))}
    assert [shape[i] for _, _, i in first] == [again[i] for _, _, i in second]


def test_make_is_called_once_per_instance_over_one_db_and_cache():
    made = []

    def counting(env):
        made.append(env)
        return cache_aside_leased(env)

    cachepact.check(counting, "cache-aside", replay="seq/w:k1,r:k1@3", instances=3)
    assert len(made) >= 3
    last_run = made[-3:]
    assert len({id(e.db._backend) for e in last_run}) == 1 and len({id(e.cache._backend) for e in last_run}) == 1


# -- adapter errors point at the user's line ------------------------------------------------------


def raises_in_read(env):
    def read(key):
        raise ConnectionError("redis is down")

    return cachepact.Adapter(read=read, write=env.db.put)


def test_an_adapter_error_names_the_file_and_line_that_raised():
    result = cachepact.check(raises_in_read, "cache-aside", seed=0, concurrency=False)
    assert result.finding.invariant == "adapter-error"
    line = raises_in_read.__code__.co_firstlineno + 2
    assert result.finding.message.endswith(f"at test_real_code.py:{line} (in read)"), result.finding.message


def test_a_thread_waiting_for_a_cpu_is_not_taken_for_one_blocked_out_of_sight():
    """On a loaded machine a runnable thread may use no CPU for a few polls; only a thread the OS has
    asleep (a lock, I/O) is blocked, so strict runs on a busy CI machine are not failed by load."""
    import sys

    from cachepact.conformance.runtime.scheduler import _runnable

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc: Linux only (elsewhere CPU time alone decides)")
    assert _runnable(threading.get_native_id())  # this thread, running this line
    gate = threading.Event()
    sleeper = threading.Thread(target=gate.wait)
    sleeper.start()
    try:
        for _ in range(200):  # until it is asleep on the event
            if not _runnable(sleeper.native_id):
                break
            gate.wait(0.005)
        assert not _runnable(sleeper.native_id)
    finally:
        gate.set()
        sleeper.join()
    assert not _runnable(None)
