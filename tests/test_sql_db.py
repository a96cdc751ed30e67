"""env.db on SQL (cachepact.backends._sql): the same key-value store as MemoryDB, in SQLite or PostgreSQL.

Behaviour tests run on both: SQLite in a file under tmp_path, PostgreSQL on the machine's server
(the postgres_server_url fixture: skipped outside CI when unreachable). The kit's table is its own
and temporary; the tests check it is gone after close and that every other table is left intact.
"""

from __future__ import annotations

import pickle
import re
import secrets
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cachepact.backends._sql import SqlDB, masked, open_sql_db
from cachepact.errors import BackendError

TABLE = re.compile(r"cachepact_run_[0-9a-f]{12}")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"  # tmp_path is absolute: four slashes


def pg_connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def pg_relations(url: str, name: str) -> int:
    """How many relations called ``name`` exist in the database, any session's temporary ones included."""
    with pg_connect(url) as conn:
        return conn.execute("SELECT count(*) FROM pg_class WHERE relname = %s", (name,)).fetchone()[0]


def sqlite_tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def raised(url: str) -> BackendError:
    with pytest.raises(BackendError) as info:
        open_sql_db(url, connect_timeout=2)
    e = info.value
    assert e.parameter == "db"
    assert "\n" not in str(e) and "\n" not in e.problem, str(e)
    assert str(e) == f"db {e.url}: {e.problem}"
    return e


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlDB]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "run.db")
    else:
        url = request.getfixturevalue("postgres_server_url")
    store = open_sql_db(url)
    yield store
    store.close()


# -- behaviour, on both ------------------------------------------------------------------------------


def test_get_put_round_trip(db: SqlDB) -> None:
    assert TABLE.fullmatch(db.table)
    assert db.get("k1") is None
    db.put("k1", "k1.v1")
    assert db.get("k1") == "k1.v1"
    db.put("k1", "k1.v2")  # overwrites
    assert db.get("k1") == "k1.v2"
    db.put("k2", {"name": "x", "tags": [1, 2]})
    db.put(b"k3", b"\x00\xff")
    db.put(("k", 4), None)
    assert db.get("k2") == {"name": "x", "tags": [1, 2]}
    assert db.get(b"k3") == b"\x00\xff"
    assert db.get("k3") is None  # str and bytes keys differ
    assert db.snapshot() == {"k1": "k1.v2", "k2": {"name": "x", "tags": [1, 2]}, b"k3": b"\x00\xff", ("k", 4): None}


def test_used_from_another_thread(db: SqlDB) -> None:
    worker = threading.Thread(target=db.put, args=("k1", "k1.v1"))
    worker.start()
    worker.join()
    assert db.get("k1") == "k1.v1"


def test_reset_replaces_the_contents_with_initial(db: SqlDB) -> None:
    db.put("k1", "k1.v5")
    db.put("k2", "k2.v1")
    db.reset({"k1": "k1.v0", "k9": {"a": 1}})
    assert db.snapshot() == {"k1": "k1.v0", "k9": {"a": 1}}
    assert db.get("k2") is None
    db.reset({})
    assert db.snapshot() == {}


def test_close_is_idempotent_and_then_calls_fail_cleanly(db: SqlDB) -> None:
    db.close()
    db.close()
    with pytest.raises(BackendError, match="used after close"):
        db.get("k1")


# -- SQLite ------------------------------------------------------------------------------------------


def test_sqlite_each_put_is_visible_to_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    store = open_sql_db(sqlite_url(path))
    other = sqlite3.connect(path)
    try:
        store.put("k1", "k1.v1")
        rows = other.execute(f"SELECT k, v FROM {store.table}").fetchall()
        assert [(pickle.loads(k), pickle.loads(v)) for k, v in rows] == [("k1", "k1.v1")]
        store.reset({"k2": "k2.v0"})
        rows = other.execute(f"SELECT k, v FROM {store.table}").fetchall()
        assert [(pickle.loads(k), pickle.loads(v)) for k, v in rows] == [("k2", "k2.v0")]
    finally:
        other.close()
        store.close()


def test_sqlite_file_the_kit_created_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    store = open_sql_db(sqlite_url(path))
    store.put("k1", "k1.v1")
    assert path.exists() and store.table in sqlite_tables(path)
    store.close()
    assert not path.exists()
    store.close()


def test_sqlite_existing_file_keeps_its_tables_and_is_not_deleted(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO users VALUES (?, ?)", [(1, "ada"), (2, "alan")])
    conn.commit()
    conn.close()

    store = open_sql_db(sqlite_url(path))
    store.put("k1", "k1.v1")
    store.reset({"k1": "k1.v0"})
    assert sqlite_tables(path) == {"users", store.table}
    store.close()

    assert path.exists()
    assert sqlite_tables(path) == {"users"}
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT id, name FROM users ORDER BY id").fetchall() == [(1, "ada"), (2, "alan")]
    conn.close()


# A first run, in a process of its own (a run's claim is the process's): it opens the file, writes,
# says so, and goes on until told to end.
FIRST_RUN = """
import sys
from cachepact.backends._sql import open_sql_db
db = open_sql_db(sys.argv[1])
db.put("k1", "the first run's")
print("open", flush=True)
sys.stdin.readline()
print(db.get("k1"), flush=True)
db.close()
"""


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "users-file"])
def test_sqlite_a_second_run_on_one_file_is_refused_in_one_line_and_touches_nothing(tmp_path: Path, existing) -> None:
    # Before: the second run shared the file; the first (which had made it) removed it at its end, and
    # the second failed "attempt to write a readonly database", after the two had blocked each other.
    path = tmp_path / "shared.db"
    if existing:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users VALUES (1, 'ada')")
        conn.commit()
        conn.close()
    first = subprocess.Popen(
        [sys.executable, "-c", FIRST_RUN, sqlite_url(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert first.stdout is not None and first.stdin is not None
        assert first.stdout.readline() == "open\n"
        before = path.read_bytes()
        e = raised(sqlite_url(path))
        assert e.problem == (
            f"another cachepact run is using {path} right now; give each run its own file "
            "(sqlite:///another.db), or wait for that run to end"
        )
        done = subprocess.run(
            [sys.executable, "-m", "cachepact", "check", "cachepact.adapters.reference:cache_aside_leased"]
            + ["--pattern", "cache-aside", "--db", sqlite_url(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.count("\n") == 1 and "another cachepact run is using" in done.stderr, done.stderr
        assert path.read_bytes() == before  # not a byte written: no table of its own, nothing removed
        first.stdin.write("\n")
        first.stdin.flush()
        assert first.stdout.readline() == "the first run's\n"  # the first run goes on unharmed
        assert first.wait(timeout=30) == 0
    finally:
        first.kill()
        first.wait()
    if existing:
        assert sqlite_tables(path) == {"users"}
    else:
        assert not path.exists()  # the first run made it, and removed it
    # Once the first has ended, the file is free again.
    again = open_sql_db(sqlite_url(path))
    again.close()


def test_sqlite_relative_path_and_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_sql_db("sqlite:///rel.db")
    store.put("k1", "k1.v1")
    assert (tmp_path / "rel.db").exists()
    monkeypatch.chdir("/")  # the kit created the file: removed wherever the process is by then
    store.close()
    assert not (tmp_path / "rel.db").exists()
    for url in ("sqlite://", "sqlite:///:memory:"):
        store = open_sql_db(url)
        store.put("k1", {"v": 1})
        assert store.snapshot() == {"k1": {"v": 1}}
        store.close()
    assert list(tmp_path.iterdir()) == []


# -- PostgreSQL --------------------------------------------------------------------------------------


def test_postgres_each_put_commits(postgres_server_url: str) -> None:
    from psycopg.pq import TransactionStatus

    store = open_sql_db(postgres_server_url)
    try:
        # The temporary table is invisible to other sessions: no transaction left open means committed.
        store.put("k1", "k1.v1")
        assert store._conn.info.transaction_status == TransactionStatus.IDLE
        store.reset({"k1": "k1.v0"})
        assert store._conn.info.transaction_status == TransactionStatus.IDLE
        assert store.get("k1") == "k1.v0"
        assert store._conn.info.transaction_status == TransactionStatus.IDLE
    finally:
        store.close()


def test_postgres_table_is_temporary_and_dropped_at_close(postgres_server_url: str) -> None:
    store = open_sql_db(postgres_server_url)
    store.put("k1", "k1.v1")
    persistence = store._conn.execute(
        "SELECT relpersistence FROM pg_class WHERE relname = %s AND relnamespace = pg_my_temp_schema()",
        (store.table,),
    ).fetchall()
    assert persistence == [("t",)]  # temporary: the server drops it when the session ends, whatever happens
    store.close()
    store.close()
    assert pg_relations(postgres_server_url, store.table) == 0


def test_postgres_other_tables_stay_intact(postgres_server_url: str) -> None:
    mine = f"test_sql_db_keep_{secrets.token_hex(6)}"
    with pg_connect(postgres_server_url) as conn:
        conn.execute(f"CREATE TABLE {mine} (id int PRIMARY KEY, name text)")
        try:
            conn.execute(f"INSERT INTO {mine} VALUES (1, 'ada'), (2, 'alan')")
            store = open_sql_db(postgres_server_url)
            store.put("k1", "k1.v1")
            store.reset({"k1": "k1.v0"})
            store.close()
            assert conn.execute(f"SELECT id, name FROM {mine} ORDER BY id").fetchall() == [(1, "ada"), (2, "alan")]
        finally:
            conn.execute(f"DROP TABLE {mine}")


def test_postgres_connection_lost_during_the_run(postgres_server_url: str) -> None:
    store = open_sql_db(postgres_server_url)
    store.put("k1", "k1.v1")
    with pg_connect(postgres_server_url) as conn:
        # The timeout makes it wait until the backend has exited (and dropped its temporary table).
        assert conn.execute("SELECT pg_terminate_backend(%s, 10000)", (store._conn.info.backend_pid,)).fetchone()[0]
    for call in (lambda: store.get("k1"), lambda: store.put("k1", "k1.v2"), store.snapshot):
        with pytest.raises(BackendError) as info:
            call()
        assert info.value.problem.startswith("the connection was lost during the run: ")
        assert "\n" not in str(info.value)
    store.close()
    assert pg_relations(postgres_server_url, store.table) == 0


# -- errors ------------------------------------------------------------------------------------------


def test_unknown_scheme() -> None:
    e = raised("mysql://x")
    assert "unknown scheme 'mysql'" in e.problem
    assert "sqlite:///file.db" in e.problem and "postgresql://" in e.problem
    assert "not a database URL" in raised("dbname=test").problem


def test_unreachable_server() -> None:
    e = raised("postgresql://postgres@127.0.0.1:1/test")
    assert "127.0.0.1:1 is unreachable" in e.problem
    assert "is PostgreSQL running" in e.problem


def server_url(base: str, *, user: str, password: str | None = None, dbname: str | None = None) -> str:
    parts = urlsplit(base)
    auth = user if password is None else f"{user}:{password}"
    return f"postgresql://{auth}@{parts.hostname}:{parts.port or 5432}/{dbname or parts.path.lstrip('/')}"


def test_wrong_credentials_never_show_the_password(postgres_server_url: str) -> None:
    e = raised(server_url(postgres_server_url, user="nobody", password="secret"))
    assert "secret" not in str(e) and "secret" not in e.url
    assert "nobody:***@" in e.url
    # Under trust authentication the password is not asked for: the role is what fails.
    assert "authentication failed" in e.problem or 'role "nobody" does not exist' in e.problem
    e = raised(server_url(postgres_server_url, user="nobody") + "?password=secret")
    assert "secret" not in str(e) and "password=***" in e.url


def test_a_password_that_connects_is_masked_too(postgres_server_url: str) -> None:
    user = urlsplit(postgres_server_url).username or "postgres"
    try:
        store = open_sql_db(server_url(postgres_server_url, user=user, password="secret"))
    except BackendError as e:  # a server that checks passwords refuses this one
        assert "secret" not in str(e) and "authentication failed" in e.problem
        return
    assert "secret" not in store.url and f"{user}:***@" in store.url
    store.close()


def test_database_that_does_not_exist(postgres_server_url: str) -> None:
    name = f"cachepact_missing_{secrets.token_hex(4)}"
    user = urlsplit(postgres_server_url).username or "postgres"
    e = raised(server_url(postgres_server_url, user=user, dbname=name))
    assert "the database does not exist" in e.problem and name in e.problem


def test_sqlite_missing_folder(tmp_path: Path) -> None:
    e = raised(sqlite_url(tmp_path / "missing" / "run.db"))
    assert f"the folder {tmp_path / 'missing'} does not exist" in e.problem
    assert not (tmp_path / "missing").exists()


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, but somebody's notes\n" * 100)
    e = raised(sqlite_url(path))
    assert "is not an SQLite database" in e.problem
    assert path.read_text() == "not a database, but somebody's notes\n" * 100


@pytest.mark.parametrize("url", ["sqlite:relative.db", "sqlite:///", "sqlite://host/file.db"])
def test_sqlite_malformed_url(url: str) -> None:
    assert "sqlite:///file.db" in raised(url).problem


def test_masked() -> None:
    assert masked("postgresql://u:p@ss@h:5432/db?sslmode=off") == "postgresql://u:***@h:5432/db?sslmode=off"
    assert masked("postgresql://u@h/db?password=pw&x=1") == "postgresql://u@h/db?password=***&x=1"
    assert masked("postgresql://h/db?user=a@b") == "postgresql://h/db?user=a@b"
    assert masked("sqlite:////tmp/run.db") == "sqlite:////tmp/run.db"
