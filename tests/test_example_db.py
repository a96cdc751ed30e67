"""A shared example database (``example_db``, Hypothesis' ``RedisExampleDatabase``): a failure one
CI runner shrank is tried first by the next, whatever its seed and budget."""

from __future__ import annotations

import redis

import cachepact
from cachepact import Adapter
from cachepact.adapters.reference import cache_aside


def third_write_forgets(env):
    """Cache-aside whose write stops invalidating from its third write of a key on: a sequence of a
    few writes and a read finds it; a budget of one example does not."""
    writes: dict = {}

    def write(key, value):
        env.db.put(key, value)
        writes[key] = writes.get(key, 0) + 1
        if writes[key] < 3:
            env.cache.delete(key)

    return Adapter(read=cache_aside(env).read, write=write)


def never_invalidates(env):
    return Adapter(read=cache_aside(env).read, write=env.db.put)


def test_a_failure_one_run_shrank_is_tried_first_by_the_next(redis_server_url):
    from conftest import empty_redis_dbs

    url = empty_redis_dbs(redis_server_url)[0]
    options = {"pattern": "cache-aside", "concurrency": False}
    assert cachepact.check(third_write_forgets, **options, max_examples=1, seed=5).passed  # too small to find it

    found = cachepact.check(third_write_forgets, **options, max_examples=300, seed=1, example_db=url)
    assert not found.passed, found.report()
    with redis.Redis.from_url(url) as r:
        keys = r.keys("*")
        assert keys and all(k.startswith(b"cachepact-example:") for k in keys)

    # Another runner, another seed, a budget of one example: the saved failure comes first.
    again = cachepact.check(third_write_forgets, **options, max_examples=1, seed=5, example_db=url)
    assert not again.passed and again.finding.invariant == found.finding.invariant, again.report()
    assert again.replay == found.replay

    # Another adapter's checks do not try it (the key names the adapter and the pattern): one that
    # never invalidates would fail the saved sequence, and passes a budget of one example.
    other = cachepact.check(never_invalidates, **options, max_examples=1, seed=5, example_db=url)
    assert other.passed, other.report()
    with redis.Redis.from_url(url) as r:
        r.flushdb()


def test_an_example_db_the_kit_cannot_use_is_refused_in_one_line(redis_server_url):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        cachepact.check(third_write_forgets, example_db=f"redis://127.0.0.1:{port}/0", max_examples=1)
    except cachepact.BackendError as e:
        assert e.parameter == "example_db" and "cannot reach it" in str(e) and "\n" not in str(e)
    else:
        raise AssertionError("an unreachable example database was accepted")
    for bad in ("memcached://127.0.0.1/0", 123):
        try:
            cachepact.check(third_write_forgets, example_db=bad, max_examples=1)
        except cachepact.BackendError as e:
            assert "use redis://host:port/N" in str(e)
        else:
            raise AssertionError(f"{bad!r} was accepted")


def test_the_runs_own_redis_database_is_no_example_database(redis_server_url):
    from conftest import empty_redis_dbs

    url = empty_redis_dbs(redis_server_url)[0]
    spelled_otherwise = url.replace("127.0.0.1", "localhost")
    try:
        cachepact.check(third_write_forgets, redis=url, example_db=spelled_otherwise, max_examples=1)
    except cachepact.InvalidArgument as e:
        assert "must stay empty" in str(e)
    else:
        raise AssertionError("the run's own database was taken for examples")
