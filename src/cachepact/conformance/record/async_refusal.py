"""redis.asyncio inside a check: refused, since it is not recorded.

The kit records redis-py's synchronous clients (``redis_hook``). What an asyncio client sent would
change the server out of the kit's sight: judged wrongly (a fill nobody made), and its keys never
listed for removal, so left behind on a real server. Until asyncio adapters are recorded, every
redis.asyncio command sent while a check runs is refused before it leaves the process: the adapter
gets a ``UsageError``, and the check stops with it (exit 2), even where the adapter swallows it.
A thread a check left behind has its asyncio commands refused too, as its synchronous ones are.
Outside a check, redis.asyncio is untouched.

Installed and removed with the redis-py hook (``redis_hook.hooked``). Each patched method keeps
the one it replaced on itself, so nothing here holds state of its own.
"""

from __future__ import annotations

import _thread
import functools
from collections.abc import Callable
from typing import Any

from ...errors import UsageError
from ..runtime.session import left_behind, running

REFUSAL = (
    "redis.asyncio clients are not recorded yet, so the kit cannot judge what one sends (this command "
    "was not sent); drive a synchronous redis.Redis in the adapter: env.redis, or "
    "redis.Redis.from_url(env.redis_url, **env.redis_options)"
)
# What sends commands: a client's own, a pipeline's batch, and a pipeline's commands after WATCH.
PATCHED = (("Redis", "execute_command"), ("Pipeline", "execute"), ("Pipeline", "immediate_execute_command"))


def _refusing(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        session = running()
        if session is None and not left_behind(_thread.get_ident()):
            return await original(self, *args, **kwargs)
        error = UsageError(REFUSAL)
        if session is not None and session.refused is None:
            session.refused = error  # the check stops with it once the operation unwinds
        raise error

    refuse._cachepact_original = original  # type: ignore[attr-defined]
    return refuse


def _classes() -> Any:
    try:
        import redis.asyncio.client
    except ImportError:  # a redis-py without asyncio: nothing to refuse
        return None
    return redis.asyncio.client


def install() -> None:
    """Refuse redis.asyncio's commands while a check runs."""
    client = _classes()
    if client is None:
        return
    for owner, name in PATCHED:
        cls = getattr(client, owner)
        current = cls.__dict__[name]
        if not hasattr(current, "_cachepact_original"):
            setattr(cls, name, _refusing(current))


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


__all__ = ["REFUSAL", "install", "uninstall"]
