"""How the kit runs Hypothesis, shared by the sequence and the schedule drivers."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky

from ..runtime.signals import Violation


def kit_settings(max_examples: int, seed: int | None, database: Any = None, **extra: Any) -> settings:
    """No example database in the user's folder, no deadline, quiet (the kit prints its own
    report), one bug at a time. Examples come from ``run_seeded``'s seed; with a ``database`` (the
    check's ``example_db``), the failures saved there are tried first (Hypothesis' reuse phase), and
    a new one is saved there once shrunk."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=database,
        derandomize=False,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink) if database is None else (Phase.reuse, Phase.generate, Phase.shrink),
        **extra,
    )


EXAMPLE_PREFIX = b"cachepact-example:"  # every key the example database writes starts so


@contextlib.contextmanager
def example_database(url: str | None) -> Iterator[Any]:
    """Hypothesis' example database on the Redis at ``url`` (``RedisExampleDatabase``), for the
    check's duration: CI runners that share it try each other's failures first. None without a URL.
    A URL the kit cannot use raises ``BackendError`` (parameter ``example_db``) before any checking."""
    if url is None:
        yield None
        return
    import redis
    from hypothesis.extra.redis import RedisExampleDatabase

    from ...backends._redis import SCHEMES, masked
    from ...errors import BackendError

    if not isinstance(url, str):
        raise BackendError("example_db", repr(url), "not a Redis URL; use redis://host:port/N")
    shown = masked(url)
    if urlsplit(url).scheme not in SCHEMES:
        raise BackendError("example_db", shown, "not a Redis URL; use redis://host:port/N")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5.0, socket_timeout=30.0)
        client.connection_pool._cachepact_internal = True  # the kit's own: never recorded
        client.ping()
    except (redis.RedisError, OSError, ValueError) as e:
        raise BackendError("example_db", shown, f"cannot reach it ({e}); start the server or fix the URL") from None
    try:
        yield RedisExampleDatabase(client, key_prefix=EXAMPLE_PREFIX, expire_after=timedelta(days=30))
    finally:
        client.close()


def same_redis_database(a: str, b: str) -> bool:
    """Whether two Redis URLs name one logical database (``localhost`` and ``127.0.0.1`` alike)."""
    import socket

    def where(url: str) -> tuple:
        try:
            parts = urlsplit(url)
            host = parts.hostname or "localhost"
            with contextlib.suppress(OSError):
                host = socket.gethostbyname(host)
            return (host, parts.port or 6379, (parts.path or "/0").strip("/") or "0")
        except (ValueError, TypeError):
            return (url,)

    return isinstance(a, str) and isinstance(b, str) and where(a) == where(b)


def keyed(test: Callable[..., None], key: str) -> Callable[..., None]:
    """``test`` with ``key`` (which check, which driver) in the key Hypothesis files its examples
    under: every check runs the same test function, and one adapter's failures are not another's."""
    test._hypothesis_internal_add_digest = key.encode()  # type: ignore[attr-defined]  (pytest's parametrize uses it too)
    return test


# Without a seed a check still draws the same examples every time. (Hypothesis' own derandomize
# would seed from a digest of the kit's source, so every kit release would change a user's run.)
DEFAULT_SEED = 0

# Examples one Hypothesis run draws at most. Hypothesis keeps what it learns of every example it
# ran (its tree of choices, a cache of results) for as long as the run lasts, about 16 KB an
# example here: a nightly 100,000 would need gigabytes. A larger budget is run as batches of this
# many, each a fresh run under a seed of its own, so a check's memory stays that of one batch.
BATCH = 1000


def batch_seed(seed: int | None, batch: int) -> int | str:
    """The seed of the ``batch``-th batch (from 0) of a check run under ``seed``: the first is the
    seed itself, so a budget of one batch draws what it always drew."""
    base = DEFAULT_SEED if seed is None else seed
    return base if batch == 0 else f"{base}/{batch}"


def run_batches(
    build: Callable[[int], Callable[[], None]], max_examples: int, seed: int | None, *, done: Callable[[], bool]
) -> None:
    """Run ``build(n)`` (a Hypothesis test of ``n`` examples) batch after batch, ``max_examples`` in
    all, until ``done()`` (a failing run was kept)."""
    for batch, start in enumerate(range(0, max_examples, BATCH)):
        run_seeded(build(min(BATCH, max_examples - start)), batch_seed(seed, batch))
        if done():
            return


def run_seeded(test: Callable[[], None], seed: int | str | None) -> None:
    """Run a Hypothesis test under ``seed``; a violation ends it (the test kept the failing run)."""
    chosen = getattr(test, "_hypothesis_internal_use_settings", None)
    test = hypothesis_seed(DEFAULT_SEED if seed is None else seed)(test)
    if chosen is not None and chosen.database is not None:
        # ``@seed`` turns the example database off (a seeded run is taken for a reproduction); the
        # check asked for one (``example_db``): its settings again, the seed kept.
        test._hypothesis_internal_use_settings = chosen  # type: ignore[attr-defined]
    try:
        with _without_local_constants():
            test()
    except Violation:
        return
    except Flaky as e:
        # A violation that did not happen again when Hypothesis reran its example: the test kept the
        # failing run. Anything else inside it is the kit's own failure, never a pass.
        leaves = _leaves(e)
        crash = next((x for x in leaves if not isinstance(x, (Violation, Flaky))), None)
        if crash is not None:
            raise crash from None
        if not any(isinstance(x, Violation) for x in leaves):
            raise  # no violation in it: Hypothesis' own complaint (a strategy that drew differently)
        return
    except Exception as e:
        # Ctrl-C landing inside Hypothesis' own setup can come out as its internal AssertionError,
        # with the KeyboardInterrupt only in the chain: it is still Ctrl-C (exit 130, one line).
        if _interrupted(e):
            raise KeyboardInterrupt from None
        raise


@contextlib.contextmanager
def _without_local_constants() -> Iterator[None]:
    """The kit's draws, blind to the literals of the modules loaded.

    Hypothesis now and then draws an integer from the literals of every module it counts as local
    (not installed in site-packages: the user's, the kit's own when installed editable, whatever the
    process imported so far), which it parses and caches under ``.hypothesis/`` in the working
    directory. For the kit that meant a seed drew other examples from a checkout than from a wheel,
    a second check other examples than the first, and a folder written into the user's project. The
    kit's draws are choices among operations and schedule points, where a literal says nothing: for
    the kit's own runs Hypothesis sees no local literals (its own constants still apply), and the
    user's Hypothesis tests see theirs again after. No such hook in a later Hypothesis: a no-op."""
    providers = importlib.import_module("hypothesis.internal.conjecture.providers")
    original = getattr(providers, "_get_local_constants", None)
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    constants = getattr(providers, "Constants", None)
    if original is None or constants is None or not isinstance(cache, dict):
        yield
        return
    none_loaded = constants()
    cache.clear()  # permitted constants per draw, computed from the literals loaded
    providers._get_local_constants = lambda: none_loaded
    try:
        yield
    finally:
        providers._get_local_constants = original
        cache.clear()


def _leaves(e: BaseException) -> list[BaseException]:
    """The exceptions inside an exception group (FlakyFailure is one), or ``e`` itself."""
    if isinstance(e, BaseExceptionGroup):
        return [leaf for inner in e.exceptions for leaf in _leaves(inner)]
    return [e]


def _interrupted(e: BaseException | None) -> bool:
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def profile_budget() -> tuple[int, int]:
    """(max_examples, stateful_step_count) of the active Hypothesis profile."""
    profile = settings()
    return profile.max_examples, profile.stateful_step_count
