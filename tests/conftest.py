"""Hypothesis profiles: a fast default for CI and everyday runs, a thorough one for nightly runs.

HYPOTHESIS_PROFILE=nightly python -m pytest
"""

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=60, stateful_step_count=20, deadline=None, derandomize=True)
settings.register_profile("nightly", max_examples=1000, stateful_step_count=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# -- real servers -------------------------------------------------------------------------------------
# A test that needs the machine's Redis or PostgreSQL skips with the reason when the server cannot be
# reached, except under CI=true, where an unreachable server is a failure (CI must not go green by
# skipping the very tests that talk to real servers).


def _redis_target(text: str) -> tuple[str, int | None, str]:
    """CACHEPACT_TEST_REDIS as the server's base URL, the logical database it pins (or None: the tests
    find empty ones among 1..15), and what is wrong with it (or ""). ``redis://127.0.0.1:6379/7``,
    ``127.0.0.1:6379/7`` and ``127.0.0.1:6379`` all name a server."""
    url = text if "://" in text else f"redis://{text}"
    scheme, _, rest = url.partition("://")
    netloc, _, db = rest.partition("/")
    db = db.strip("/")
    if not netloc or not (db == "" or db.isdigit()):
        return url, None, f"CACHEPACT_TEST_REDIS={text!r} is not redis://host:port[/N] (or host:port[/N])"
    return f"{scheme}://{netloc}", int(db) if db else None, ""


REDIS_URL, REDIS_DB, REDIS_PROBLEM = _redis_target(os.environ.get("CACHEPACT_TEST_REDIS", "redis://127.0.0.1:6379"))
POSTGRES_URL = os.environ.get("CACHEPACT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _unreachable(what: str, url: str, error: BaseException) -> None:
    _unusable(f"{what} at {url} is unreachable ({type(error).__name__}: {error})")


def _redis_server() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as e:
        _unreachable("Redis", REDIS_URL, e)
    return REDIS_URL


def empty_redis_dbs(url: str, count: int = 1) -> list[str]:
    """URLs of ``count`` empty logical databases of the Redis at ``url`` (a base URL): the one
    CACHEPACT_TEST_REDIS pins, else the first empty ones of 1..15 that are this pytest-xdist worker's
    (each worker its own share of them, so two never take one database at once). Skips (fails under
    CI=true) when there are not that many: tests use only empty databases."""
    import pytest
    import redis

    def empty(n: int) -> bool:
        with redis.Redis.from_url(f"{url}/{n}") as probe:
            return probe.dbsize() == 0

    if REDIS_DB is not None:
        if count > 1:
            pytest.skip(f"needs {count} empty logical databases; CACHEPACT_TEST_REDIS pins one ({REDIS_DB})")
        if not empty(REDIS_DB):
            _unusable(f"the Redis database {url}/{REDIS_DB} CACHEPACT_TEST_REDIS pins is not empty; empty it")
        return [f"{url}/{REDIS_DB}"]
    mine = _worker_dbs()
    found = [f"{url}/{n}" for n in mine if empty(n)][:count]
    if len(found) < count:
        _unusable(
            f"needs {count} empty logical database{'s' * (count > 1)} of {list(mine)} (this test process's share "
            f"of 1..15) on the Redis at {url}"
        )
    return found


def _worker_dbs() -> range:
    """The logical databases (of 1..15) this pytest-xdist worker may take: every one when the tests
    run in one process."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or workers < 2:
        return range(1, 16)
    return range(1 + int(worker[2:]) % workers, 16, workers)


def _unusable(reason: str) -> None:
    import pytest

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; under CI=true this is a failure, not a skip", pytrace=False)
    pytest.skip(reason)


def _postgres_server() -> str:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=2).close()
    except Exception as e:
        _unreachable("PostgreSQL", POSTGRES_URL, e)
    return POSTGRES_URL


def pytest_configure(config):
    if REDIS_PROBLEM:
        import pytest

        raise pytest.UsageError(REDIS_PROBLEM)
    workers = getattr(config.option, "numprocesses", None)
    if REDIS_DB is not None and workers not in (None, 0, 1):
        import pytest

        raise pytest.UsageError(
            f"CACHEPACT_TEST_REDIS pins one Redis database ({REDIS_DB}), which pytest-xdist's workers would "
            "share; run the suite with -n 0"
        )
    config.addinivalue_line("markers", "redis_server: needs the machine's Redis")
    config.addinivalue_line("markers", "postgres_server: needs the machine's PostgreSQL")
    # A shell without job control starts background commands with SIGINT ignored, and a child
    # inherits that: the Ctrl-C tests' cachepact would then never see their SIGINT (as any program
    # started so). A handler of our own here is reset to the default in each child at exec.
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


import pytest  # noqa: E402


@pytest.fixture
def redis_server_url() -> str:
    """The machine's Redis (a base URL, no database number): skip outside CI when unreachable. Tests
    take their databases from ``empty_redis_dbs`` (the pinned one, when CACHEPACT_TEST_REDIS names it)."""
    return _redis_server()


@pytest.fixture
def postgres_server_url() -> str:
    """The machine's PostgreSQL: skip outside CI when unreachable."""
    return _postgres_server()
