"""Memcache-style leases on Redis (Nishtala et al., *Scaling Memcache at Facebook*, NSDI 2013).

A reader that misses is granted a lease: the sole right to fill the key. A writer's ``delete`` voids
every outstanding lease on the key, so a reader that loaded before the write has its stale fill
refused instead of caching an old value for good. While a lease is out, other readers are told
``(None, None)``: retry shortly, or load from the database and return without filling.

Each operation is one Lua script (one atomic ``EVALSHA``) over a redis-py client::

    import redis
    from cachepact.leases import Leases

    leases = Leases(redis.Redis())

    def read(key):
        value, token = leases.get(key)
        if value is not None:
            return value                     # a hit
        value = db.load(key)
        if token is not None:                # we hold the lease: fill (refused if a write came in between)
            leases.set(key, value, token, ttl=300)
        return value

    def write(key, value):
        db.store(key, value)
        leases.delete(key)                   # invalidate, and void any reader's lease

The lease lives under ``prefix + key`` with an expiry of ``lease_ttl`` seconds, so the lease of a
reader that died is given to the next reader once it expires. Every script declares both keys it
touches, the value key first and the lease key second, in ``KEYS``.
"""

from __future__ import annotations

import math
import numbers
import secrets
from collections.abc import Callable
from typing import Any

import redis

from .errors import InvalidArgument

__all__ = ["AsyncLeases", "Leases"]

# KEYS[1] the value, KEYS[2] the lease; ARGV[1] a new token, ARGV[2] the lease's expiry in ms.
# The three outcomes have different reply shapes, never booleans (a RESP3 connection would turn a Lua
# false into a boolean, not nil): a hit is {value}, so a value equal to some token is still a hit; a
# grant is the token itself; nil means another lease is out.
_GET = """
local value = redis.call('GET', KEYS[1])
if value then return {value} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return ARGV[1] end
return nil
"""

# KEYS[1] the value, KEYS[2] the lease; ARGV[1] the caller's token, then optionally ARGV[2] the value
# and ARGV[3] its TTL in ms. Without ARGV[2] it only releases the lease. 1 if the token was the
# outstanding lease, else 0 and nothing changes.
_SET = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
if #ARGV >= 3 then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
elseif #ARGV == 2 then
    redis.call('SET', KEYS[1], ARGV[2])  -- a plain SET also drops any TTL the old entry had
end
return 1
"""

# KEYS[1] the value, KEYS[2] the lease: both go, so the token a reader holds no longer matches.
_DELETE = """
return redis.call('DEL', KEYS[1], KEYS[2])
"""

# What each script is, by the name the conformance kit records it under (its Redis hook knows the
# kit's own scripts by their source or SHA1).
SCRIPTS = {"lease_get": _GET, "lease_set": _SET, "delete": _DELETE}


def _milliseconds(parameter: str, seconds: Any, *, positive: bool = False) -> int:
    """Seconds (int or float) as whole milliseconds, at least 1: ``PX`` takes a positive integer."""
    # bool is an int, but ttl=True is a mistake, not one second
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not math.isfinite(seconds):
        raise InvalidArgument(parameter, seconds, f"must be a finite number of seconds, not {seconds!r}")
    if seconds < 0 or (positive and seconds == 0):
        bound = "more than 0" if positive else "0 or more"
        raise InvalidArgument(parameter, seconds, f"must be {bound} seconds, not {seconds!r}")
    return max(1, round(seconds * 1000))  # round, not ceil: 2.007 * 1000 is 2007.0000000000002


class _LeaseScripts:
    """What both clients share: the scripts registered on the client, keys, tokens, arguments."""

    def __init__(
        self,
        client: Any,
        *,
        lease_ttl: float = 10.0,
        prefix: str = "lease:",
        tokens: Callable[[], str] | None = None,
    ) -> None:
        self._lease_ms = _milliseconds("lease_ttl", lease_ttl, positive=True)
        self._prefix = prefix
        # A bytes key gets a bytes lease key; the prefix is encoded as redis-py encodes a str key.
        self._encode = client.get_encoder().encode
        self._prefix_bytes: bytes = self._encode(prefix)
        self._tokens = tokens if tokens is not None else lambda: secrets.token_hex(8)
        self._spare: list[str] = []  # tokens made but not granted (see _token)
        self._get = client.register_script(_GET)
        self._set = client.register_script(_SET)
        self._delete = client.register_script(_DELETE)

    def _keys(self, key: Any) -> list[Any]:
        """KEYS for a script: the value key as given, then its lease key (str for str, else bytes)."""
        if isinstance(key, str):
            return [key, self._prefix + key]
        return [key, self._prefix_bytes + self._encode(key)]  # bytes, memoryview, or a number redis-py encodes

    def _token(self) -> str:
        # The token is made before the script knows whether it grants, so one that was not granted
        # (a hit, or another lease out) is kept for the next call: tokens are spent only on grants,
        # as env.cache spends them (t1, t2, ... with the kit's counter). It was never stored, so
        # reusing it is safe; list.pop/append are atomic, so no two threads hold the same spare.
        try:
            return self._spare.pop()
        except IndexError:
            return self._tokens()

    def _answer(self, reply: Any, token: str) -> tuple[Any, str | None]:
        if reply is None or isinstance(reply, list):
            self._spare.append(token)
            return (reply[0] if reply is not None else None), None
        # Hand back the token as made, not as the reply decoded it: it is what ``set`` must be given.
        return None, token

    def _set_args(self, value: Any, token: Any, ttl: float | None) -> list[Any] | None:
        """The fill's ARGV, or None when there is no lease to fill under (nothing to send)."""
        args = [token] if value is None else [token, value]
        if ttl is not None:
            ms = _milliseconds("ttl", ttl)  # checked even for a release, so a bad ttl never passes unseen
            if value is not None:
                args.append(ms)
        return None if token is None else args


class Leases(_LeaseScripts):
    """Memcache-style leases on one Redis client (``redis.Redis`` or a subclass such as ``FakeRedis``).

    ``lease_ttl``: seconds a granted lease lasts when its holder never fills or releases it.
    ``prefix``: the lease of ``key`` lives under ``prefix + key``.
    ``tokens``: makes a fresh token per grant (default ``secrets.token_hex(8)``).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        lease_ttl: float = 10.0,
        prefix: str = "lease:",
        tokens: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(client, lease_ttl=lease_ttl, prefix=prefix, tokens=tokens)

    def get(self, key: Any) -> tuple[Any, str | None]:
        """``(value, None)`` on a hit; ``(None, token)`` on a miss that grants the caller the lease;
        ``(None, None)`` while another lease on the key is out."""
        token = self._token()
        return self._answer(self._get(keys=self._keys(key), args=[token, self._lease_ms]), token)

    def set(self, key: Any, value: Any, token: Any, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``token`` is the key's outstanding lease, releasing the lease.

        True if the token was valid (and the value stored). ``value`` None releases the lease
        without storing. ``ttl`` seconds, or None to keep the entry until it is deleted.
        """
        args = self._set_args(value, token, ttl)
        if args is None:
            return False  # no lease was granted (a hit, or another lease was out): nothing to send
        return bool(self._set(keys=self._keys(key), args=args))

    def delete(self, key: Any) -> None:
        """Remove the entry and void every outstanding lease on the key."""
        self._delete(keys=self._keys(key))


class AsyncLeases(_LeaseScripts):
    """``Leases`` for a ``redis.asyncio.Redis`` client: the same scripts, keys and tokens, awaited::

    leases = AsyncLeases(redis.asyncio.Redis())
    value, token = await leases.get(key)
    await leases.set(key, value, token, ttl=300)
    await leases.delete(key)
    """

    def __init__(
        self,
        client: Any,
        *,
        lease_ttl: float = 10.0,
        prefix: str = "lease:",
        tokens: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(client, lease_ttl=lease_ttl, prefix=prefix, tokens=tokens)

    async def get(self, key: Any) -> tuple[Any, str | None]:
        """As ``Leases.get``."""
        token = self._token()
        return self._answer(await self._get(keys=self._keys(key), args=[token, self._lease_ms]), token)

    async def set(self, key: Any, value: Any, token: Any, ttl: float | None = None) -> bool:
        """As ``Leases.set``."""
        args = self._set_args(value, token, ttl)
        if args is None:
            return False
        return bool(await self._set(keys=self._keys(key), args=args))

    async def delete(self, key: Any) -> None:
        """As ``Leases.delete``."""
        await self._delete(keys=self._keys(key))
