"""The Redis server behind a run: fakeredis in process (the embedded default) or a real server.

The kit reads the server directly, through a client of its own that is never recorded, to see
what each command did to the keys it touched (``observe``). On a real server the run's logical
database holds the run's keys and nothing else:

* it must be empty at the start (a non-empty one is refused, naming an empty one);
* every key a command touches is registered first, in a set under ``REGISTRY`` in that database,
  so a run killed midway (SIGKILL, a lost server) leaves the list the next run uses to remove
  exactly those keys before it starts;
* between worlds and at the end the kit deletes exactly the registered keys; never FLUSHDB.

The in-process fakeredis server is the kit's own: it is emptied between worlds, and its expiry runs
on the kit's virtual clock (it reads ``time.time``, which the clock moves).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from ..errors import BackendError
from . import IN_PROCESS, HashField

REGISTRY = b"cachepact:created-keys"
# A live run's mark: claimed atomically (SET NX) with a token of its own, renewed by a timer thread
# every OWNER_RENEW_S while the run lives (whatever the adapter is doing), removed only by its
# owner. A second run on the same database is refused rather than taking the first one's keys for
# an interrupted run's leftovers; a killed run's mark is gone OWNER_TTL_MS later.
OWNER = b"cachepact:running"
OWNER_TTL_MS = 10_000
OWNER_RENEW_S = 2.0
# Renew or remove the mark only while it is still this run's token.
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
SCHEMES = ("redis", "rediss", "unix")
FAKE_SCHEME = "fakeredis://"  # --redis fakeredis://: the in-process server, env.cache on it too
FAKE_HOST = "fakeredis.cachepact"  # no such host: during a check, clients made for it reach the in-process server
FAKE_URL = f"redis://{FAKE_HOST}:6379/0"  # where library clients made with env.redis_options go

# A value of a type other than a string, read whole, as the kit compares entries.
_READ_WHOLE = {
    b"hash": lambda p, k: p.hgetall(k),
    b"list": lambda p, k: p.lrange(k, 0, -1),
    b"set": lambda p, k: p.smembers(k),
    b"zset": lambda p, k: p.zrange(k, 0, -1, withscores=True),
    b"stream": lambda p, k: p.xrange(k),
}


def masked(url: str) -> str:
    """``url`` with its password (if any) shown as ``***``: URLs reach messages and reports."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


class RedisServer:
    """One check's Redis: ``client()`` makes genuine redis-py clients on it, ``url``/``options``
    let a library make its own; ``observe``, ``register``, ``reset`` and ``close`` are the kit's."""

    def __init__(self, url: str | None = None, *, connect_timeout: float = 5.0) -> None:
        self.fake = url is None
        self.fake_server: Any = None  # the in-process server (fakeredis), what asyncio clients' twins reach
        self.shown = IN_PROCESS if url is None else masked(url)
        self.cleaned = 0  # keys a previous, interrupted run left, removed at the start
        self._token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._registered: set[bytes] = set()
        self._expiring: set[bytes] = set()
        # Expiring key -> when it expires on the kit's clock (time.time()), from the PTTL the kit last
        # read: what a jump of the clock inside a race is sized to, with no round trip.
        self._due: dict[bytes, float] = {}
        self.lease_keys: set[bytes] = set()  # keys cachepact.leases keeps tokens under (state_key)
        self.leased: dict[bytes, bytes] = {}  # such a lease key -> the key whose entry it guards
        self.fields: dict[bytes, set[HashField]] = {}  # a hash's fields the run's commands named
        # Whether the kit may wrap a command in its look script, or in MULTI (an ACL may forbid either).
        self.can_script = True
        self.can_multi = True
        self.lost: BaseException | None = None  # the server went away during the run
        self.problem: str | None = None  # the server cannot run what the adapter sends (Lua, without lupa)
        # Every command of the run, and the cleanup, hold it: once the check is over (a Ctrl-C arrives
        # while an adapter thread is mid-command) no command can recreate a key after the cleanup.
        self.gate = threading.Lock()
        self.closed = False
        self._direct: _DirectLooks | None = None  # the in-process server's looks without a command
        # ``raw`` is the kit's own client: the hook never records it (its pipelines share its pool,
        # which is marked before its first command).
        if url is None:
            self._open_fake()
        else:
            self._open_real(url, connect_timeout)

    # -- opening --------------------------------------------------------------------------------

    def _open_fake(self) -> None:
        import fakeredis

        # Made outside any run (the kit sees to it), so the server's lock and its database's condition
        # are real ones: the kit's stand-ins would make every command a scheduling point.
        self._fake_server = fakeredis.FakeServer()
        self.fake_server = self._fake_server
        self._fake_server.dbs[0]
        self.db = 0
        self.url = FAKE_URL
        self.options: dict[str, Any] = {"connection_class": fakeredis.FakeRedisConnection, "server": self._fake_server}
        self.raw = redis.Redis.from_url(self.url, **self.options)
        self.raw.connection_pool._cachepact_internal = True
        self.raw.ping()
        self._direct = _DirectLooks.of(self._fake_server, self.db)

    def _open_real(self, url: str, timeout: float) -> None:
        try:
            parts = urlsplit(url)
        except ValueError as e:
            raise BackendError("redis", masked(url), f"not a URL ({e}); use redis://host:port/N") from None
        if parts.scheme not in SCHEMES:
            raise BackendError(
                "redis",
                masked(url),
                f"unknown scheme {parts.scheme or '(none)'!r}; use redis://host:port/N "
                "(or fakeredis:// for the in-process server)",
            )
        if parts.scheme != "unix" and parts.path not in ("", "/") and not parts.path[1:].isdigit():
            raise BackendError(
                "redis", masked(url), f"{parts.path[1:]!r} is no logical database number; use redis://host:port/N"
            )
        self.url = url
        self.options = {}
        try:
            self.raw = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=max(timeout, 30.0))
            self.raw.connection_pool._cachepact_internal = True
            self.db = int(self.raw.connection_pool.connection_kwargs.get("db", 0) or 0)
            self.raw.ping()
            self._probe()
            self._claim()
        except BackendError:
            raise
        except (ValueError, TypeError) as e:
            raise BackendError(
                "redis", self.shown, f"{_one_line(e)}; use redis://[user:password@]host:port/N"
            ) from None
        except redis.AuthenticationError as e:
            raise BackendError(
                "redis", self.shown, f"authentication failed ({_one_line(e)}); check the user and password"
            ) from None
        except redis.ConnectionError as e:
            text = _one_line(e)
            if "auth" in text.lower() or "password" in text.lower():
                raise BackendError(
                    "redis", self.shown, f"authentication failed ({text}); check the user and password"
                ) from None
            raise BackendError("redis", self.shown, f"cannot connect ({text}); is Redis running there?") from None
        except redis.ResponseError as e:
            text = _one_line(e)
            if "NOAUTH" in text or "WRONGPASS" in text:
                raise BackendError(
                    "redis", self.shown, f"authentication failed ({text}); check the user and password"
                ) from None
            if "DB index" in text:
                raise BackendError(
                    "redis", self.shown, f"no logical database {self.db} there ({text}); pick one the server has"
                ) from None
            raise BackendError("redis", self.shown, f"the server refused ({text})") from None
        except redis.RedisError as e:
            raise BackendError("redis", self.shown, f"cannot use it ({_one_line(e)})") from None

    def _claim(self) -> None:
        """The run's logical database must hold nothing but what an earlier, interrupted run of the
        kit left (and registered): that is removed; anything else is the user's, and refused. It is
        looked at before the run's mark is set, so a database the kit refuses is never written."""
        self._leftovers(claimed=False)
        if not self.raw.set(OWNER, self._token, nx=True, px=OWNER_TTL_MS):
            raise self._in_use()  # another run claimed it since the look
        try:
            # Again, under the mark: no other run can start now, so what it removes is what it saw.
            left = self._leftovers(claimed=True)
        except BackendError:
            self._mine(_RELEASE)  # something wrote a key since the look: refused all the same
            raise
        if left is not None:
            if left:
                self.raw.delete(*left)
            self.raw.delete(REGISTRY)
            self.cleaned = len(left)
        self._renewer = threading.Thread(target=self._renew, name="cachepact-redis-mark", daemon=True)
        self._renewer.start()

    def _leftovers(self, *, claimed: bool) -> set[bytes] | None:
        """The keys an interrupted run left there (all registered), or None when the database is
        empty; a database another run holds, or that holds anything else, is refused. Reads only."""
        size = self.raw.dbsize() - claimed  # the mark this run holds is its own
        if not size:
            return None
        if not claimed and self.raw.exists(OWNER):
            raise self._in_use()
        left = set(self.raw.smembers(REGISTRY)) if self.raw.type(REGISTRY) == b"set" else set()
        present = set(self.raw.scan_iter(count=1000)) - {REGISTRY, OWNER}
        if not (left and present <= left):
            raise BackendError(
                "redis",
                self.shown,
                f"logical database {self.db} holds {_keys(size)}, and the kit needs an empty one so it can "
                f"remove exactly what it creates; {self._free()}",
            )
        return present

    def _in_use(self) -> BackendError:
        return BackendError(
            "redis",
            self.shown,
            f"another cachepact run is using logical database {self.db} right now (or one was killed in "
            f"the last {OWNER_TTL_MS // 1000} s); give each run its own database: {self._free()}",
        )

    def _probe(self) -> None:
        """What this user may run: the kit wraps a command and its looks in a script of its own, or in
        a MULTI, only where the server allows it (an ACL on a managed Redis often denies either)."""
        try:
            self.raw.eval("return 1", 0)
        except redis.ResponseError:
            self.can_script = False
        try:
            with self.raw.pipeline(transaction=True) as pipe:
                pipe.ping()
                pipe.execute()
        except redis.ResponseError:
            self.can_multi = False

    def _mine(self, script: str) -> bool:
        """Renew (``_RENEW``) or remove (``_RELEASE``) the mark if it is still this run's: one script,
        or, for a user who may not run scripts, a read and a write (the mark is only ever written by
        its owner before it expires, so nothing comes between them that matters)."""
        if self.can_script:
            return bool(self.raw.eval(script, 1, OWNER, self._token, OWNER_TTL_MS))
        if self.raw.get(OWNER) != self._token.encode():
            return False
        if script is _RENEW:
            return bool(self.raw.pexpire(OWNER, OWNER_TTL_MS))
        return bool(self.raw.delete(OWNER))

    def _renew(self) -> None:
        """The timer thread: keep the mark alive until ``close``; a mark lost (taken over, or the
        server restarted) ends the run as a lost server."""
        while not self._stop.wait(OWNER_RENEW_S):
            try:
                if not self._mine(_RENEW) and not self.closed:
                    self.lost = redis.ConnectionError("the run's mark on the database was lost")
                    return
            except redis.RedisError as e:
                if not self.closed:
                    self.lost = e
                return

    def _free(self) -> str:
        """Name an empty logical database on the server, for the message refusing a non-empty one."""
        try:
            used = {int(name[2:]) for name in self.raw.info("keyspace")}
            count = int(self.raw.config_get("databases").get("databases", 16))
        except (redis.RedisError, ValueError):
            return "name an empty one in the URL (redis://host:port/N)"
        # The highest first: applications use database 0 by default.
        free = [n for n in reversed(range(count)) if n not in used and n != self.db]
        if not free:
            return "every logical database on this server holds keys; use another server"
        parts = urlsplit(masked(self.url))
        if parts.scheme == "unix":  # a socket path; the database is the query's db=
            query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("db="))
            parts = parts._replace(query="&".join(filter(None, [query, f"db={free[0]}"])))
        else:
            parts = parts._replace(path=f"/{free[0]}")
        return f"use {urlunsplit(parts)}, which is empty"

    # -- what adapters get ----------------------------------------------------------------------

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new genuine ``redis.Redis`` on the run's server (what ``env.redis`` is)."""
        return redis.Redis.from_url(self.url, **self.options, **kwargs)

    def async_client(self) -> Any:
        """A new genuine ``redis.asyncio.Redis`` on the run's server (what ``env.async_redis`` is). During
        a check its commands go through a synchronous twin, recorded; it connects only outside one."""
        import redis.asyncio

        if not self.fake:
            return redis.asyncio.Redis.from_url(self.url)
        from fakeredis.aioredis import FakeAsyncRedisConnection

        return redis.asyncio.Redis.from_url(
            self.url, connection_class=FakeAsyncRedisConnection, server=self._fake_server
        )

    # -- the kit's own view ---------------------------------------------------------------------

    def refuse_if_closed(self) -> None:
        if self.closed:
            raise redis.ConnectionError("cachepact: the check is over; this command was not sent")

    @property
    def registered(self) -> set[bytes]:
        """The keys the run's commands have touched (what ``reset`` and ``close`` remove)."""
        return self._registered

    def register(self, keys: Iterable[Any]) -> None:
        """Keys a command is about to touch: on a real server, listed before they may be created."""
        new = [k for k in dict.fromkeys(_whole_key(k) for k in keys) if k not in self._registered]
        if not new:
            return
        self._registered.update(new)
        if not self.fake:
            self.raw.sadd(REGISTRY, *new)

    def observe(self, keys: list[bytes]) -> list[Any]:
        """What each key holds: its bytes, a type's whole contents, or None."""
        if not keys:
            return []
        if self._direct is not None and (found := self._direct.strings(keys)) is not None:
            return found
        pipe = self.raw.pipeline(transaction=False)
        for k in keys:
            if isinstance(k, HashField):
                pipe.hget(k.key, k.field)
            else:
                pipe.get(k)
        found = pipe.execute(raise_on_error=False)
        for n, value in enumerate(found):
            if isinstance(value, redis.ResponseError) and isinstance(keys[n], HashField):
                found[n] = None  # a field of a key that holds no hash: no such entry
            elif isinstance(value, redis.ResponseError):  # WRONGTYPE: a hash, a list, ...
                kind = self.raw.type(keys[n])
                read = _READ_WHOLE.get(kind)
                found[n] = (kind.decode(), read(self.raw, keys[n])) if read else (kind.decode(), None)
        return found

    def pttl(self, key: Any) -> float | None:
        """Seconds the key (a field: its hash) has left, or None when it does not expire (or is gone)."""
        whole = _whole_key(key)
        ms = self._direct.pttl(whole) if self._direct is not None else None
        return self.note_ttl(key, self.raw.pttl(whole) if ms is None else ms)

    def note_ttl(self, key: bytes, ms: Any) -> float | None:
        """A key's ``PTTL`` reply, read by the kit: seconds left, or None; an expiring key is watched."""
        whole = _whole_key(key)
        if not isinstance(ms, int) or ms < 0:
            self._due.pop(whole, None)  # no TTL now (-1), or gone (-2)
            return None
        self._expiring.add(whole)
        self._due[whole] = time.time() + ms / 1000
        return ms / 1000

    def forget_ttl(self, key: Any) -> None:
        """The key is gone (a command removed it): it no longer expires, and a clock moving on later
        does not report it expired. A hash's field gone says nothing of its hash."""
        if isinstance(key, HashField):
            return
        self._due.pop(key, None)
        self._expiring.discard(key)

    def expiring(self) -> list[tuple[bytes, float]]:
        """Each key the kit saw stored with a time to live, with the seconds it has left on the kit's
        clock. Only on the in-process server: a real server expires keys on its own clock, which the
        kit cannot move."""
        if not self._due or not self.fake:
            return []
        now = time.time()
        return [(k, due - now) for k, due in list(self._due.items()) if due > now]

    def ttl_bounds(self) -> list[tuple[bytes, float]]:
        """Each key the kit saw stored with a time to live, with the seconds it has left: on a real
        server too, where the kit cannot move its clock but the time to live still ends a stale
        entry (what ``no-stale-after-failed-invalidate`` states as the bound)."""
        if not self._due:
            return []
        if self.fake:
            now = time.time()
            return [(k, due - now) for k, due in list(self._due.items()) if due > now]
        # A real server's own clock: the kit's virtual one (which moves time.time) does not reach it.
        keys = list(self._due)
        pipe = self.raw.pipeline(transaction=False)
        for k in keys:
            pipe.pttl(k)
        return [(k, ms / 1000) for k, ms in zip(keys, pipe.execute()) if isinstance(ms, int) and ms > 0]

    def expired(self) -> list[bytes]:
        """Keys stored with a time to live that are gone now (the clock moved past it)."""
        if not self._expiring:
            return []
        keys = sorted(self._expiring)
        pipe = self.raw.pipeline(transaction=False)
        for k in keys:
            pipe.exists(k)
        gone = [k for k, there in zip(keys, pipe.execute()) if not there]
        self._expiring.difference_update(gone)
        for k in gone:
            self._due.pop(k, None)
        if self.fake and gone:
            self._tell_watchers(gone)
        return gone

    def _tell_watchers(self, keys: list[bytes]) -> None:
        """Redis (6.0.9 on) aborts the transaction of a client that WATCHed a key which expired
        before its EXEC; fakeredis drops an expired key without telling its watchers. The kit tells
        them, so a WATCH-guarded store is judged as a real server answers it (a refresh whose entry
        expired meanwhile is discarded, not stored)."""
        database = self._fake_server.dbs[self.db]
        notify = getattr(database, "notify_watch", None)
        if notify is None:  # a fakeredis without it: its watchers stay as fakeredis leaves them
            return
        with database.condition:  # the server's lock, which fakeredis holds while it runs a command
            for k in keys:
                notify(k)

    def contents(self) -> list[tuple[bytes, Any]]:
        """Every key the run touched and what it holds, leases reduced to 'one is out'."""
        keys = sorted(self._registered)
        return [
            (k, v is not None if k in self.lease_keys else v) for k, v in zip(keys, self.observe(keys)) if v is not None
        ]

    def reset(self) -> None:
        """A fresh world: the previous world's keys are gone."""
        self._expiring.clear()
        self._due.clear()
        if self.fake:
            self.raw.flushdb()  # the kit's own in-process server: nothing else lives there
            return
        keys = list(self._registered)
        if keys:
            self.raw.delete(*keys)

    def close(self) -> list[bytes]:
        """Remove exactly the keys the run created, and the registry; the keys still there that the
        kit never saw a command touch (a script writing keys it did not declare), left alone."""
        with self.gate:
            if self.closed:
                return []
            self.closed = True
            if self.fake:
                self.raw.close()
                return []
            try:
                self._stop.set()
                self.reset()
                self.raw.delete(REGISTRY)
                self._mine(_RELEASE)
                stray = list(self.raw.scan_iter(count=1000))
            except redis.RedisError:
                return []  # the server is gone: its keys were registered, the next run removes them
            finally:
                self.raw.close()
            return stray


class _DirectLooks:
    """The kit's looks at the in-process server, read from its database under the server's lock:
    what ``GET`` and ``PTTL`` would answer now, without a command's trip through redis-py and
    fakeredis. A recorded command looks at its keys before and after it, so on the embedded server
    these were most commands the kit sent (a fifth of a check's time there). Only plain string
    values and absent keys are read so; anything else (a hash, a list, a fakeredis whose insides look
    otherwise) answers None, and the kit sends its commands as before."""

    __slots__ = ("database", "lock")

    def __init__(self, lock: Any, database: Any) -> None:
        self.lock = lock
        self.database = database

    @classmethod
    def of(cls, server: Any, db: int) -> _DirectLooks | None:
        lock = getattr(server, "lock", None)
        database = getattr(server, "dbs", {}).get(db)
        items = getattr(database, "_dict", None)
        if lock is None or not isinstance(items, dict) or not hasattr(database, "time"):
            return None
        return cls(lock, database)

    def _item(self, key: bytes, now: float) -> Any:
        """The key's live item (None: no such key, as a command would find it now); ``False`` when
        it is not one this reader may answer for."""
        item = self.database._dict.get(key)
        if item is None:
            return None
        try:
            expireat, value = item.expireat, item.value
        except AttributeError:
            return False
        if expireat is not None and expireat < now:  # gone for the next command (fakeredis's rule)
            return None
        return item if isinstance(value, bytes) else False

    def strings(self, keys: list[Any]) -> list[Any] | None:
        """Each key's bytes or None, as ``GET`` answers; None unless every key is a plain key holding
        a string or nothing."""
        if any(isinstance(k, HashField) for k in keys):
            return None
        now = time.time()  # the virtual clock's: what fakeredis stamps a command with
        with self.lock:
            items = [self._item(k, now) for k in keys]
        if any(item is False for item in items):
            return None
        return [None if item is None else item.value for item in items]

    def pttl(self, key: bytes) -> int | None:
        """``PTTL``'s answer (-2 gone, -1 no time to live, else milliseconds left); None when this
        reader may not say."""
        now = time.time()
        with self.lock:
            item = self._item(key, now)
            if item is False:
                return None
            if item is None:
                return -2
            if item.expireat is None:
                return -1
            return round((item.expireat - now) * 1000)


def _whole_key(k: Any) -> bytes:
    return k.key if isinstance(k, HashField) else k


def _keys(n: int) -> str:
    return f"{n} key" if n == 1 else f"{n} keys"


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
