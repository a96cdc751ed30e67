"""Flask-Caching (cachelib backends), as its documentation shows it, on its Redis backend at the
run's server (``CACHE_TYPE="RedisCache"``, ``CACHE_REDIS_URL=env.redis_url``,
``CACHE_OPTIONS=env.redis_options``): ``@cache.memoize`` with ``cache.delete_memoized`` on write,
and ``@cache.cached`` with a key per item and ``cache.delete`` on write. Both are read-through: the
decorator calls the function on a miss and fills.

``cache_code`` names ``flask_caching`` and ``cachelib``: a call made while their code is on the
stack is the Cache's, so the decorated function's DB read is the Cache loading.
"""

from __future__ import annotations

from typing import Any

from cachepact import Adapter
from cachepact.errors import MissingDependency

try:
    from flask import Flask
    from flask_caching import Cache
except ImportError as e:  # pragma: no cover - exercised in a venv without the extra
    raise MissingDependency("Flask-Caching", "cachepact[flask]", needed_for="cachepact.adapters.libraries.flask") from e

TIMEOUT = 300
CACHE_CODE = ("flask_caching", "cachelib")


def _app(env) -> tuple[Any, Any]:
    app = Flask(__name__)
    cache = Cache(
        app,
        config={
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": env.redis_url,
            "CACHE_OPTIONS": env.redis_options,
            "CACHE_DEFAULT_TIMEOUT": TIMEOUT,
        },
    )
    return app, cache


def _adapter(env, app: Any, load: Any, invalidate: Any) -> Adapter:
    """Reads through the decorated ``load``, writes the DB then ``invalidate(key)``, each inside the
    app context Flask-Caching needs."""

    def read(key):
        with app.app_context():
            return load(key)

    def write(key, value):
        env.db.put(key, value)
        with app.app_context():
            invalidate(key)

    return Adapter(read=read, write=write, cache_code=CACHE_CODE)


def memoize(env) -> Adapter:
    """``@cache.memoize()`` on the loader; ``cache.delete_memoized(load, key)`` on write."""
    app, cache = _app(env)

    @cache.memoize(timeout=TIMEOUT)
    def load(key):
        return env.db.get(key)

    return _adapter(env, app, load, lambda key: cache.delete_memoized(load, key))


def cached(env) -> Adapter:
    """``@cache.cached(make_cache_key=...)``, a key per item; ``cache.delete(that key)`` on write."""
    app, cache = _app(env)

    def item_key(key):
        return f"item:{key}"

    @cache.cached(timeout=TIMEOUT, make_cache_key=item_key)
    def load(key):
        return env.db.get(key)

    return _adapter(env, app, load, lambda key: cache.delete(item_key(key)))
