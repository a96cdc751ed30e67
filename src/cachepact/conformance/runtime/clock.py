"""The adapter's clock during a check: virtual, so that expiry is drawn, shrunk and replayed.

time-machine moves ``time.time``, ``time.monotonic`` (patched where it is defined, so a library that
bound it at import, as cachetools' ``TTLCache`` does, follows too), ``datetime.now`` and friends. The
clock keeps running with real time, so timeouts and event loops behave, and the kit jumps it
forward by whole seconds; a TTL under a second may therefore run out on its own.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import time_machine


class VirtualClock:
    """A context for one check: ``advance(seconds)`` moves every clock the adapter can read."""

    def __init__(self) -> None:
        self._travel: Any = None
        self._traveller: Any = None

    def __enter__(self) -> VirtualClock:
        self._travel = time_machine.travel(time.time(), tick=True)
        self._traveller = self._travel.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._travel.stop()

    def advance(self, seconds: float) -> None:
        self._traveller.shift(seconds)
