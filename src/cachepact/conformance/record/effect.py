"""What one call did to its key, as the judge reads it."""

from __future__ import annotations

from typing import Any, NamedTuple


class Effect(NamedTuple):
    """What a call did to its key, read from the store around it: the entry (cache) or value (DB)
    before and after, and whether a lease was out on it before and after."""

    before: Any
    after: Any
    lease_before: bool = False
    lease_after: bool = False

    @property
    def changed(self) -> bool:
        return self.before != self.after or self.lease_before != self.lease_after
