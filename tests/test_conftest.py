"""The suite's own settings: CACHEPACT_TEST_REDIS names the machine's Redis, and may pin the one
logical database the suite uses (a shared server where only one database is the tests')."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

import conftest


@pytest.mark.parametrize(
    ("setting", "base", "db"),
    [
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379", None),
        ("redis://127.0.0.1:6379/7", "redis://127.0.0.1:6379", 7),
        ("127.0.0.1:6379/7", "redis://127.0.0.1:6379", 7),
        ("127.0.0.1:6380", "redis://127.0.0.1:6380", None),
        ("rediss://user:pw@cache.internal:6380/3/", "rediss://user:pw@cache.internal:6380", 3),
    ],
)
def test_the_redis_setting_is_a_url_or_host_port_with_an_optional_database(setting, base, db):
    # Before: the whole setting was the base URL, and tests appended /N to it ("...6379/7/1").
    assert conftest._redis_target(setting) == (base, db, "")


def test_a_redis_setting_that_names_no_database_is_a_usage_error():
    env = {**os.environ, "CACHEPACT_TEST_REDIS": "127.0.0.1:6379/seven"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", __file__],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert "CACHEPACT_TEST_REDIS='127.0.0.1:6379/seven' is not redis://host:port[/N]" in done.stderr


def test_a_pinned_database_is_the_one_the_tests_use_and_must_be_empty(redis_server_url, monkeypatch):
    [found] = conftest.empty_redis_dbs(redis_server_url)  # unpinned: the first empty one of 1..15
    pinned = int(found.rsplit("/", 1)[1])
    monkeypatch.setattr(conftest, "REDIS_DB", pinned)
    assert conftest.empty_redis_dbs(redis_server_url) == [f"{redis_server_url}/{pinned}"]
    with pytest.raises(pytest.skip.Exception, match="needs 3 empty logical databases; CACHEPACT_TEST_REDIS pins one"):
        conftest.empty_redis_dbs(redis_server_url, 3)  # a test that writes to other databases does not run
    users = redis.Redis.from_url(found)
    users.set("cachepact-test:someone's", "precious")
    try:
        monkeypatch.delenv("CI", raising=False)
        with pytest.raises(pytest.skip.Exception, match="pins is not empty"):
            conftest.empty_redis_dbs(redis_server_url)
    finally:
        users.delete("cachepact-test:someone's")
