"""A tiny read-through cache library, standing in for dogpile.cache and friends.

The reference and broken read-through adapters use it and name it in ``cache_code``, so its DB
reads and cache fills are the Cache's, as they would be for a real library.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LEASE_RETRIES = 3


class ReadThroughCache:
    def __init__(self, store: Any, loader: Callable[[Any], Any], *, leases: bool = False) -> None:
        self.store = store
        self.loader = loader
        self.leases = leases

    def get(self, key: Any) -> Any:
        if not self.leases:
            value = self.store.get(key)
            if value is None:
                value = self.loader(key)
                if value is not None:
                    self.store.set(key, value)
            return value
        for _ in range(LEASE_RETRIES):
            value, token = self.store.lease_get(key)
            if value is not None:
                return value
            if token is not None:
                value = self.loader(key)
                self.store.lease_set(key, value, token)  # a None value just releases the lease
                return value
        # Another lease stayed out: serve from the DB without filling, as memcache clients do.
        return self.loader(key)

    def invalidate(self, key: Any) -> None:
        self.store.delete(key)
