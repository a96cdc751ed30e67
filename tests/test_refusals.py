"""What the kit refuses, it refuses before it touches anything: a Redis database that holds the
user's keys is refused before the run's mark is set, and a redis.asyncio command sent inside a check
(which the kit cannot record) is refused before it reaches the server.

The real-server tests use the machine's Redis (``redis_server_url``: skipped outside CI when it is
unreachable) and only logical databases that are empty when they start.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

import pytest
import redis
import redis.asyncio.client

import cachepact
from cachepact.adapters import redis_py
from cachepact.conformance.record.async_refusal import REFUSAL

# Commands that write (the probe ``EVAL "return 1" 0`` does not: it is told apart below).
WRITES = {"SET", "SETNX", "SETEX", "PSETEX", "DEL", "UNLINK", "SADD", "SREM", "EXPIRE", "PEXPIRE", "HSET", "RPUSH"}
WRITES |= {"LPUSH", "FLUSHDB", "FLUSHALL", "EVALSHA", "FCALL"}


def empty_db(url: str) -> str:
    from conftest import empty_redis_dbs

    return empty_redis_dbs(url)[0]


def commands_seen(url: str, action) -> list[list[str]]:
    """The commands the server at ``url`` received for its logical database while ``action`` ran,
    each as its words (MONITOR, on from before ``action`` starts until a marker after it ends)."""
    db = int(url.rsplit("/", 1)[1])
    marker = f"cachepact-test-{uuid.uuid4().hex}"
    seen = []
    with redis.Redis.from_url(url) as watcher, watcher.monitor() as monitor:
        try:
            action()
        finally:
            with redis.Redis.from_url(url) as r:
                r.echo(marker)
        while marker not in (command := monitor.next_command())["command"]:
            if command["db"] == db:
                seen.append(command["command"].replace('"', "").split())
    return seen


def writes(commands: list[list[str]]) -> list[list[str]]:
    return [c for c in commands if c[0].upper() in WRITES or (c[0].upper() == "EVAL" and c[1:3] != ["return", "1"])]


def test_a_non_empty_redis_database_is_refused_before_anything_is_written_to_it(redis_server_url):
    # Before: the run set its mark (cachepact:running) first, then found the user's key, removed the
    # mark and refused: the user's database was written to twice by a run that never ran.
    url = empty_db(redis_server_url)
    users = redis.Redis.from_url(url)
    users.set("someone's:key", "precious")
    try:

        def refused():
            with pytest.raises(cachepact.BackendError, match="holds 1 key, and the kit needs an empty one"):
                cachepact.check(redis_py.cache_aside, "cache-aside", redis=url)

        seen = commands_seen(url, refused)
        assert seen, "MONITOR saw nothing: the check never looked"
        assert writes(seen) == [], seen
        assert users.dbsize() == 1 and users.get("someone's:key") == b"precious"
    finally:
        users.delete("someone's:key")


def test_a_redis_database_another_run_holds_is_refused_without_a_write(redis_server_url):
    from cachepact.backends._redis import OWNER, RedisServer

    url = empty_db(redis_server_url)
    first = RedisServer(url)
    try:

        def refused():
            with pytest.raises(cachepact.BackendError, match="another cachepact run is using"):
                RedisServer(url)

        seen = commands_seen(url, refused)
        assert writes(seen) == [], seen  # before: a SET NX of the mark, refused by the server
        assert redis.Redis.from_url(url).exists(OWNER)  # the first run's mark, untouched
    finally:
        first.close()
    assert redis.Redis.from_url(url).dbsize() == 0


def test_an_empty_redis_database_is_claimed_and_left_empty(redis_server_url):
    url = empty_db(redis_server_url)
    result = cachepact.check(redis_py.cache_aside_leased, "cache-aside", redis=url, max_examples=5, seed=0)
    assert result.passed, result.report()
    assert redis.Redis.from_url(url).dbsize() == 0


# -- redis.asyncio: refused, not recorded -------------------------------------------------------------


def _async_client(env):
    """An asyncio client on the run's server: the in-process one (fakeredis's own asyncio client) or
    a real one (redis.asyncio, from the URL, as a library would make it)."""
    if env.redis_options.get("server") is not None:
        import fakeredis

        return fakeredis.FakeAsyncRedis(server=env.redis_options["server"])
    import redis.asyncio

    return redis.asyncio.Redis.from_url(env.redis_url)


def async_fill(swallow: bool = False):
    """cache-aside whose fill goes through redis.asyncio, as an async code base's helper does; with
    ``swallow``, one that catches the error and fills synchronously instead."""

    def make(env):
        sync = env.redis

        async def fill(key, value):
            client = _async_client(env)
            try:
                async with client.pipeline() as pipe:
                    pipe.set(f"user:{key}", value, ex=300)
                    await pipe.execute()
                await client.set(f"seen:{key}", 1)
            finally:
                await client.aclose()

        def read(key):
            raw = sync.get(f"user:{key}")
            if raw is not None:
                return raw.decode()
            value = env.db.get(key)
            if value is not None:
                try:
                    asyncio.run(fill(key, value))
                except Exception:
                    if not swallow:
                        raise
                    sync.set(f"user:{key}", value, ex=300)
            return value

        def write(key, value):
            env.db.put(key, value)
            sync.delete(f"user:{key}")

        return cachepact.Adapter(read=read, write=write)

    return make


@pytest.mark.parametrize("swallow", [False, True], ids=["raised", "swallowed"])
def test_a_redis_asyncio_command_in_a_check_is_refused_in_one_line_and_never_sent(swallow):
    # Before: on fakeredis, a TypeError or an unjudged fill; on a server, a false who-populates and
    # the asyncio client's key left behind.
    servers = []

    def make(env):
        servers.append(env.redis_options["server"])
        return async_fill(swallow)(env)

    with pytest.raises(cachepact.UsageError) as refused:
        cachepact.check(make, "cache-aside", seed=0, max_examples=20)
    assert str(refused.value) == REFUSAL and "\n" not in str(refused.value)
    import fakeredis

    left = fakeredis.FakeRedis(server=servers[-1])
    assert left.get("seen:k1") is None and left.keys("seen:*") == []  # nothing the asyncio client sent arrived
    # Outside a check, redis.asyncio is itself again (once no thread an earlier check left behind
    # still runs: until then the hooks stay, refusing only those threads' commands).
    from cachepact.conformance.runtime.session import lingering

    if not lingering():
        assert not hasattr(redis.asyncio.client.Redis.execute_command, "_cachepact_original")
        assert not hasattr(redis.asyncio.client.Pipeline.execute, "_cachepact_original")

    async def plain():
        client = fakeredis.FakeAsyncRedis()
        await client.set("x", "1")
        return await client.get("x")

    assert asyncio.run(plain()) == b"1"


def test_a_redis_asyncio_command_on_a_real_server_is_refused_and_leaves_no_key(redis_server_url):
    url = empty_db(redis_server_url)
    with pytest.raises(cachepact.UsageError) as refused:
        cachepact.check(async_fill(swallow=True), "cache-aside", seed=0, max_examples=20, redis=url)
    assert str(refused.value) == REFUSAL
    assert redis.Redis.from_url(url).dbsize() == 0  # before: the asyncio client's keys stayed there


def test_the_command_line_refuses_a_redis_asyncio_adapter_with_exit_2(tmp_path):
    (tmp_path / "aio.py").write_text(
        "import asyncio\n"
        "import cachepact\n"
        "import fakeredis\n"
        "def make(env):\n"
        "    async def fill(key, value):\n"
        "        client = fakeredis.FakeAsyncRedis(server=env.redis_options['server'])\n"
        "        await client.set(key, value)\n"
        "    def read(key):\n"
        "        value = env.db.get(key)\n"
        "        asyncio.run(fill(key, value or ''))\n"
        "        return value\n"
        "    return cachepact.Adapter(read=read, write=env.db.put)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "cachepact", "check", "aio.py:make", "--pattern", "cache-aside"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == f"cachepact: error: {REFUSAL}\n", done.stderr
