"""One check's servers: where ``env.db``, ``env.cache`` and ``env.redis`` live, world after world.

By default the DB and the cache are in memory, fresh for every world, and ``env.redis`` is a client
of an in-process fakeredis server made the first time an adapter asks for it. ``redis=`` puts
``env.redis`` and ``env.cache`` on a real server; ``db=`` puts ``env.db`` in SQLite or PostgreSQL.
Every world starts from the same state on them (the kit removes the previous world's keys and rows),
and ``close`` leaves the servers as the check found them.
"""

from __future__ import annotations

from typing import Any

from ...backends import HashField
from ...backends._memory import MemoryCache, MemoryDB
from ...errors import BackendError
from ..runtime.primitives import real_primitives
from ..runtime.signals import ServerLost
from .redis_hook import hooked


class Servers:
    def __init__(self, redis: str | None = None, db: str | None = None) -> None:
        self.redis_url = redis
        self.db_url = db
        self._redis: Any = None
        self.sql: Any = None
        self._hook: Any = None
        self.unobserved: set[str] = set()  # Redis commands whose keys the kit could not name
        self.undeclared: dict[str, set[str]] = {}  # a script -> keys it changed without naming them in KEYS
        self.closed = False
        self.lost: BackendError | None = None  # the SQL database went away mid-run
        try:
            if redis is not None:
                from ...backends._redis import FAKE_SCHEME, RedisServer

                # fakeredis:// is the in-process server with env.cache on it too (as on a real one).
                fake = redis.rstrip("/").rstrip(":") == FAKE_SCHEME.rstrip(":/")
                with real_primitives():
                    self._redis = RedisServer(None if fake else redis)  # connects now: a bad URL fails first
                self._install_hook()
            if db is not None:
                from ...backends._sql import open_sql_db

                self.sql = open_sql_db(db)
        except BaseException:
            self.close()
            raise

    @property
    def redis_shown(self) -> str | None:
        """The ``redis=`` URL as reports show it (password masked), or None."""
        if self.redis_url is None or self._redis is None:
            return None
        return "fakeredis://" if self._redis.fake else self._redis.shown

    @property
    def db_shown(self) -> str | None:
        return self.sql.url if self.sql is not None else None

    @property
    def warnings(self) -> list[str]:
        """Commands whose effects the kit could not observe, so could not judge, named."""
        unobserved = [
            f"{name} (it changed {', '.join(sorted(self.undeclared[name]))} without naming them: seen because the "
            "run had touched them before)"
            if name in self.undeclared
            else name
            for name in sorted(self.unobserved)
        ]
        if not unobserved:
            return []
        return [
            f"Redis command{'s' if len(unobserved) > 1 else ''} {', '.join(unobserved)} may touch keys "
            f"{'they do' if len(unobserved) > 1 else 'it does'} not name: what that did to keys the run had not "
            "touched before was not judged; use commands that name their keys (DEL, SET, a script's KEYS)"
        ]

    def redis(self) -> Any:
        """The run's Redis server; the in-process one is made when an adapter first asks for it."""
        if self._redis is None:
            from ...backends._redis import RedisServer

            with real_primitives():
                self._redis = RedisServer(None)
            self._install_hook()
        return self._redis

    def _install_hook(self) -> None:
        """From now until ``close``, every redis-py client's commands are recorded."""
        self._hook = hooked()
        self._hook.__enter__()

    def check_alive(self) -> None:
        """A server that went away mid-run ends the check: its verdicts would be the outage's."""
        if self.lost is not None:
            raise ServerLost(self.lost)
        if self._redis is None:
            return
        if self._redis.problem is not None:
            raise ServerLost(BackendError("redis", self._redis.shown, self._redis.problem))
        if self._redis.lost is not None:
            raise ServerLost(self._gone(self._redis.lost))

    def _gone(self, e: BaseException) -> BackendError:
        return BackendError(
            "redis",
            self._redis.shown,
            f"the server went away during the run ({' '.join(str(e).split())}); start it again and rerun: "
            "the next run removes the keys this one left",
        )

    def fresh(self, initial: dict[Any, Any]) -> tuple[Any, Any]:
        """A world's DB and cache, holding ``initial`` and nothing, whatever the last world left."""
        if self.sql is not None:
            try:
                self.sql.reset(initial)
            except BackendError as e:
                raise ServerLost(e) from None
            db = self.sql
        else:
            db = MemoryDB(initial)
        if self._redis is not None:
            try:
                self._redis.reset()
            except Exception as e:  # redis-py's ConnectionError, TimeoutError
                raise ServerLost(self._gone(e)) from None
        if self.redis_url is not None:
            from ...backends._redis_cache import RedisCache

            return db, RedisCache(self._redis)
        return db, MemoryCache()

    def view(self, cache: Any) -> Any:
        """What the judge reads the cache through: ``cache``, and the Redis server ``env.redis`` uses."""
        if self._redis is None or self.redis_url is not None:
            return cache  # env.cache is on that very server (or nothing used Redis)
        from ...backends._redis_cache import RedisView

        return Both(cache, RedisView(self._redis))

    def redis_view(self, cache: Any) -> Any:
        """How the redis-py hook reads the server: env.cache's own payloads decoded."""
        if self.redis_url is not None:
            return cache
        from ...backends._redis_cache import RedisView

        return RedisView(self._redis)

    @property
    def notes(self) -> list[str]:
        """What a report says about where the check ran."""
        out = []
        if self.redis_url is not None and not self._redis.fake:
            out.append(
                f"Redis: {self._redis.shown} (its expiry runs on real time, not the kit's clock: entries "
                "outlive the clock's jumps)"
            )
            if self._redis.cleaned:
                n = self._redis.cleaned
                out.append(f"Removed {n} key{'' if n == 1 else 's'} an interrupted earlier run left there")
        if self.sql is not None:
            out.append(f"DB: {self.sql.url}")
        return out

    def close(self) -> list[str]:
        """Leave every server as the check found it; what could not be removed, as warnings."""
        warnings: list[str] = []
        if self.closed:
            return warnings
        self.closed = True
        stray = self._redis.close() if self._redis is not None else []  # first: it refuses commands from now on
        if self._hook is not None:
            self._hook.__exit__(None, None, None)
            self._hook = None
        if self._redis is not None and stray:
            shown = ", ".join(repr(k) for k in stray[:5]) + (", ..." if len(stray) > 5 else "")
            warnings.append(
                f"the run left {len(stray)} keys on {self._redis.shown} that no command it saw named "
                f"({shown}); a script touching keys it does not declare? They were left alone"
            )
        if self.sql is not None:
            self.sql.close()
        return warnings


class Both:
    """The in-memory ``env.cache`` and the Redis server ``env.redis`` talks to, as one cache to judge."""

    def __init__(self, memory: MemoryCache, redis: Any) -> None:
        self.memory = memory
        self.redis = redis

    def peek(self, key: Any) -> Any:
        found = self.memory.peek(key)
        if found is None and isinstance(key, (str, bytes, HashField)):
            return self.redis.peek(key)
        return found

    def look(self, key: Any) -> tuple[Any, bool]:
        return self.memory.look(key)

    def expire(self) -> list[Any]:
        return self.memory.expire() + self.redis.expire()

    def expiring(self) -> list[tuple[Any, float]]:
        return self.memory.expiring() + self.redis.expiring()

    def ttl_bounds(self) -> list[tuple[Any, float]]:
        return self.memory.ttl_bounds() + self.redis.ttl_bounds()

    def lease_for(self, name: Any) -> Any:
        return self.redis.lease_for(name)

    def live_tokens(self) -> set:
        return self.memory.live_tokens() | self.redis.live_tokens()

    def state_key(self) -> Any:
        return (self.memory.state_key(), self.redis.state_key())

    def snapshot(self) -> dict[Any, Any]:
        return {**self.redis.snapshot(), **self.memory.snapshot()}


__all__ = ["Both", "Servers"]
