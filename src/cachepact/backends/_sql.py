"""``env.db`` in a SQL database: the kit's key-value system of record in SQLite (the standard library's
``sqlite3``) or PostgreSQL (psycopg 3), chosen by URL (``sqlite:///file.db``, ``postgresql://...``).

A run writes to one table of its own, ``cachepact_run_<12 hex>``, and touches no other. On PostgreSQL
it is a temporary table, so the server drops it when the connection ends even if the process is
killed; on SQLite it is a regular table in the named file (a temporary one would not be in the file),
and a file the kit created is removed again. ``close`` drops the table either way.

Keys and values are stored pickled. A key is found by its pickle, so equal keys must pickle to equal
bytes: true of the str keys adapters use (and of bytes, int and tuples of them), not of ``1`` and
``1.0``, which a dict treats as one key. A value pickle cannot store raises pickle's own error.

The caller serialises calls, but from several threads: sqlite3 is opened with
``check_same_thread=False``. Every ``put`` commits before it returns; ``put_many`` (a transaction's
commit) applies its puts in one transaction.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import secrets
import sqlite3
import struct
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import unquote

from ..errors import BackendError

_USE = "use sqlite:///file.db (sqlite:////absolute/path.db; sqlite:// in memory) or postgresql://user@host:port/dbname"
_PROTOCOL = 4  # fixed, so a key pickles to the same bytes whatever Python's default protocol is


def masked(url: str) -> str:
    """``url`` with any password shown as ``***``: URLs reach messages and reports."""
    url = re.sub(r"(?i)(password\s*=\s*)('[^']*'|[^\s&#]*)", r"\1***", url)  # ?password=... or key=value form
    found = _userinfo_password(url)
    return url if found is None else f"{url[: found[0]]}***{url[found[1] :]}"


def _userinfo_password(url: str) -> tuple[int, int] | None:
    """Where the password of ``scheme://user:password@host`` is in ``url``, if it has one."""
    start = url.find("://") + 3
    if start < 3:
        return None
    at = re.split(r"[?#]", url[start:], maxsplit=1)[0].rfind("@")  # the last @ before the query ends it
    colon = url.find(":", start, start + at)
    return None if at < 0 or colon < 0 else (colon + 1, start + at)


def open_sql_db(url: str, *, connect_timeout: float = 5.0) -> SqlDB:
    """Connect to the database ``url`` names and create the run's table there; ``BackendError`` if it
    cannot be used."""
    if not isinstance(url, str):
        raise BackendError("db", repr(url), f"not a URL; {_USE}")
    shown = masked(url)
    found = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)
    scheme = found.group(1).lower() if found else ""
    if scheme == "sqlite":
        return _open_sqlite(url, shown, connect_timeout)
    if scheme in ("postgresql", "postgres"):
        return _open_postgres(url, shown, connect_timeout)
    raise BackendError("db", shown, f"unknown scheme {scheme!r}; {_USE}" if scheme else f"not a database URL; {_USE}")


class SqlDB:
    """System of record in one table of the kit's own: ``get``/``put`` as ``MemoryDB`` has them,
    ``snapshot``, ``reset`` and ``close`` for the kit."""

    _param = "?"
    _errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, url: str, conn: Any, table: str, ref: str | None = None) -> None:
        self.url = url  # the password masked
        self.table = table
        self._conn = conn
        self._closed = False
        ref, p = ref or table, self._param  # ref: the name statements use (PostgreSQL's is schema-qualified)
        self._drop = f"DROP TABLE IF EXISTS {ref}"  # table names are the kit's own: hex, never user input
        self._select = f"SELECT v FROM {ref} WHERE k = {p}"
        self._select_all = f"SELECT k, v FROM {ref}"
        self._delete_all = f"DELETE FROM {ref}"
        self._upsert = self._upsert_sql(ref, p)

    def _upsert_sql(self, ref: str, p: str) -> str:
        return f"INSERT OR REPLACE INTO {ref} (k, v) VALUES ({p}, {p})"

    def get(self, key: Hashable) -> Any:
        try:
            row = self._conn.execute(self._select, (_dump(key),)).fetchone()
        except self._errors as e:
            raise self._failed(e) from None
        return None if row is None else pickle.loads(row[0])

    def put(self, key: Hashable, value: Any) -> None:
        row = (_dump(key), _dump(value))
        try:
            self._conn.execute(self._upsert, row)  # autocommit: durable when this returns
        except self._errors as e:
            raise self._failed(e) from None

    def put_many(self, items: Mapping[Hashable, Any]) -> None:
        """A transaction's puts (``env.db.transaction()``), in one real transaction: all or none."""
        rows = [(_dump(k), _dump(v)) for k, v in items.items()]
        try:
            with self._atomic():
                cursor = self._conn.cursor()
                cursor.executemany(self._upsert, rows)
                cursor.close()
        except self._errors as e:
            raise self._failed(e) from None

    def snapshot(self) -> dict[Hashable, Any]:
        try:
            rows = self._conn.execute(self._select_all).fetchall()
        except self._errors as e:
            raise self._failed(e) from None
        return {pickle.loads(k): pickle.loads(v) for k, v in rows}

    def reset(self, initial: Mapping[Hashable, Any]) -> None:
        """A fresh world: the table holds exactly ``initial``, in one transaction."""
        rows = [(_dump(k), _dump(v)) for k, v in initial.items()]
        try:
            with self._atomic():
                self._conn.execute(self._delete_all)
                if rows:
                    cursor = self._conn.cursor()
                    cursor.executemany(self._upsert, rows)
                    cursor.close()
        except self._errors as e:
            raise self._failed(e) from None

    def close(self) -> None:
        """Drop the run's table and close; idempotent, and never raises (a lost server has dropped
        PostgreSQL's temporary table itself)."""
        if self._closed:
            return
        self._closed = True
        with suppress(Exception):
            self._conn.execute(self._drop)
        with suppress(Exception):
            self._conn.close()
        self._closed_hook()

    # -- what differs between the databases ----------------------------------------------------------

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        self._conn.execute("BEGIN")  # opened with isolation_level=None: no implicit transactions
        try:
            yield
        except BaseException:
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _failed(self, e: Exception) -> BackendError:
        if self._closed:
            return BackendError("db", self.url, "used after close()")
        return BackendError("db", self.url, f"the database failed during the run: {_one_line(e)}")

    def _closed_hook(self) -> None:
        """What else a database removes once closed: nothing here; SQLite removes the file the kit made."""


class _SqliteDB(SqlDB):
    def __init__(
        self, url: str, conn: sqlite3.Connection, table: str, created: str | None, claim: int | None = None
    ) -> None:
        super().__init__(url, conn, table)
        self._created = created  # the file's absolute path, when the kit created it
        self._claim = claim  # the descriptor holding the run's claim on the file (``_claim_file``)

    def _closed_hook(self) -> None:
        if self._created:
            for suffix in ("", "-journal", "-wal", "-shm"):
                with suppress(OSError):
                    os.remove(self._created + suffix)
        if self._claim is not None:  # last: a run starting meanwhile is refused, not handed a file being removed
            os.close(self._claim)
            self._claim = None


class _PostgresDB(SqlDB):
    _param = "%s"

    def __init__(self, url: str, conn: Any, table: str) -> None:
        import psycopg

        self._errors = (psycopg.Error,)
        # pg_temp.: statements can only ever reach the kit's temporary table, whatever search_path says.
        super().__init__(url, conn, table, ref=f"pg_temp.{table}")

    def _upsert_sql(self, ref: str, p: str) -> str:
        return f"INSERT INTO {ref} (k, v) VALUES ({p}, {p}) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"

    def _atomic(self) -> Any:
        return self._conn.transaction()

    def _failed(self, e: Exception) -> BackendError:
        import psycopg

        if not self._closed and (isinstance(e, psycopg.OperationalError | psycopg.InterfaceError) or self._conn.broken):
            problem = f"the connection was lost during the run: {_one_line(e)}; is PostgreSQL running? Rerun"
            return BackendError("db", self.url, problem)
        return super()._failed(e)


# -- opening ------------------------------------------------------------------------------------------


def _new_table() -> str:
    return f"cachepact_run_{secrets.token_hex(6)}"


def _open_sqlite(url: str, shown: str, timeout: float) -> SqlDB:
    rest = url[len("sqlite:") :]
    if rest in ("//", "///:memory:"):
        path = ":memory:"
    elif rest.startswith("///") and len(rest) > 3:
        path = os.path.abspath(rest[3:])  # absolute now: close() removes the file whatever the cwd is then
    else:
        raise BackendError("db", shown, f"not an SQLite URL (three slashes, then the path); {_USE}")
    created = claim = None
    if path != ":memory:":
        folder = os.path.dirname(path)
        if os.path.isdir(path):
            raise BackendError("db", shown, f"{path} is a folder; name a database file")
        if not os.path.isdir(folder):
            raise BackendError("db", shown, f"the folder {folder} does not exist; create it or name a file in another")
        if not os.path.exists(path) and not os.access(folder, os.W_OK):
            raise BackendError("db", shown, f"the folder {folder} is not writable; name a file in another")
        created, claim = _claim_file(path, shown)  # before anything is written: a file in use is refused
    table = _new_table()
    conn = None
    try:
        conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
        conn.execute(f"CREATE TABLE {table} (k BLOB PRIMARY KEY, v BLOB NOT NULL)")
    except sqlite3.Error as e:
        if conn is not None:
            conn.close()
        if created:
            with suppress(OSError):
                os.remove(created)
        if claim is not None:
            os.close(claim)
        text = _one_line(e)
        if "not a database" in text:
            problem = f"{path} is not an SQLite database ({text}); name a database file or a new one"
        elif "readonly" in text or "unable to open" in text:
            problem = f"cannot write {path} ({text}); name a writable file"
        else:
            problem = f"cannot use {path} ({text})"
        raise BackendError("db", shown, problem) from None
    return _SqliteDB(shown, conn, table, created, claim)


# A run's claim on its SQLite file: an exclusive lock on one byte far past anything SQLite locks or
# stores (its own locks sit at 1 GiB), held until the run is over. It writes nothing, never stands in
# the way of SQLite or of the user's own connections (only another run asks for it), and the OS
# releases it when a run is killed, so no stale claim outlives its run. It is an open-file-description
# lock (Linux): a process's plain POSIX locks would not do, since SQLite releases every one its
# process holds on the file each time it unlocks.
_CLAIM_AT = 1 << 40


def _claim_file(path: str, shown: str) -> tuple[str | None, int | None]:
    """Claim ``path`` for this run: (the path if the kit created the file, else None; the descriptor
    holding the claim, or None where the platform has no such locks). A file another run holds is
    refused, before anything is written to it."""
    for _ in range(3):
        created: str | None = path
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            created = None
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue  # removed meanwhile (a run ending): look again
            except OSError as e:
                raise BackendError("db", shown, f"cannot write {path} ({_one_line(e)}); name a writable file") from None
        except OSError as e:
            raise BackendError("db", shown, f"cannot write {path} ({_one_line(e)}); name a writable file") from None
        taken = _lock(fd)
        if taken is None:  # no such locks here: two runs on one file go unnoticed
            os.close(fd)
            return created, None
        if not taken:
            os.close(fd)  # another run's: nothing was written, and the file is that run's to remove
            raise BackendError(
                "db",
                shown,
                f"another cachepact run is using {path} right now; give each run its own file "
                "(sqlite:///another.db), or wait for that run to end",
            )
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return created, fd
        os.close(fd)  # the file was removed (and perhaps made again) between the open and the claim
    raise BackendError("db", shown, f"{path} keeps being removed and made again; name a file nothing else uses")


def _lock(fd: int) -> bool | None:
    """Take the claim on ``fd``: True, or False when another run holds it; None where there are no
    open-file-description locks (not Linux)."""
    try:
        import fcntl
    except ImportError:
        return None
    command = getattr(fcntl, "F_OFD_SETLK", None)
    if command is None:
        return None
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (0, as these locks require), padded.
    request = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, _CLAIM_AT, 1, 0)
    try:
        fcntl.fcntl(fd, command, request)
    except (BlockingIOError, PermissionError):
        return False
    except OSError:
        return None  # a kernel without them
    return True


def _open_postgres(url: str, shown: str, timeout: float) -> SqlDB:
    import psycopg

    try:
        # autocommit: each put is its own committed statement; reset opens an explicit transaction.
        # libpq counts whole seconds, at least 2.
        conn = psycopg.connect(url, autocommit=True, connect_timeout=max(1, math.ceil(timeout)))
    except (psycopg.Error, ValueError) as e:
        raise BackendError("db", shown, _connect_problem(_reason(e, url, shown), _where(url))) from None
    table = _new_table()
    try:
        conn.execute(f"CREATE TEMP TABLE {table} (k BYTEA PRIMARY KEY, v BYTEA NOT NULL)")
    except psycopg.Error as e:
        conn.close()
        reason = _reason(e, url, shown)
        problem = f"cannot create the kit's temporary table ({reason}); the user needs TEMP on the database"
        raise BackendError("db", shown, problem) from None
    return _PostgresDB(shown, conn, table)


def _connect_problem(reason: str, where: str) -> str:
    low = reason.lower()
    if "authentication failed" in low or "no password supplied" in low:
        return f"authentication failed ({reason}); check the user and password in the URL"
    if re.search(r'\brole "[^"]*" does not exist', low):
        return f"the user does not exist ({reason}); name an existing role in the URL"
    if re.search(r'\bdatabase "[^"]*" does not exist', low):
        return f"the database does not exist ({reason}); create it (createdb NAME) or name an existing one"
    if "pg_hba.conf" in low:
        return f"the server refuses this client ({reason}); allow it in pg_hba.conf or use another user"
    unreachable = ("refused", "timeout", "timed out", "could not connect", "resolve host", "translate host", "no route")
    if any(s in low for s in (*unreachable, "unreachable", "no such file or directory")):
        return f"{where} is unreachable ({reason}); is PostgreSQL running there?"
    return f"cannot connect ({reason})"


def _where(url: str) -> str:
    """host:port as libpq reads the URL, for 'unreachable' messages."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(url)
    except Exception:
        return "the server"
    hosts = str(info.get("host") or info.get("hostaddr") or "localhost").split(",")
    ports = str(info.get("port") or "").split(",")
    return ", ".join(f"{h}:{ports[min(n, len(ports) - 1)] or 5432}" for n, h in enumerate(hosts))


def _reason(e: BaseException, url: str, shown: str) -> str:
    """libpq's message in one line, without its boilerplate, and without the password: some messages
    quote the URL."""
    text = str(e).replace(url, shown)
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    first = next((line for line in text.splitlines() if line.strip()), "")
    first = re.sub(r'connection to server (?:at|on socket) "[^"]*"(?:, port \d+)? failed: ', "", first)
    first = re.sub(r"^(?:connection failed|connection is bad): |(?:FATAL|ERROR):\s+", "", first)
    return _one_line(first) or _one_line(text) or type(e).__name__


def _secrets(url: str) -> set[str]:
    found = set(re.findall(r"(?i)password\s*=\s*'?([^\s&#']+)", url))
    span = _userinfo_password(url)
    if span is not None:
        found.add(url[span[0] : span[1]])
    return {s for raw in found for s in (raw, unquote(raw)) if s}


def _dump(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=_PROTOCOL)


def _one_line(e: BaseException | str) -> str:
    return " ".join(str(e).split()) or ("" if isinstance(e, str) else type(e).__name__)


__all__ = ["SqlDB", "masked", "open_sql_db"]
