"""What the kit refuses, it refuses before it touches anything: a Redis database that holds the
user's keys is refused before the run's mark is set.

The real-server tests use the machine's Redis (``redis_server_url``: skipped outside CI when it is
unreachable) and only logical databases that are empty when they start.
"""

from __future__ import annotations

import uuid

import pytest
import redis

import cachepact
from cachepact.adapters import redis_py

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
