"""Code written against redis-py, checked unchanged: every command recorded and judged by its effect.

The embedded default is an in-process fakeredis server; the machine's Redis is used where a test
takes ``redis_server_url`` (skipped outside CI when unreachable, a failure under CI=true).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis

import cachepact
from cachepact import Adapter, check
from cachepact.adapters import redis_py
from cachepact.conformance.drive.world import Setup, World
from cachepact.leases import Leases


def _text(raw):
    return None if raw is None else raw.decode() if isinstance(raw, bytes) else raw


def empty_db(url: str) -> str:
    """A logical database of the machine's Redis that holds nothing, as a URL (skip if none): the one
    CACHEPACT_TEST_REDIS pins, if it names one."""
    from conftest import empty_redis_dbs

    return empty_redis_dbs(url)[0]


def steps_of(make, ops, **servers):
    """The steps one world records for ``ops`` (``("r", "k1")``, ``("w", "k1")``)."""
    from cachepact.conformance.record.servers import Servers
    from cachepact.model import PATTERNS

    s = Servers(**servers)
    try:
        world = World(Setup(make=make, pattern=PATTERNS["cache-aside"], servers=s))
        try:
            world.run_sequence([(kind, key, 0) for kind, key in ops])
            return world.steps, world.finding
        finally:
            world.close()
    finally:
        s.close()


def aside(fill, invalidate, *, lookup=None):
    """A cache-aside adapter over env.redis whose fill and invalidation are the commands given."""

    def make(env):
        r = env.redis

        def read(key):
            value = _text(lookup(r, key) if lookup else r.get(key))
            if value is None:
                value = env.db.get(key)
                if value is not None:
                    fill(r, key, value)
            return value

        def write(key, value):
            env.db.put(key, value)
            invalidate(r, key)

        return Adapter(read=read, write=write)

    return make


# -- effects by observation ---------------------------------------------------------------------------


def _pipeline_fill(r, k, v):
    with r.pipeline() as p:  # MULTI/EXEC
        p.set(k, v)
        p.expire(k, 300)
        p.execute()


def _script_fill(r, k, v):
    r.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, k, v)


FILLS = {
    "set-ex": lambda r, k, v: r.set(k, v, ex=300),
    "set-nx-px": lambda r, k, v: r.set(k, v, nx=True, px=300_000),
    "setex": lambda r, k, v: r.setex(k, 300, v),
    "setnx": lambda r, k, v: r.setnx(k, v),
    "getset": lambda r, k, v: r.getset(k, v),
    "set-get": lambda r, k, v: r.set(k, v, get=True),
    "mset": lambda r, k, v: r.mset({k: v}),
    "pipeline": _pipeline_fill,
    "eval": _script_fill,
}
INVALIDATIONS = {
    "del": lambda r, k: r.delete(k),
    "unlink": lambda r, k: r.unlink(k),
    "getdel": lambda r, k: r.getdel(k),
    "expire-0": lambda r, k: r.expire(k, 0),
    "eval": lambda r, k: r.eval("return redis.call('DEL', KEYS[1])", 1, k),
    "transaction": lambda r, k: r.transaction(lambda p: p.multi() or p.delete(k)),
}


@pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")  # SETEX is in real code
@pytest.mark.parametrize("fill", FILLS, ids=list(FILLS))
def test_a_fill_is_a_store_whatever_command_made_it(fill):
    steps, finding = steps_of(aside(FILLS[fill], INVALIDATIONS["del"]), [("r", "k1"), ("r", "k1")])
    assert finding is None, finding
    cache = [s for s in steps if s.target == "cache" and s.key == "k1"]
    assert [s.action for s in cache] == ["get", "set", "get"], [s.describe() for s in cache]
    assert cache[1].value == b"k1.v0"
    assert cache[2].result == b"k1.v0"  # the second read hit


@pytest.mark.parametrize("invalidation", INVALIDATIONS, ids=list(INVALIDATIONS))
def test_an_invalidation_is_a_removal_whatever_command_made_it(invalidation):
    make = aside(FILLS["set-ex"], INVALIDATIONS[invalidation])
    steps, finding = steps_of(make, [("r", "k1"), ("w", "k1"), ("r", "k1")])
    assert finding is None, finding
    removal = [s for s in steps if s.op == "w1" and s.target == "cache"]
    assert [s.action for s in removal] == ["delete"], [s.describe() for s in removal]
    assert check(make, "cache-aside", concurrency=False, max_examples=20).passed


def test_a_write_that_updates_with_mset_is_caught_whatever_the_command_is_called():
    make = aside(FILLS["set-ex"], lambda r, k: r.mset({k: "k1.v1"}))  # the write stores instead of deleting
    result = check(make, "cache-aside", concurrency=False, max_examples=30, seed=0)
    assert result.finding is not None and result.finding.invariant == "invalidate-not-update", result.report()


def test_a_store_is_read_with_its_ttl_and_shown_as_the_command_sent():
    steps, _ = steps_of(aside(FILLS["set-ex"], INVALIDATIONS["del"]), [("r", "k1")])
    fill = next(s for s in steps if s.action == "set")
    assert fill.describe() == "SET k1 k1.v0 EX 300"
    assert 299 < fill.ttl <= 300


def test_a_multi_exec_is_one_atomic_step_per_key_it_touched():
    steps, _ = steps_of(aside(_pipeline_fill, INVALIDATIONS["del"]), [("r", "k1")])
    fill = [s for s in steps if s.op == "r1" and s.action == "set"]
    assert len(fill) == 1 and fill[0].describe() == "MULTI/EXEC: SET k1 k1.v0; EXPIRE k1 300"


def test_expiry_runs_on_the_kits_clock_with_fakeredis():
    with_ttl = check(redis_py.cache_aside, "cache-aside", concurrency=False, seed=0)
    without = check(aside(lambda r, k, v: r.set(k, v), INVALIDATIONS["del"]), "cache-aside", concurrency=False, seed=0)
    assert "expiry" in with_ttl.reached  # SET ... EX 300, then the clock moved 301 s: the entry went
    assert "expiry" not in without.reached


def test_a_command_whose_keys_cannot_be_named_is_reported_not_guessed():
    make = aside(FILLS["set-ex"], lambda r, k: r.flushdb())
    result = check(make, "cache-aside", concurrency=False, max_examples=10, seed=0)
    assert any("FLUSHDB" in w and "not judged" in w for w in result.warnings), result.warnings
    assert "Warning: Redis command FLUSHDB" in result.report()


def test_the_kits_own_looks_are_never_recorded():
    steps, _ = steps_of(redis_py.cache_aside, [("r", "k1"), ("r", "k1"), ("w", "k1")])
    assert all(s.op != "-" for s in steps), [s.describe() for s in steps]


def test_a_librarys_own_client_reaches_the_run_through_redis_url_and_options():
    def make(env):
        # As Django's RedisCache or dogpile.cache.redis would: a client of its own, from a URL.
        r = redis.Redis.from_url(env.redis_url, **env.redis_options)
        inner = aside(FILLS["set-ex"], INVALIDATIONS["del"])
        return inner(type("E", (), {"redis": r, "db": env.db})())

    steps, _ = steps_of(make, [("r", "k1")])
    assert [s.describe() for s in steps if s.target == "cache"] == ["GET k1", "SET k1 k1.v0 EX 300"]
    assert not check(make, "cache-aside", seed=0).passed  # the stale-set race, found through that client


def test_cachepact_leases_are_recorded_as_the_leases_they_are():
    steps, _ = steps_of(redis_py.cache_aside_leased, [("r", "k1"), ("w", "k1")])
    assert [(s.action, s.describe()) for s in steps if s.target == "cache"] == [
        ("lease_get", "Leases.get(k1)"),
        ("lease_set", "Leases.set(k1)"),
        ("delete", "Leases.delete(k1)"),
    ]


# -- verdicts agree -----------------------------------------------------------------------------------

REDIS_PY = [(p, n, m) for p, d in redis_py.REFERENCE.items() for n, m in d.items()]


def _verdict(result):
    return result.finding.invariant if result.finding else "pass"


@pytest.mark.parametrize(("pattern", "name", "make"), REDIS_PY, ids=[n for _, n, _ in REDIS_PY])
def test_redis_py_references_get_the_same_verdicts_on_fakeredis_and_the_machines_redis(
    pattern, name, make, redis_server_url
):
    expected = "pass" if name in redis_py.RACE_FREE else "coherent-at-rest"
    if name == "write_through_locked":
        # Its lock's every poll is a scheduling point, seconds a schedule over the network: the
        # concurrent check runs on fakeredis with one instance, the sequential one below on the server.
        fake = check(make, pattern, seed=0, max_examples=30, instances=1)
        assert _verdict(fake) == expected, fake.report()
    else:
        fake = check(make, pattern, seed=0, max_examples=30)
        real = check(make, pattern, seed=0, max_examples=30, redis=empty_db(redis_server_url))
        assert (_verdict(fake), _verdict(real)) == (expected, expected), fake.report() + real.report()
    sequential = check(make, pattern, seed=0, concurrency=False, redis=empty_db(redis_server_url))
    assert sequential.passed, sequential.report()


def test_every_catalogue_entry_gets_its_verdict_on_fakeredis_and_on_the_machines_redis(redis_server_url):
    from cachepact.adapters.broken import CATALOGUE

    url = empty_db(redis_server_url)
    wrong = []
    # A derived entry runs another entry's code with another write half: its stores are the same calls.
    for entry in (e for e in CATALOGUE.values() if not e.derived):
        for where in ("fakeredis://", url):
            result = check(
                entry.make, entry.pattern, seed=0, concurrency=entry.concurrent, max_examples=20, redis=where
            )
            if _verdict(result) != entry.invariant:
                wrong.append((entry.name, where, _verdict(result)))
    assert wrong == []
    assert redis.Redis.from_url(url).dbsize() == 0


def test_reference_verdicts_agree_in_memory_on_redis_and_over_sql(redis_server_url, postgres_server_url, tmp_path):
    from cachepact.adapters.reference import RACE_FREE, REFERENCE

    url = empty_db(redis_server_url)
    places = [
        {},
        {"redis": "fakeredis://"},
        {"redis": url},
        {"redis": url, "db": f"sqlite:///{tmp_path / 'cache.db'}"},
        {"redis": url, "db": postgres_server_url},
    ]
    for pattern, adapters in REFERENCE.items():
        for name, make in adapters.items():
            if "locked" in name and pattern != "cache-aside":
                continue  # the places are what this test varies; the locked ones are checked in test_patterns
            # A textbook write-behind (a flusher per process) shows its crossed flushes first.
            first_race = "flush-order" if "write-behind" in pattern else "coherent-at-rest"
            expected = "pass" if name in RACE_FREE else first_race
            results = [check(make, pattern, seed=0, max_examples=15, **where) for where in places]
            wrong = [r.report() for r in results if _verdict(r) != expected]
            assert wrong == [], (name, [_verdict(r) for r in results], *wrong)
    assert list(tmp_path.iterdir()) == []  # the SQLite file the kit made is gone


# -- bad input ----------------------------------------------------------------------------------------


def cli(*args):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cachepact",
            "check",
            "cachepact.adapters.redis_py:cache_aside",
            "--pattern",
            "cache-aside",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--redis", "redis://127.0.0.1:1/0"], ["cannot connect", "is Redis running"]),
        (["--redis", "memcached://127.0.0.1:11211"], ["unknown scheme 'memcached'", "redis://host:port/N"]),
        (["--redis", "redis://127.0.0.1:6379/99"], ["no logical database 99"]),
        (["--redis", "redis://127.0.0.1:6379/abc"], ["'abc' is no logical database number"]),
        (["--db", "mysql://root@127.0.0.1/test"], ["sqlite:///", "postgresql://"]),
        (["--db", "postgresql://postgres@127.0.0.1:1/test"], ["unreachable"]),
    ],
    ids=["unreachable", "scheme", "no-such-db", "db-not-a-number", "db-scheme", "db-unreachable"],
)
def test_a_server_the_kit_cannot_use_is_one_line_and_exit_2(flags, words, redis_server_url):
    done = cli(*flags)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    for word in words:
        assert word in line, line


def test_a_password_never_reaches_the_output(redis_server_url):
    done = cli("--redis", "redis://someone:s3cret@127.0.0.1:6379/5")
    assert done.returncode == 2, done.stderr
    assert "s3cret" not in done.stderr + done.stdout and "***" in done.stderr, done.stderr
    assert "authentication failed" in done.stderr


def test_a_non_empty_logical_database_is_refused_naming_an_empty_one(redis_server_url):
    url = empty_db(redis_server_url)
    users = redis.Redis.from_url(url)
    users.set("someone's:key", "precious")
    try:
        done = cli("--redis", url)
        assert done.returncode == 2, done.stderr
        assert "holds 1 key," in done.stderr and "which is empty" in done.stderr, done.stderr
        assert f"{url.rsplit('/', 1)[0]}/0," not in done.stderr  # database 0 is the applications' own
        assert users.get("someone's:key") == b"precious"
    finally:
        users.delete("someone's:key")


def test_a_script_without_lua_is_one_line_naming_the_fix():
    code = "import sys; sys.modules['lupa'] = None; from cachepact.cli import console; console()"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "check",
            "cachepact.adapters.redis_py:cache_aside_leased",
            "--pattern",
            "cache-aside",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "needs Lua" in done.stderr and "pip install 'fakeredis[lua]'" in done.stderr, done.stderr
    assert "\n" not in done.stderr.strip()


def test_the_public_api_names_the_backend_error():
    assert issubclass(cachepact.BackendError, ConnectionError)
    with pytest.raises(cachepact.BackendError) as e:
        check(redis_py.cache_aside, "cache-aside", redis="redis://127.0.0.1:1/0")
    assert e.value.parameter == "redis" and e.value.url == "redis://127.0.0.1:1/0"


def test_leases_are_the_public_module():
    assert Leases.__module__ == "cachepact.leases"


@pytest.mark.parametrize("where", ["fakeredis", "real"])
def test_commands_return_to_the_adapter_what_redis_py_returns_without_the_kit(where, request):
    """On a real server a command goes out inside the kit's look script or transaction: what the
    adapter gets back must be what redis-py alone returns."""
    url = "fakeredis://" if where == "fakeredis" else empty_db(request.getfixturevalue("redis_server_url"))
    seen = []

    def make(env):
        r = env.redis

        def read(key):
            raw = r.get(key)
            if raw is None:
                value = env.db.get(key)
                if value is not None:
                    seen.append(("set", r.set(key, value, ex=300)))
                    seen.append(("ttl", 0 < r.ttl(key) <= 300))
                    seen.append(("set-get", r.set(key, value, get=True)))
                    seen.append(("mget", r.mget([key, "nothing-here"])))
                    seen.append(("exists", r.exists(key)))
                    seen.append(("hset", r.hset(f"h:{key}", "f", "x")))
                    seen.append(("hgetall", r.hgetall(f"h:{key}")))
                    r.delete(f"h:{key}")
                return value
            return raw.decode()

        def write(key, value):
            env.db.put(key, value)
            seen.append(("del", r.delete(key)))

        return Adapter(read=read, write=write)

    steps_of(make, [("r", "k1"), ("w", "k1")], redis=url)
    assert seen == [
        ("set", True),
        ("ttl", True),
        ("set-get", b"k1.v0"),
        ("mget", [b"k1.v0", None]),
        ("exists", 1),
        ("hset", 1),
        ("hgetall", {b"f": b"x"}),
        ("del", 1),
    ]
    # An error the server answers is raised to the adapter as redis-py raises it.
    fill = aside(lambda r, k, v: (r.set(k, v), r.incr(k)), INVALIDATIONS["del"])  # k1.v0 is no integer
    _, finding = steps_of(fill, [("r", "k1")], redis=url)
    assert finding.invariant == "adapter-error" and "ResponseError" in finding.message, finding


def test_the_lease_proof_holds_for_cachepact_leases_over_redis_py():
    """Every schedule of 2 reads and 2 writes of one key, as for the in-memory leases."""
    proof = cachepact.prove(redis_py.cache_aside_leased, "cache-aside")
    assert proof.holds and proof.complete, proof.report()
    assert proof.schedules > 500  # the schedules really ran (the plain adapter fails within a handful)
    assert not cachepact.prove(redis_py.cache_aside, "cache-aside").holds


def prefixed_leases(*, lease_first: bool = True, delete=lambda leases, r, k: leases.delete(k)):
    """The production shape: cachepact.leases under a key prefix the kit has to learn."""

    def make(env):
        r, leases = env.redis, Leases(env.redis)

        def read(sku):
            key = f"inventory:v1:{sku}"
            if lease_first:
                raw, token = leases.get(key)
                if raw is not None:
                    return raw.decode()
                item = env.db.get(sku)
            else:  # loads first, leases after: the lease guards nothing
                raw = r.get(key)
                if raw is not None:
                    return raw.decode()
                item = env.db.get(sku)
                _, token = leases.get(key)
            if token is not None:
                leases.set(key, item, token, ttl=300)  # None releases the lease
            return item

        def write(sku, item):
            env.db.put(sku, item)
            delete(leases, r, f"inventory:v1:{sku}")

        return Adapter(read=read, write=write)

    return make


def test_leases_under_a_key_prefix_are_learned_from_the_lease_itself():
    """A refused fill stores nothing, so only the read's lease can teach the kit the prefixed key:
    without it a correct leased adapter was a false who-populates."""
    assert check(prefixed_leases(), "cache-aside", seed=0).passed
    late = check(prefixed_leases(lease_first=False), "cache-aside", seed=0)
    assert _verdict(late) == "coherent-at-rest" and "Leases.get before reading the DB" in late.finding.hint
    plain_del = check(prefixed_leases(delete=lambda leases, r, k: r.delete(k)), "cache-aside", seed=0)
    assert _verdict(plain_del) == "write-order", plain_del.report()
    assert "invalidate with Leases.delete(key)" in plain_del.finding.message


def shared_hash(*, invalidate: bool = True):
    """Every key's entry as a field of one hash, as some teams cache a table."""

    def make(env):
        r = env.redis

        def read(pid):
            raw = r.hget("products", pid)
            if raw is not None:
                return raw.decode()
            value = env.db.get(pid)
            if value is not None:
                r.hset("products", pid, value)
            return value

        def write(pid, value):
            env.db.put(pid, value)
            if invalidate:
                r.hdel("products", pid)

        return Adapter(read=read, write=write)

    return make


def hash_per_key(env):
    """Each entry a hash of its own (value and metadata), dropped whole on a write."""
    r = env.redis

    def read(pid):
        fields = r.hgetall(f"prod:{pid}")
        if fields:
            return fields[b"value"].decode()
        value = env.db.get(pid)
        if value is not None:
            with r.pipeline() as p:
                p.hset(f"prod:{pid}", mapping={"value": value, "cached_at": "1700000000"})
                p.expire(f"prod:{pid}", 300)
                p.execute()
        return value

    def write(pid, value):
        env.db.put(pid, value)
        r.delete(f"prod:{pid}")

    return Adapter(read=read, write=write)


@pytest.mark.parametrize("where", ["fakeredis", "real"])
def test_each_field_of_a_hash_is_an_entry_of_its_own(where, request):
    """A shared hash holds several keys' entries: judged field by field, it is no false alarm, and a
    write that forgets HDEL is caught; a hash per key dropped whole by DEL is invalidated."""
    url = {} if where == "fakeredis" else {"redis": empty_db(request.getfixturevalue("redis_server_url"))}
    for make in (shared_hash(), hash_per_key):
        assert check(make, "cache-aside", seed=0, concurrency=False, **url).passed
        assert _verdict(check(make, "cache-aside", seed=0, max_examples=20, **url)) == "coherent-at-rest"
    forgot = check(shared_hash(invalidate=False), "cache-aside", seed=0, concurrency=False, **url)
    assert _verdict(forgot) == "write-order" and "products[k1]" in forgot.finding.message, forgot.report()


def watch_guarded(*, bump: bool = True):
    """Optimistic concurrency: the fill is a MULTI/EXEC under WATCH of a version the write bumps."""

    def make(env):
        r = env.redis

        def read(key):
            raw = r.get(key)
            if raw is not None:
                return raw.decode()
            with r.pipeline() as p:
                p.watch(f"ver:{key}")
                value = env.db.get(key)
                if value is not None:
                    try:
                        p.multi()
                        p.set(key, value, ex=300)
                        p.execute()
                    except redis.WatchError:
                        pass  # a write came in between: what was loaded is not cached
            return value

        def write(key, value):
            env.db.put(key, value)
            if bump:
                r.incr(f"ver:{key}")
            r.delete(key)

        return Adapter(read=read, write=write)

    return make


def test_a_fill_a_watch_refused_is_a_refused_fill_not_a_missing_one():
    """EXEC aborted by WATCH stores nothing, and the read may return without filling (it was a false
    who-populates); without the version bump the race is there and is found."""
    assert check(watch_guarded(), "cache-aside", seed=0).passed
    assert _verdict(check(watch_guarded(bump=False), "cache-aside", seed=0)) == "coherent-at-rest"


def test_a_command_too_big_for_the_look_script_goes_out_in_a_transaction(redis_server_url):
    url = empty_db(redis_server_url)
    many = {f"bulk:{n}": "x" for n in range(4500)}  # 9001 arguments: past Lua's unpack() limit
    steps, finding = steps_of(
        aside(lambda r, k, v: r.mset({k: v, **many}), INVALIDATIONS["del"]), [("r", "k1")], redis=url
    )
    assert finding is None, finding
    assert any(s.action == "set" and s.key == "k1" for s in steps)
    assert redis.Redis.from_url(url).dbsize() == 0


@pytest.mark.parametrize("fill", ["set-ex", "set-nx-px", "getset", "mset", "pipeline", "eval"])
def test_fills_are_stores_on_a_real_server_too(fill, redis_server_url):
    """On a real server commands go out inside the kit's look script or a MULTI: same effects."""
    url = empty_db(redis_server_url)
    steps, finding = steps_of(aside(FILLS[fill], INVALIDATIONS["getdel"]), [("r", "k1"), ("w", "k1")], redis=url)
    assert finding is None, finding
    assert [s.action for s in steps if s.target == "cache" and s.key == "k1"] == ["get", "set", "delete"]


VERSIONED_FILL = """
if (redis.call('GET', KEYS[2]) or '0') == ARGV[2] then
  return redis.call('SET', KEYS[1], ARGV[1], 'EX', 300)
end
return false
"""


def lua_guarded(*, bump: bool = True):
    """A fill in Lua that stores only if the key's version is still the one read before the load."""

    def make(env):
        r = env.redis
        fill = r.register_script(VERSIONED_FILL)

        def read(key):
            raw = r.get(key)
            if raw is not None:
                return raw.decode()
            version = r.get(f"ver:{key}") or b"0"
            value = env.db.get(key)
            if value is not None:
                fill(keys=[key, f"ver:{key}"], args=[value, version])
            return value

        def write(key, value):
            env.db.put(key, value)
            if bump:
                r.incr(f"ver:{key}")
            r.delete(key)

        return Adapter(read=read, write=write)

    return make


def test_a_script_that_refuses_a_stale_fill_is_a_refused_fill():
    """A script that may write and left the entry as it was, where the read was to fill, refused the
    fill (it was a false who-populates); without the version bump the race is found."""
    assert check(lua_guarded(), "cache-aside", seed=0).passed
    assert _verdict(check(lua_guarded(bump=False), "cache-aside", seed=0)) == "coherent-at-rest"


def test_a_scripts_hash_fields_are_entries_on_a_real_server_too(redis_server_url):
    # A field a script adds was never looked at by name: its time to live is its hash's (a KeyError
    # on a real server, where the looks go out with the command and bring each key's TTL).
    from cachepact.adapters import redis_shapes

    url = empty_db(redis_server_url)
    assert check(redis_shapes.lua_lease_hash, "cache-aside", seed=0, concurrency=False, redis=url).passed
    racy = check(redis_shapes.lua_lease_hash_unguarded, "cache-aside", seed=0, max_examples=30, redis=url)
    assert racy.finding is not None and racy.finding.invariant != "adapter-error", racy.report()


def test_an_outbox_hash_a_script_appends_is_a_side_record_not_an_entry():
    # A write's script drops the entry and appends {key, value} to outbox:N, the written value in it:
    # neither the hash's name nor its fields name a key, so it is no entry (no update in the write).
    script = "redis.call('DEL', KEYS[1]) redis.call('HSET', KEYS[2], 'key', ARGV[1], 'value', ARGV[2]) return 1"
    textbook = aside(lambda r, k, v: r.set(f"user:{k}", v, ex=300), None, lookup=lambda r, k: r.get(f"user:{k}"))

    def make(env):
        reads, sent = textbook(env).read, iter(range(10**6))

        def write(key, value):
            env.db.put(key, value)
            env.redis.eval(script, 2, f"user:{key}", f"outbox:{next(sent)}", key, value)

        return Adapter(read=reads, write=write)

    result = check(make, "cache-aside", seed=0, concurrency=False)
    assert result.passed, result.report()


def test_a_getdel_read_looked_as_it_removed():
    # GETDEL tells the read what it removed: a hit, where a plain DEL before the lookup is none.
    make = aside(
        lambda r, k, v: r.set(f"user:{k}", v, ex=300),
        lambda r, k: r.delete(f"user:{k}"),
        lookup=lambda r, k: r.getdel(f"user:{k}"),  # a read-once entry
    )
    result = check(make, "cache-aside", replay="seq/r:k1,r:k1,r:k1")
    assert "hit" in result.reached, result.report()


def test_the_embedded_servers_looks_read_directly_are_what_get_and_pttl_answer():
    """On the in-process server the kit reads its looks from the database instead of sending GET and
    PTTL: the same answers, for every kind of key, a time to live running out on the kit's clock
    included; a key of another type is read by command, as before."""
    from cachepact.backends import HashField
    from cachepact.backends._redis import RedisServer
    from cachepact.conformance.runtime.clock import VirtualClock

    with VirtualClock() as clock:
        server = RedisServer()
        try:
            assert server._direct is not None  # this fakeredis is one the reader knows
            raw = server.raw
            raw.set(b"plain", b"v")
            raw.set(b"empty", b"")
            raw.set(b"short", b"s", px=1500)
            raw.set(b"long", b"l", ex=300)
            raw.hset(b"hash", b"f", b"x")
            raw.rpush(b"list", b"a")
            keys = [b"plain", b"empty", b"short", b"long", b"missing"]

            def by_command(names):
                return [raw.get(k) for k in names], [raw.pttl(k) for k in names]

            for seconds in (0, 1, 2, 400):
                clock.advance(seconds)
                # Read directly first: a key whose time ran out is still in the database until a
                # command meets it, and must read as gone all the same.
                direct = server._direct.strings(keys), [server._direct.pttl(k) for k in keys]
                looked = server.observe(keys)
                values, ttls = by_command(keys)
                assert direct[0] == values and looked == values
                # The kit's clock also runs on in real time: a few milliseconds pass between the two.
                close = [d == t if min(d, t) < 0 else abs(d - t) <= 50 for d, t in zip(direct[1], ttls)]
                assert all(close), (direct, ttls)
            # Not plain strings: the reader says it cannot, and observe asks by command as before.
            assert server._direct.strings([b"plain", b"hash"]) is None
            assert server._direct.strings([HashField(b"hash", b"f")]) is None
            assert server._direct.pttl(b"list") is None
            assert server.observe([b"plain", HashField(b"hash", b"f")]) == [b"v", b"x"]
            assert server.observe([b"hash"])[0][0] == "hash"
        finally:
            server.close()
