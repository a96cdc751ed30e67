"""Nothing of the user's is touched: other Redis databases and other tables, values included, survive
runs that pass, fail, are interrupted (Ctrl-C, SIGTERM) or killed; the run's own keys and table go."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis

from cachepact.backends._redis import OWNER

HERE = Path(__file__).parent

SLOW = """
import cachepact
from cachepact.adapters import redis_py


def make(env):
    inner = redis_py.cache_aside_leased(env)

    def read(key):
        value = inner.read(key)
        print("running", flush=True)  # the test interrupts once the check is under way
        return value

    return cachepact.Adapter(read=read, write=inner.write)
"""


def free_db(r_url: str, others: int = 2) -> tuple[str, list[int]]:
    """An empty logical database for the run, and ``others`` the test fills (a test that fills any
    skips when CACHEPACT_TEST_REDIS pins one database: it writes to more)."""
    from conftest import empty_redis_dbs

    run, *rest = empty_redis_dbs(r_url, 1 + others)
    return run, [int(url.rsplit("/", 1)[1]) for url in rest]


@pytest.fixture
def users_data(redis_server_url, postgres_server_url):
    """Keys in two other Redis databases (and one in the run's database's neighbour), a table in
    PostgreSQL: what a user has, to be found intact after every run."""
    run_url, others = free_db(redis_server_url)
    tag = uuid.uuid4().hex[:8]
    keys = {}
    for n in others:
        r = redis.Redis.from_url(f"{redis_server_url}/{n}")
        for k, v in {f"user:{tag}:1": "alice", "k1": f"someone else's k1 {tag}", "lease:k1": "not ours"}.items():
            r.set(k, v)
            keys[(n, k)] = v.encode()
        r.hset(f"profile:{tag}", mapping={"name": "bob"})
    table = f"users_{tag}"
    with psycopg.connect(postgres_server_url, autocommit=True) as pg:
        pg.execute(f"CREATE TABLE {table} (id int primary key, name text)")
        pg.execute(f"INSERT INTO {table} VALUES (1, 'alice'), (2, 'k1.v0')")
    yield run_url, keys, table, tag
    for n in others:
        r = redis.Redis.from_url(f"{redis_server_url}/{n}")
        r.delete(*[k for (m, k) in keys if m == n], f"profile:{tag}")
    with psycopg.connect(postgres_server_url, autocommit=True) as pg:
        pg.execute(f"DROP TABLE IF EXISTS {table}")


def intact(redis_server_url, postgres_server_url, run_url, keys, table, tag):
    for (n, k), v in keys.items():
        assert redis.Redis.from_url(f"{redis_server_url}/{n}").get(k) == v, (n, k)
    n = int(run_url.rsplit("/", 1)[1])
    others = {m for m, _ in keys}
    for m in others:
        assert redis.Redis.from_url(f"{redis_server_url}/{m}").hgetall(f"profile:{tag}") == {b"name": b"bob"}
    assert redis.Redis.from_url(f"{redis_server_url}/{n}").dbsize() == 0, "the run left keys behind"
    with psycopg.connect(postgres_server_url) as pg:
        assert pg.execute(f"SELECT id, name FROM {table} ORDER BY id").fetchall() == [(1, "alice"), (2, "k1.v0")]
        # A run's table is temporary: one left would be a permanent one (temporary ones are other
        # runs' still going, in tests running beside this one under pytest-xdist).
        left = pg.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'cachepact_run_%' AND relpersistence = 'p'"
        ).fetchone()[0]
        assert left == 0, "the run left its table"


def cachepact(*args: str, cwd: Path | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cachepact", "check", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        **kw,
    )


@pytest.mark.parametrize(
    ("target", "pattern", "code"),
    [
        ("cachepact.adapters.redis_py:cache_aside_leased", "cache-aside", 0),
        ("cachepact.adapters.redis_py:cache_aside", "cache-aside", 1),
        ("cachepact.adapters.reference:read_through_leased", "read-through", 0),
        ("cachepact.adapters.broken:aside_update_on_write", "cache-aside", 1),
    ],
    ids=["redis-py-pass", "redis-py-fail", "env-cache-pass", "env-cache-fail"],
)
def test_runs_that_pass_or_fail_leave_everything_else_intact(
    users_data, redis_server_url, postgres_server_url, target, pattern, code
):
    run_url, keys, table, tag = users_data
    p = cachepact(target, "--pattern", pattern, "--redis", run_url, "--db", postgres_server_url, "--max-examples", "20")
    out, err = p.communicate(timeout=300)
    assert p.returncode == code, out + err
    intact(redis_server_url, postgres_server_url, run_url, keys, table, tag)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_removes_what_it_made(users_data, redis_server_url, postgres_server_url, tmp_path, sig):
    run_url, keys, table, tag = users_data
    (tmp_path / "slow.py").write_text(SLOW)
    p = cachepact(
        "slow.py:make", "--pattern", "cache-aside", "--redis", run_url, "--db", postgres_server_url, cwd=tmp_path
    )
    assert p.stdout.readline() == "running\n"  # the check is under way: keys and the table exist
    assert redis.Redis.from_url(run_url).dbsize() > 0
    p.send_signal(sig)
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    intact(redis_server_url, postgres_server_url, run_url, keys, table, tag)


def test_a_killed_runs_keys_are_removed_by_the_next_run(users_data, redis_server_url, postgres_server_url, tmp_path):
    run_url, keys, table, tag = users_data
    (tmp_path / "slow.py").write_text(SLOW)
    p = cachepact("slow.py:make", "--pattern", "cache-aside", "--redis", run_url, cwd=tmp_path)
    assert p.stdout.readline() == "running\n"
    p.kill()  # no cleanup at all: the registry of created keys stays in the database
    p.communicate(timeout=30)
    r = redis.Redis.from_url(run_url)
    assert r.dbsize() > 0
    refused = cachepact(
        "cachepact.adapters.redis_py:cache_aside_leased", "--pattern", "cache-aside", "--redis", run_url
    )
    assert refused.wait(timeout=60) == 2 and "another cachepact run is using" in refused.stderr.read()
    r.delete(OWNER)  # what 10 s without renewal does to a killed run's mark (no sleeping in tests)
    again = cachepact(
        "cachepact.adapters.redis_py:cache_aside_leased",
        "--pattern",
        "cache-aside",
        "--redis",
        run_url,
        "--max-examples",
        "5",
    )
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, out + err
    assert "an interrupted earlier run left there" in out, out
    intact(redis_server_url, postgres_server_url, run_url, keys, table, tag)


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of the test's own, on a port of its own (for what the machine's must not see)."""
    server = "/usr/bin/redis-server"
    if not os.path.exists(server):
        pytest.skip("redis-server is not installed here")
    with socket.socket() as probe:  # a port free now, from the OS (tests beside this one take theirs)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert proc.poll() is None, f"redis-server did not start on port {port}"
            time.sleep(0.05)  # the server starting up, not the code under test
    yield port, client
    proc.kill()
    proc.wait()


def test_a_server_that_dies_mid_run_is_a_clear_error_not_a_hang(private_redis, tmp_path):
    port, _ = private_redis
    (tmp_path / "dies.py").write_text(
        "import cachepact, redis\n"
        "from cachepact.adapters import redis_py\n"
        "calls = []  # across worlds: the server dies some way into the check\n"
        "def make(env):\n"
        "    inner = redis_py.cache_aside(env)\n"
        "    def read(key):\n"
        "        calls.append(key)\n"
        "        if len(calls) == 30:\n"
        f"            redis.Redis(port={port}).shutdown(nosave=True)\n"
        "        return inner.read(key)\n"
        "    return cachepact.Adapter(read=read, write=inner.write)\n"
    )
    started = time.monotonic()
    p = cachepact(
        "dies.py:make",
        "--pattern",
        "cache-aside",
        "--no-concurrency",
        "--redis",
        f"redis://127.0.0.1:{port}/0",
        cwd=tmp_path,
    )
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2, out + err
    assert "went away during the run" in err and "\n" not in err.strip(), err
    assert time.monotonic() - started < 60


def test_one_database_is_claimed_by_exactly_one_run_at_a_time(redis_server_url):
    import threading

    from cachepact.backends._redis import RedisServer
    from cachepact.errors import BackendError

    url, _ = free_db(redis_server_url, others=0)

    def claim(won, start):
        start.wait()
        try:
            won.append(RedisServer(url))
        except BackendError as e:
            assert "another cachepact run is using" in str(e)

    for _ in range(10):
        won, start = [], threading.Barrier(2)
        threads = [threading.Thread(target=claim, args=(won, start)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1
        won[0].close()
    assert redis.Redis.from_url(url).dbsize() == 0


def test_a_thread_the_check_left_behind_cannot_write_after_the_cleanup(redis_server_url):
    import threading

    import cachepact
    from cachepact.conformance.runtime.primitives import real_event

    url, _ = free_db(redis_server_url, others=0)
    go_on, stuck = real_event(), []

    def make(env):
        r = env.redis

        def read(key):
            stuck.append(key)
            go_on.wait()  # blocked where the kit cannot see: the check times it out and moves on
            try:
                r.set(key, "written after the check")
            except redis.ConnectionError as e:
                stuck.append(str(e))
            return None

        return cachepact.Adapter(read=read, write=lambda k, v: None)

    result = cachepact.check(make, "cache-aside", concurrency=False, step_timeout=0.5, redis=url)
    assert result.finding.invariant == "timeout"
    go_on.set()
    for _ in range(200):
        if len(stuck) > 1:
            break
        threading.Event().wait(0.01)  # the released thread finishing its command, not the code under test
    assert "the check this thread worked for is over" in stuck[-1], stuck
    assert redis.Redis.from_url(url).dbsize() == 0


def test_a_user_without_scripts_or_multi_gets_the_same_verdicts(private_redis):
    """Managed Redis often denies scripting (and sometimes MULTI) to application users: the kit then
    sends commands with separate looks instead of wrapping them, and blames nothing on the adapter."""
    import cachepact
    from cachepact.adapters import redis_py

    port, admin = private_redis
    admin.acl_setuser("app", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-@scripting", "-multi"])
    url = f"redis://app:pw@127.0.0.1:{port}/3"
    result = cachepact.check(redis_py.cache_aside, "cache-aside", seed=0, redis=url)
    assert result.finding.invariant == "coherent-at-rest", result.report()
    assert cachepact.check(redis_py.cache_aside, "cache-aside", seed=0, concurrency=False, redis=url).passed
    assert "pw@" not in result.report()
    assert admin.execute_command("SELECT", 3) and admin.dbsize() == 0
