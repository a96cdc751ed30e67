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

REDIS_URL = os.environ.get("CACHEPACT_TEST_REDIS", "redis://127.0.0.1:6379")
POSTGRES_URL = os.environ.get("CACHEPACT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _unreachable(what: str, url: str, error: BaseException) -> None:
    import pytest

    reason = f"{what} at {url} is unreachable ({type(error).__name__}: {error})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; under CI=true this is a failure, not a skip", pytrace=False)
    pytest.skip(reason)


def _redis_server() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as e:
        _unreachable("Redis", REDIS_URL, e)
    return REDIS_URL


def _postgres_server() -> str:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=2).close()
    except Exception as e:
        _unreachable("PostgreSQL", POSTGRES_URL, e)
    return POSTGRES_URL


def pytest_configure(config):
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
    """The machine's Redis (a base URL, no database number): skip outside CI when unreachable."""
    return _redis_server()


@pytest.fixture
def postgres_server_url() -> str:
    """The machine's PostgreSQL: skip outside CI when unreachable."""
    return _postgres_server()
