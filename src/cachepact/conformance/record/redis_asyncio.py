"""redis.asyncio inside a check: every command an asyncio client sends is recorded as redis-py's are,
by sending it through a synchronous twin of the client (same server, same encoding, same reply
callbacks), which ``redis_hook`` records.

Why a twin and not a second recorder: the recording (the looks around a command, its effect, the
scheduling point, injected faults, lease scripts, WATCH) is one piece of code, so an asyncio client
and a synchronous one sending the same commands make the same steps, the same replay strings and the
same verdicts. Each operation runs on an event loop of its own, on its own thread (``coroutines``),
so a command that blocks its loop while the kit schedules others blocks nobody else's, exactly as
``env.async_cache``'s calls do.

A twin is made for each pool (and reply callbacks) the run's asyncio clients use: the in-process
server's asyncio connection class, or its URL's host (``redis.asyncio.from_url(env.redis_url)``),
maps to the run's server; any other address maps to a client of that address. Pipelines get a
synchronous pipeline of their own, kept on them, so ``WATCH`` and the ``MULTI``/``EXEC`` after it
share one connection as they do in redis-py.

Outside a check redis.asyncio is untouched. A thread a check left behind has its commands refused,
as its synchronous ones are. Installed and removed with the redis-py hook (``redis_hook.hooked``);
each patched method keeps the one it replaced on itself.
"""

from __future__ import annotations

import _thread
import functools
import inspect
from collections.abc import Callable
from typing import Any

from ..runtime.primitives import real_primitives
from ..runtime.session import left_behind, running

# What sends commands: a client's own, a pipeline's batch, its commands after WATCH, and its reset
# (which ends a WATCH).
PATCHED = (
    ("Redis", "execute_command"),
    ("Pipeline", "execute"),
    ("Pipeline", "immediate_execute_command"),
    ("Pipeline", "reset"),
)

# Connection settings a twin never copies: objects made for asyncio (a retry policy, a parser class,
# a callback), which a synchronous connection would call the wrong way.
_ASYNC_ONLY = frozenset(
    [
        "retry",
        "retry_on_error",
        "parser_class",
        "redis_connect_func",
        "event_dispatcher",
        "connection_class",
        "server",
        "encoder_class",
    ]
)


# What a twin copies from its asyncio client's pool on the in-process server: how replies are
# decoded and which protocol parses them.
_SHARED = ("encoding", "encoding_errors", "decode_responses", "protocol")


def _diverted() -> bool:
    """Whether this command goes through the kit: a check runs, or this thread is one it left behind."""
    return running() is not None or left_behind(_thread.get_ident())


def _twin(client: Any) -> Any:
    """The synchronous client that sends ``client``'s commands during the running check."""
    session = running()
    recording = None if session is None else session.recording
    pool = client.connection_pool
    key = (id(pool), id(client.response_callbacks))
    twins = recording.twins if recording is not None else {}
    found = twins.get(key)
    if found is None:
        with real_primitives():  # its pool's locks guard redis-py's internals: never scheduling points
            found = (pool, client.response_callbacks, _make_twin(pool, recording))
        twins[key] = found  # the pool and callbacks are kept with it, so their ids stay theirs
    twin = found[2]
    twin.response_callbacks = client.response_callbacks
    return twin


def _make_twin(pool: Any, recording: Any) -> Any:
    import redis

    kwargs = dict(pool.connection_kwargs)
    server = None if recording is None else recording.run_server()
    fake_server = kwargs.get("server")
    if server is not None and _on_run_server(kwargs, server):
        db = int(kwargs.get("db") or 0)
        if db != server.db:
            from ...errors import UsageError
            from .redis_hook import _refuse

            raise _refuse(
                recording.session,
                UsageError(
                    f"a redis.asyncio client on logical database {db} of the run's server, whose database is "
                    f"{server.db}: the kit records and removes the run's keys there only; make the client from "
                    "env.redis_url as it is (or use env.async_redis)"
                ),
            )  # the check stops with it (exit 2), even where the adapter catches it
        shared = {k: kwargs[k] for k in _SHARED if k in kwargs}
        return server.client(**shared)
    if fake_server is not None:  # an in-process server of the adapter's own
        import fakeredis

        shared = {k: kwargs[k] for k in (*_SHARED, "db") if k in kwargs}
        return redis.Redis(connection_class=fakeredis.FakeRedisConnection, server=fake_server, **shared)
    sync_class = _sync_connection_class(pool.connection_class)
    accepted = _parameters(sync_class)
    settings = {k: v for k, v in kwargs.items() if k in accepted and k not in _ASYNC_ONLY}
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=sync_class, **settings))


def _on_run_server(kwargs: dict[str, Any], server: Any) -> bool:
    """Whether an asyncio pool's settings point at the run's server."""
    if server.fake:
        from ...backends._redis import FAKE_HOST

        return kwargs.get("server") is server.fake_server or kwargs.get("host") == FAKE_HOST
    return False  # a real server: the twin copies the address, which is the run's or another's


def _sync_connection_class(async_class: type) -> type:
    import redis
    import redis.asyncio.connection as aio

    if issubclass(async_class, aio.UnixDomainSocketConnection):
        return redis.UnixDomainSocketConnection
    if issubclass(async_class, aio.SSLConnection):
        return redis.SSLConnection
    return redis.Connection


@functools.cache
def _parameters(cls: type) -> frozenset[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names.update(
                p.name
                for p in inspect.signature(init).parameters.values()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            )
    return frozenset(names)


def _pipeline_twin(pipe: Any) -> Any:
    """The synchronous pipeline sending ``pipe``'s commands: one per asyncio pipeline, kept on it, so
    a WATCH and the transaction after it go out on one connection."""
    twin = pipe.__dict__.get("_cachepact_twin")
    if twin is None:
        client = _twin(pipe)
        with real_primitives():
            twin = client.pipeline(transaction=pipe.is_transaction)
        pipe._cachepact_twin = twin
    twin.response_callbacks = pipe.response_callbacks
    return twin


def _execute_command(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        if not _diverted():
            return await original(self, *args, **options)
        return _twin(self).execute_command(*args, **options)

    return execute_command


def _immediate_execute_command(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def immediate_execute_command(self: Any, *args: Any, **options: Any) -> Any:
        if not _diverted():
            return await original(self, *args, **options)
        twin = _pipeline_twin(self)
        try:
            return twin.immediate_execute_command(*args, **options)
        finally:
            self.watching = twin.watching

    return immediate_execute_command


def _execute(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def execute(self: Any, raise_on_error: bool = True) -> Any:
        if not _diverted():
            return await original(self, raise_on_error)
        if not self.command_stack and not self.watching:
            return []
        twin = _pipeline_twin(self)
        twin.command_stack = list(self.command_stack)
        twin.explicit_transaction = self.explicit_transaction
        twin.scripts = set(self.scripts)  # an AsyncScript has the sha and source a Script has
        try:
            return twin.execute(raise_on_error)  # the twin resets itself, as redis-py does
        finally:
            self.command_stack = []
            self.scripts = set()
            self.watching = self.explicit_transaction = False

    return execute


def _reset(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def reset(self: Any) -> None:
        twin = self.__dict__.pop("_cachepact_twin", None)
        if twin is not None:
            twin.reset()  # ends a WATCH the twin holds (UNWATCH on its connection); a later check makes its own
        await original(self)

    return reset


_WRAPPERS = {
    "execute_command": _execute_command,
    "immediate_execute_command": _immediate_execute_command,
    "execute": _execute,
    "reset": _reset,
}


def _classes() -> Any:
    try:
        import redis.asyncio.client
    except ImportError:  # a redis-py without asyncio: nothing to record
        return None
    return redis.asyncio.client


def install() -> None:
    """Record redis.asyncio's commands while a check runs."""
    client = _classes()
    if client is None:
        return
    for owner, name in PATCHED:
        cls = getattr(client, owner)
        current = cls.__dict__[name]
        if not hasattr(current, "_cachepact_original"):
            wrapped = _WRAPPERS[name](current)
            wrapped._cachepact_original = current  # type: ignore[attr-defined]
            setattr(cls, name, wrapped)


def uninstall() -> None:
    """redis.asyncio as it was."""
    client = _classes()
    if client is None:
        return
    for owner, name in PATCHED:
        cls = getattr(client, owner)
        original = getattr(cls.__dict__[name], "_cachepact_original", None)
        if original is not None:
            setattr(cls, name, original)


__all__ = ["install", "uninstall"]
