"""Which keys a Redis command touches, and whether it only reads them.

The kit judges a command by what it did to its keys, read from the server around it; this table
only says which keys to read. A command that touches keys the table cannot name (``FLUSHDB``,
``RENAME`` of a key to one it derives, an unknown command with arguments) is *unobserved*: the
report names it rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


def names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Commands that read their keys and change nothing.
READS = names(
    """
    GET MGET EXISTS TTL PTTL TYPE STRLEN GETRANGE SUBSTR HGET HMGET HGETALL HEXISTS HLEN HKEYS HVALS
    HSTRLEN LRANGE LLEN LINDEX SMEMBERS SISMEMBER SMISMEMBER SCARD ZRANGE ZSCORE ZMSCORE ZCARD ZRANK
    ZREVRANGE EXPIRETIME PEXPIRETIME OBJECT DUMP GETBIT BITCOUNT EVAL_RO EVALSHA_RO FCALL_RO WATCH TOUCH
    XLEN XRANGE XREVRANGE ZCOUNT ZRANGEBYSCORE ZREVRANGEBYSCORE
    """
)
# Reads whose reply says nothing of the value (a TTL, a type, OK): the caller saw no entry's value,
# so they are no lookup; EXISTS tells only whether there is one (a miss when it answers 0).
BLIND = names("WATCH TTL PTTL TYPE OBJECT STRLEN EXPIRETIME PEXPIRETIME TOUCH")
# Commands whose first two arguments are keys (a source and a destination).
TWO_KEYS = frozenset(["RENAME", "RENAMENX", "COPY", "LMOVE", "BLMOVE", "RPOPLPUSH", "BRPOPLPUSH", "SMOVE"])
# Commands whose every argument is a key.
ALL_KEYS = frozenset(["DEL", "UNLINK", "EXISTS", "MGET", "TOUCH", "WATCH"])
# Commands whose arguments alternate key, value.
PAIRS = frozenset(["MSET", "MSETNX"])
# Scripts and functions: ``name script-or-sha numkeys key... arg...``.
SCRIPTS = frozenset(["EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"])
# Commands that remove their keys (or, for HDEL, the fields they name).
REMOVALS = frozenset(["DEL", "UNLINK", "GETDEL", "HDEL"])
# Commands on fields of one hash: ``name key field ...``; a field is an entry of its own.
FIELDS_ONLY = frozenset(["HGET", "HEXISTS", "HSTRLEN", "HINCRBY", "HINCRBYFLOAT"])  # name key field ...
FIELD_LISTS = frozenset(["HMGET", "HDEL"])  # name key field field ...
FIELD_PAIRS = frozenset(["HSET", "HMSET", "HSETNX"])  # name key field value field value ...
# Commands with no key that change no key: connection, server and script-cache housekeeping, and
# pub/sub (a channel is no key: PUBLISH tells other services, it stores nothing).
KEYLESS = names(
    """
    PING ECHO SELECT AUTH HELLO QUIT RESET CLIENT INFO TIME DBSIZE CONFIG COMMAND MULTI EXEC DISCARD
    UNWATCH SCRIPT FUNCTION READONLY READWRITE LASTSAVE MEMORY SLOWLOG LATENCY ROLE LOLWUT SCAN KEYS
    RANDOMKEY WAIT WAITAOF ACL MODULE PUBLISH SPUBLISH PUBSUB
    """
)
# Commands whose first argument is their one key (the rest are options or values).
FIRST_KEY = names(
    """
    GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST TTL PTTL
    TYPE INCR DECR INCRBY DECRBY INCRBYFLOAT APPEND STRLEN GETRANGE SETRANGE SUBSTR HGET HSET HSETNX
    HMSET HMGET HDEL HGETALL HEXISTS HINCRBY HINCRBYFLOAT HLEN HKEYS HVALS HSTRLEN LPUSH RPUSH LPUSHX
    RPUSHX LPOP RPOP LRANGE LLEN LINDEX LSET LREM LTRIM SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD
    SPOP ZADD ZREM ZRANGE ZSCORE ZMSCORE ZCARD ZRANK ZREVRANGE ZINCRBY EXPIRETIME PEXPIRETIME DUMP
    RESTORE GETBIT SETBIT BITCOUNT PFADD JSON.GET JSON.SET JSON.DEL XADD XTRIM XDEL XLEN XRANGE XREVRANGE
    ZCOUNT ZRANGEBYSCORE ZREVRANGEBYSCORE ZREMRANGEBYSCORE ZREMRANGEBYRANK ZPOPMIN ZPOPMAX
    """
)


# How the run's keys (k1, k2, ...) appear as a word of their own in a cache key, a field or a name.
RUN_KEY = re.compile(r"(?<![A-Za-z0-9])k\d+(?![A-Za-z0-9])")


# A random token standing alone: a uuid with its dashes, or 16 or more lower-case hex digits with at
# least one letter among them (a lock's uuid4().hex, a lease's token_hex). All digits is a number,
# such as a timestamp in ns, which code compares by order: never renamed.
RANDOM_TOKEN = re.compile(
    r"(?<![0-9A-Za-z-])"
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?=[0-9]*[a-f])[0-9a-f]{16,})"
    r"(?![0-9A-Za-z-])"
)


def command_name(args: Sequence[Any]) -> str:
    """``SET``, ``SCRIPT LOAD`` -> ``SCRIPT``: the word the tables above use."""
    name = args[0]
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    return str(name).split(" ", 1)[0].upper()


def fields_of(name: str, args: Sequence[Any]) -> tuple[Any, list[Any]] | None:
    """(the hash, the fields) a field command names, or None for any other command."""
    if name in FIELDS_ONLY:
        return args[1], list(args[2:3])
    if name in FIELD_LISTS:
        return args[1], list(args[2:])
    if name in FIELD_PAIRS:
        return args[1], list(args[2::2])
    return None


def keys_of(name: str, args: Sequence[Any]) -> list[Any] | None:
    """The keys of command ``args`` (``args[0]`` is its name), or None when the kit cannot say."""
    if name in FIRST_KEY:
        return list(args[1:2])
    if name in TWO_KEYS:
        return list(args[1:3])
    if name in ALL_KEYS:
        return list(args[1:])
    if name in PAIRS:
        return list(args[1::2])
    if name in SCRIPTS:
        try:
            count = int(args[2])
        except (IndexError, TypeError, ValueError):
            return None
        return list(args[3 : 3 + count])
    if name in KEYLESS:
        return []
    return None


__all__ = ["BLIND", "READS", "REMOVALS", "SCRIPTS", "command_name", "fields_of", "keys_of", "names"]
