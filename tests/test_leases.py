"""cachepact.leases: memcache-style leases on Redis, as env.cache's in-memory leases behave.

Every behavioural test runs twice: on fakeredis (a fresh in-process server per test) and on the
machine's Redis. There, the test uses an empty logical database, keys under a prefix of its own, and
deletes exactly the keys it made afterwards: other data on the server is never touched.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
import redis

from cachepact.leases import SCRIPTS, Leases


class Backend:
    """One test's Redis: ``client()`` makes clients on it; ``key()`` names keys under the test's own
    prefix and remembers them (and their lease keys) for the clean-up."""

    def __init__(self, make: Callable[..., redis.Redis]) -> None:
        self.make = make
        self.ns = f"test-leases:{secrets.token_hex(6)}:"
        self.lease_prefix = self.ns + "lease:"
        self.created: set[bytes] = set()
        self.clients: list[redis.Redis] = []

    def client(self, **options: Any) -> redis.Redis:
        c = self.make(**options)
        self.clients.append(c)
        return c

    def key(self, name: str | bytes) -> str | bytes:
        """A key under the test's prefix: str for a str ``name``, bytes for a bytes one."""
        raw = self.ns.encode() + (name if isinstance(name, bytes) else name.encode())
        self.created |= {raw, self.lease_prefix.encode() + raw}
        return raw if isinstance(name, bytes) else raw.decode()

    def leases(self, client: redis.Redis | None = None, **options: Any) -> Leases:
        """Leases under the test's lease prefix, with the kit's deterministic tokens t1, t2, ..."""
        counter = itertools.count(1)
        options.setdefault("tokens", lambda: f"t{next(counter)}")
        return Leases(client if client is not None else self.client(), prefix=self.lease_prefix, **options)

    def lease_key(self, key: str | bytes) -> bytes:
        return self.lease_prefix.encode() + (key if isinstance(key, bytes) else key.encode())


def _empty_database(url: str) -> int:
    """An empty logical database's number (skip if none): the one CACHEPACT_TEST_REDIS pins, if any."""
    from conftest import empty_redis_dbs

    return int(empty_redis_dbs(url)[0].rsplit("/", 1)[1])


@pytest.fixture(params=["fakeredis", pytest.param("redis-server", marks=pytest.mark.redis_server)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        b = Backend(lambda **options: fakeredis.FakeRedis(server=server, **options))
    else:
        url = request.getfixturevalue("redis_server_url")
        n = _empty_database(url)
        b = Backend(lambda **options: redis.Redis.from_url(f"{url}/{n}", **options))
    admin = b.client()
    try:
        yield b
    finally:
        # Exactly the keys this test named, then anything else under its own prefix (a script writing
        # a key it did not name would leave one): removed, and a failure.
        if b.created:
            admin.delete(*b.created)
        stray = list(admin.scan_iter(match=b.ns + "*"))
        if stray:
            admin.delete(*stray)
        for c in b.clients:
            c.close()
        assert stray == [], "the scripts touched keys they did not declare"


# -- get: hit, miss, and the one lease per key ----------------------------------------------------------


def test_a_miss_grants_the_lease_and_then_others_wait(backend):
    leases, k = backend.leases(), backend.key("k")
    assert leases.get(k) == (None, "t1")
    assert leases.get(k) == (None, None)  # the lease is out: the next reader waits
    assert leases.get(k) == (None, None)
    assert leases.get(backend.key("other")) == (None, "t2")  # leases are per key


def test_a_hit_returns_the_value_and_no_token(backend):
    leases, k = backend.leases(), backend.key("k")
    backend.client().set(k, "v")
    assert leases.get(k) == (b"v", None)
    assert backend.client().exists(backend.lease_key(k)) == 0  # a hit takes no lease


def test_tokens_are_spent_only_on_grants(backend):
    """As env.cache counts them: a hit or a wait does not use up a token."""
    leases, k, held = backend.leases(), backend.key("k"), backend.key("held")
    assert leases.get(held) == (None, "t1")
    assert leases.get(held) == (None, None)
    backend.client().set(k, "v")
    assert leases.get(k) == (b"v", None)
    assert leases.get(backend.key("fresh")) == (None, "t2")


def test_default_tokens_are_random_hex(backend):
    leases = Leases(backend.client(), prefix=backend.lease_prefix)
    _, a = leases.get(backend.key("a"))
    _, b = leases.get(backend.key("b"))
    assert re.fullmatch("[0-9a-f]{16}", a) and re.fullmatch("[0-9a-f]{16}", b)
    assert a != b


# -- set ---------------------------------------------------------------------------------------------


def test_set_with_the_lease_stores_and_releases_it(backend):
    leases, k, c = backend.leases(), backend.key("k"), backend.client()
    _, token = leases.get(k)
    assert leases.set(k, "v1", token) is True
    assert c.get(k) == b"v1"
    assert c.exists(backend.lease_key(k)) == 0
    assert leases.get(k) == (b"v1", None)
    assert leases.set(k, "v2", token) is False  # the lease was used up
    assert c.get(k) == b"v1"


def test_set_with_a_wrong_token_is_refused_and_the_lease_stays(backend):
    leases, k, c = backend.leases(), backend.key("k"), backend.client()
    assert leases.get(k) == (None, "t1")
    assert leases.set(k, "v", "t9") is False
    assert leases.set(k, "v", None) is False
    assert c.exists(k) == 0
    assert c.get(backend.lease_key(k)) == b"t1"
    assert leases.set(k, "v", "t1") is True


def test_set_without_any_lease_is_refused(backend):
    leases, k = backend.leases(), backend.key("k")
    assert leases.set(k, "v", "t1") is False
    assert backend.client().exists(k) == 0


def test_a_none_value_releases_the_lease_without_storing(backend):
    leases, k, c = backend.leases(), backend.key("k"), backend.client()
    _, token = leases.get(k)
    assert leases.set(k, None, token) is True
    assert c.exists(k, backend.lease_key(k)) == 0
    assert leases.set(k, None, token) is False  # released already
    assert leases.get(k) == (None, "t2")  # the next reader gets the lease at once


def test_a_second_lease_after_the_fill_is_deleted(backend):
    leases, k = backend.leases(), backend.key("k")
    _, t1 = leases.get(k)
    assert leases.set(k, "v1", t1)
    leases.delete(k)
    assert leases.get(k) == (None, "t2")
    assert leases.set(k, "v2", "t2") is True
    assert leases.get(k) == (b"v2", None)


@pytest.mark.parametrize(
    ("value", "stored"), [("s", b"s"), (b"\x00\xff", b"\x00\xff"), (42, b"42"), (1.5, b"1.5")], ids=repr
)
def test_values_of_each_type_redis_py_accepts(backend, value, stored):
    leases, k = backend.leases(), backend.key("k")
    _, token = leases.get(k)
    assert leases.set(k, value, token) is True
    assert leases.get(k) == (stored, None)


# -- ttl ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ttl", "ms"), [(30, 30_000), (0.25, 250), (1.1, 1100)])
def test_set_with_a_ttl_gives_the_entry_that_expiry(backend, ttl, ms):
    leases, k = backend.leases(), backend.key("k")
    _, token = leases.get(k)
    assert leases.set(k, "v", token, ttl=ttl) is True
    assert ms - 200 < backend.client().pttl(k) <= ms


def test_set_without_a_ttl_keeps_the_entry_and_drops_an_old_ttl(backend):
    leases, k, c = backend.leases(), backend.key("k"), backend.client()
    _, token = leases.get(k)
    c.set(k, "old", ex=60)  # stored meanwhile by other code, with a TTL
    assert leases.set(k, "v", token) is True
    assert c.get(k) == b"v"
    assert c.pttl(k) == -1


# -- delete ------------------------------------------------------------------------------------------


def test_delete_voids_the_lease_so_a_stale_fill_is_refused(backend):
    """The stale-set race: a reader loads v0, a writer stores v1 and deletes, the reader's fill is refused."""
    leases, k, c = backend.leases(), backend.key("k"), backend.client()
    _, token = leases.get(k)  # the reader misses and loads v0 ...
    leases.delete(k)  # ... a writer invalidates ...
    assert c.exists(backend.lease_key(k)) == 0
    assert leases.set(k, "v0", token) is False  # ... and the reader's stale fill is refused
    assert c.exists(k) == 0
    assert leases.get(k) == (None, "t2")


def test_delete_removes_the_entry(backend):
    leases, k, c = backend.leases(), backend.key("k"), backend.client()
    c.set(k, "v")
    leases.delete(k)
    assert c.exists(k) == 0
    assert leases.get(k) == (None, "t1")
    leases.delete(backend.key("never-set"))  # deleting nothing is fine


# -- the lease's own expiry ----------------------------------------------------------------------------


def test_the_lease_expires_after_lease_ttl(backend):
    leases, k, c = backend.leases(lease_ttl=2.5), backend.key("k"), backend.client()
    assert leases.get(k) == (None, "t1")
    assert 2300 < c.pttl(backend.lease_key(k)) <= 2500
    c.delete(backend.lease_key(k))  # as the server does once lease_ttl has passed
    assert leases.get(k) == (None, "t2")  # the next reader is not kept waiting on a dead holder
    assert leases.set(k, "v", "t1") is False
    assert leases.set(k, "v", "t2") is True


def test_the_default_lease_ttl_is_ten_seconds(backend):
    leases, k = backend.leases(), backend.key("k")
    leases.get(k)
    assert 9800 < backend.client().pttl(backend.lease_key(k)) <= 10_000


# -- keys and clients ----------------------------------------------------------------------------------


def test_bytes_and_str_keys_name_the_same_key_and_lease(backend):
    leases, c = backend.leases(), backend.client()
    k = backend.key("k")
    assert leases.get(k.encode()) == (None, "t1")
    assert c.get(backend.lease_key(k)) == b"t1"
    assert leases.get(k) == (None, None)  # the same lease, named as str
    assert leases.set(k, "v", "t1") is True
    assert leases.get(k.encode()) == (b"v", None)


def test_a_bytes_key_that_is_not_utf8(backend):
    leases, c = backend.leases(), backend.client()
    k = backend.key(b"\xff\x00k")
    assert leases.get(k) == (None, "t1")
    assert c.get(backend.lease_key(k)) == b"t1"
    assert leases.set(k, b"\xfe", "t1") is True
    assert c.get(k) == b"\xfe"
    leases.delete(k)
    assert c.exists(k, backend.lease_key(k)) == 0


def test_a_client_with_decode_responses(backend):
    leases, k = backend.leases(backend.client(decode_responses=True)), backend.key("k")
    assert leases.get(k) == (None, "t1")
    assert leases.set(k, "v", "t1") is True
    assert leases.get(k) == ("v", None)
    leases.delete(k)
    _, token = Leases(backend.client(decode_responses=True), prefix=backend.lease_prefix).get(k)
    assert isinstance(token, str) and len(token) == 16


def test_each_operation_is_one_evalsha_declaring_both_keys(backend, monkeypatch):
    client = backend.client()
    leases, k = backend.leases(client), backend.key("k")
    leases.get(backend.key("warm-up"))  # loads the scripts (a first EVALSHA may meet NOSCRIPT)
    leases.set(backend.key("warm-up"), "v", "t1")
    leases.delete(backend.key("warm-up"))
    sent: list[tuple] = []
    send = client.execute_command

    def record(*args: Any, **options: Any) -> Any:
        sent.append(args)
        return send(*args, **options)

    monkeypatch.setattr(client, "execute_command", record)
    lease_key = backend.lease_prefix + k
    operations = [
        (lambda: leases.get(k), leases._get.sha, ["t2", 10_000]),
        (lambda: leases.set(k, "v", "t2", ttl=2.007), leases._set.sha, ["t2", "v", 2007]),
        (lambda: leases.set(k, None, "t3"), leases._set.sha, ["t3"]),
        (lambda: leases.delete(k), leases._delete.sha, []),
    ]
    for operation, sha, argv in operations:
        sent.clear()
        operation()
        assert sent == [("EVALSHA", sha, 2, k, lease_key, *argv)]


def test_scripts_maps_the_kits_action_names_to_the_lua_sources(backend):
    assert set(SCRIPTS) == {"lease_get", "lease_set", "delete"}
    leases = backend.leases()
    assert [leases._get.script, leases._set.script, leases._delete.script] == list(SCRIPTS.values())


# -- bad arguments -------------------------------------------------------------------------------------


@pytest.mark.parametrize("lease_ttl", [0, -1, 0.0, float("nan"), float("inf"), "10", None, True])
def test_a_bad_lease_ttl_is_a_value_error(backend, lease_ttl):
    with pytest.raises(ValueError, match=r"^lease_ttl must be (more than 0 seconds|a finite number of seconds), not "):
        Leases(backend.client(), lease_ttl=lease_ttl)


@pytest.mark.parametrize("ttl", [-1, -0.001, float("nan"), float("inf"), "5", True])
@pytest.mark.parametrize("value", ["v", None], ids=["fill", "release"])
def test_a_bad_ttl_is_a_value_error_and_changes_nothing(backend, ttl, value):
    leases, k, c = backend.leases(), backend.key("k"), backend.client()
    assert leases.get(k) == (None, "t1")
    with pytest.raises(ValueError, match=r"^ttl must be (0 or more seconds|a finite number of seconds), not "):
        leases.set(k, value, "t1", ttl=ttl)
    assert c.exists(k) == 0
    assert c.get(backend.lease_key(k)) == b"t1"  # the lease is still the caller's


def test_a_zero_ttl_is_one_millisecond(backend):
    leases, k = backend.leases(), backend.key("k")
    _, token = leases.get(k)
    assert leases.set(k, "v", token, ttl=0) is True
    assert backend.client().pttl(k) in (-2, 0, 1)  # gone, or about to be
