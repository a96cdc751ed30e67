"""``env.cache`` on a Redis server, and the kit's view of what a Redis server holds.

``env.cache`` keeps its contract on Redis: a value comes back as the object stored (pickled, behind
a marker, so the kit tells its own payloads from an adapter's bytes), leases are
``cachepact.leases``'s, and ``ttl`` is the server's expiry. Keys that are text are stored as that
text, so ``redis-cli`` shows ``k1``; other keys by their ``repr``.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Hashable
from typing import Any

from ..leases import Leases
from . import HashField
from ._redis import RedisServer

MAGIC = b"cachepact:pickle:"  # env.cache's own payloads start with it
LEASE_PREFIX = "cachepact:lease:"


def redis_key(key: Any) -> Any:
    if isinstance(key, (bytes, HashField)):
        return key
    if isinstance(key, str):
        return key.encode()
    return b"cachepact:key:" + repr(key).encode()


def unwrap(payload: Any) -> Any:
    """What a key holds, as the kit judges it: env.cache's objects unpickled, anything else as read."""
    if isinstance(payload, bytes) and payload.startswith(MAGIC):
        return pickle.loads(payload[len(MAGIC) :])
    return payload


class RedisView:
    """The kit's view of a Redis server: what a cache key's entry holds, read without recording."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self._names: dict[bytes, Hashable] = {}  # Redis key -> the key the adapter used

    @property
    def gate(self) -> Any:
        return self.server.gate

    def observe(self, keys: list[bytes]) -> list[Any]:
        return [unwrap(v) for v in self.server.observe(keys)]

    @staticmethod
    def unwrap(payload: Any) -> Any:
        return unwrap(payload)

    def peek(self, key: Hashable) -> Any:
        return self.observe([redis_key(key)])[0]

    def lease_out(self, key: Hashable) -> bool:
        return bool(self.server.raw.exists(LEASE_PREFIX.encode() + redis_key(key)))

    def look(self, key: Hashable) -> tuple[Any, bool]:
        rk = redis_key(key)
        payload, lease = self.observe([rk, LEASE_PREFIX.encode() + rk])
        return payload, lease is not None

    def expire(self) -> list[Hashable]:
        """Keys whose time to live ran out (the kit's clock moved past it; fakeredis only)."""
        gone = []
        for k in self.server.expired():
            gone.append(self._names.get(k) or _text(k))
            gone += sorted(self.server.fields.get(k, ()))  # a hash's fields went with it
        return gone

    def expiring(self) -> list[tuple[Hashable, float]]:
        """Each key that will expire, with the seconds it has left on the kit's clock (in-process server only)."""
        return [(self._names.get(k) or _text(k), left) for k, left in self.server.expiring()]

    def ttl_bounds(self) -> list[tuple[Hashable, float]]:
        """Each key that will expire, with the seconds it has left (a real server's too)."""
        return [(self._names.get(k) or _text(k), left) for k, left in self.server.ttl_bounds()]

    def lease_for(self, name: Any) -> Any:
        """The key whose entry ``name`` (as ``expire`` names keys) is the ``cachepact.leases`` lease
        of, or None when it is no such lease."""
        for lease, key in self.server.leased.items():
            if (self._names.get(lease) or _text(lease)) == name:
                return self._names.get(key) or _text(key)
        return None

    def live_tokens(self) -> set:
        return {_text(v) for k, v in self.server.contents() if k in self.server.lease_keys and isinstance(v, bytes)}

    def state_key(self) -> Any:
        return repr(self.server.contents())

    def snapshot(self) -> dict[Any, Any]:
        return {self._names.get(k) or _text(k): unwrap(v) for k, v in self.server.contents()}


class RedisCache(RedisView):
    """``env.cache`` on the run's Redis server (``--redis``): the in-memory cache's contract."""

    def __init__(self, server: RedisServer) -> None:
        super().__init__(server)
        counter = itertools.count(1)
        self._leases = Leases(server.raw, prefix=LEASE_PREFIX, tokens=lambda: f"t{next(counter)}")

    def _key(self, key: Hashable) -> bytes:
        self.server.refuse_if_closed()
        rk = redis_key(key)
        if rk not in self._names:
            self._names[rk] = key
            lease = LEASE_PREFIX.encode() + rk
            self.server.register([rk, lease])
            self.server.lease_keys.add(lease)
        return rk

    def get(self, key: Hashable) -> Any:
        return unwrap(self.server.raw.get(self._key(key)))

    def set(self, key: Hashable, value: Any, ttl: float | None = None) -> None:
        rk = self._key(key)
        if value is None or ttl == 0:  # None is never stored; a ttl of 0 is gone at once
            self.server.raw.delete(rk)
            return
        self.server.raw.set(rk, MAGIC + pickle.dumps(value), px=_ms(ttl))

    def add(self, key: Hashable, value: Any, ttl: float | None = None) -> bool:
        rk = self._key(key)
        if value is None:
            return not self.server.raw.exists(rk)
        stored = bool(self.server.raw.set(rk, MAGIC + pickle.dumps(value), nx=True, px=_ms(ttl) if ttl else None))
        if stored and ttl == 0:
            self.server.raw.delete(rk)
        return stored

    def delete(self, key: Hashable) -> None:
        self._leases.delete(self._key(key))

    def lease_get(self, key: Hashable) -> tuple[Any, Any]:
        payload, token = self._leases.get(self._key(key))
        return unwrap(payload), _text(token) if token is not None else None

    def lease_set(self, key: Hashable, value: Any, token: Any, ttl: float | None = None) -> bool:
        if token is None:
            return False
        rk = self._key(key)
        payload = None if value is None else MAGIC + pickle.dumps(value)
        stored = self._leases.set(rk, payload, token, ttl=ttl if ttl else None)
        if stored and ttl == 0:
            self.server.raw.delete(rk)
        return bool(stored)


def _ms(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, round(ttl * 1000))


def _text(x: Any) -> Any:
    if isinstance(x, bytes):
        try:
            return x.decode()
        except UnicodeDecodeError:
            return x
    return x
