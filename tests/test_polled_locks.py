"""Locks polled with sleep (redis-py's ``Lock``, dogpile's ``distributed_lock``, a hand-rolled
``SET NX`` loop): the explorer must end, and still find what such locks leave open.

A waiter polls: a refused ``SET NX``, a ``sleep``, again. Ending each sleep early, in every schedule,
made the schedules endless, and each lock's fresh uuid kept every state apart, so nothing was cut.
The scheduler is fair (a waiter that woke early is offered again once someone else steps) and
random tokens are renamed in state keys.
"""

from __future__ import annotations

import time

import pytest

from cachepact import Adapter, check, prove
from cachepact.conformance.drive import replay as replay_format
from cachepact.conformance.drive.exhaustive import _rename_tokens, explore_schedules
from cachepact.conformance.drive.replay import ConcurrentScenario as Scenario
from cachepact.conformance.drive.world import Setup
from cachepact.conformance.record.servers import Servers
from cachepact.model import CACHE_ASIDE

R1, W1, R2 = ("r", "k1", 0), ("w", "k1", 0), ("r", "k1", 1)

# redis-py's Lock stores with SET NX PX, which these are: not the library's deprecation to test here.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _locked(env, *, fill_inside: bool = True):
    """Cache-aside on env.redis with a redis-py Lock per key around a miss's load and fill (looking
    again once held) and around the write; ``fill_inside=False`` fills after releasing it."""
    r = env.redis

    def read(key):
        value = r.get(f"p:{key}")
        if value is not None:
            return value.decode()
        with r.lock(f"lock:{key}", timeout=10, blocking_timeout=10):
            value = r.get(f"p:{key}")
            if value is not None:
                return value.decode()
            value = env.db.get(key)
            if value is not None and fill_inside:
                r.set(f"p:{key}", value, ex=300)
        if value is not None and not fill_inside:
            r.set(f"p:{key}", value, ex=300)
        return value

    def write(key, value):
        with r.lock(f"lock:{key}", timeout=10, blocking_timeout=10):
            env.db.put(key, value)
            r.delete(f"p:{key}")

    return Adapter(read=read, write=write, decode=bytes.decode)


def _fill_outside(env):
    return _locked(env, fill_inside=False)


def test_a_polled_lock_is_explored_to_the_end_for_two_readers_and_a_writer():
    servers = Servers()  # env.redis's fakeredis and the hook: closed here, as check() closes its own
    try:
        setup = Setup(make=_locked, pattern=CACHE_ASIDE, instances=2, servers=servers)
        ex = explore_schedules(setup, Scenario(ops=(R1, R2, W1)))
    finally:
        servers.close()
    assert ex.complete and ex.failing is None
    assert 50 < ex.runs < 2_000 and ex.pruned > 50  # it branched on the waits, and the state cache cut


def test_a_fill_after_the_lock_is_released_is_the_stale_set_race():
    result = check(_fill_outside, "cache-aside", seed=0, target="t:fill_outside")
    assert result.finding is not None and result.finding.invariant == "coherent-at-rest", result.report()


def test_random_tokens_are_named_by_first_appearance_and_nothing_else_changes():
    a = "lock:k1=7308b29fea2b11f1b74292d09ddc7bdb r1 SET 7308b29fea2b11f1b74292d09ddc7bdb -> k1.v0"
    b = "lock:k1=0c145a30ac6bdc3b r1 SET 0c145a30ac6bdc3b -> k1.v0"
    assert _rename_tokens(a) == _rename_tokens(b) == "lock:k1=<token 1> r1 SET <token 1> -> k1.v0"
    # Two tokens that are one in one state and two in another are different states.
    assert _rename_tokens("0c145a30ac6bdc3b 0c145a30ac6bdc3b") != _rename_tokens("0c145a30ac6bdc3b 9cfb41d1ee34c1e3")
    # A uuid with its dashes is one token.
    assert _rename_tokens("lock=3b7ffb8e-d95e-439b-909d-260dacd56200") == "lock=<token 1>"
    # Short hex, hex inside a word, values, and numbers (a timestamp in ns is compared by order:
    # two states that differ by which of two stamps is older are different states) are left alone.
    for text in (
        "k1.v12 deadbeef",
        "x0c145a30ac6bdc3b",
        "0c145a30ac6bdc3bz",
        "\\x80\\x04\\x95",
        "inv=1764226811000000001 filled=1764226811000000002",
    ):
        assert _rename_tokens(text) == text


def _gives_up(env, tries=10):
    """A hand-rolled SET NX lock tried ``tries`` times, after which the read or write goes ahead
    without it ("better than failing the request"): a writer that gives up while a reader holds the
    lock writes and deletes inside the reader's load and fill."""
    r = env.redis

    def acquire(key):
        for _ in range(tries):
            if r.set(f"lock:{key}", "held", nx=True, px=5000):
                return True
            time.sleep(0.02)  # the kit's sleep: a timed wait
        return False

    def read(key):
        value = r.get(f"p:{key}")
        if value is not None:
            return value.decode()
        locked = acquire(key)
        value = env.db.get(key)
        if value is not None:
            r.set(f"p:{key}", value, ex=300)
        if locked:
            r.delete(f"lock:{key}")
        return value

    def write(key, value):
        locked = acquire(key)
        env.db.put(key, value)
        r.delete(f"p:{key}")
        if locked:
            r.delete(f"lock:{key}")

    return Adapter(read=read, write=write, decode=bytes.decode, cache_key=lambda key: f"p:{key}")


def _spaced_deletes(env, deletes=5):
    """The writer deletes, then deletes again ``deletes - 1`` times, spaced by sleeps."""

    def read(key):
        value = env.cache.get(key)
        if value is None:
            value = env.db.get(key)
            if value is not None:
                env.cache.set(key, value, ttl=300)
        return value

    def write(key, value):
        env.db.put(key, value)
        env.cache.delete(key)
        for _ in range(deletes - 1):
            time.sleep(0.5)
            env.cache.delete(key)

    return Adapter(read=read, write=write)


@pytest.mark.parametrize("make", [_gives_up, _spaced_deletes])
def test_a_loop_of_timed_waits_that_ends_while_others_are_paused_is_explored(make):
    """Fairness alone offers a waiter one early wake per step of another: a loop that must run all
    its rounds while the others are paused (a lock given up after 10 tries, five spaced deletes)
    needs the branch where it retries alone. Both races are found."""
    result = check(make, "cache-aside", seed=0, target=f"t:{make.__name__}")
    assert result.finding is not None and result.finding.invariant == "coherent-at-rest", result.report()
    again = check(make, "cache-aside", replay=result.replay, target=f"t:{make.__name__}")
    assert again.finding is not None and again.finding.invariant == "coherent-at-rest"


_FENCED_FILL = """
local inv = redis.call('GET', KEYS[2])
if inv and inv >= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', 300)
return 1
"""


def _fenced(env):
    """Timestamp fencing with the stamp taken before the DB update (the bug): its fill stores only
    if the key's last invalidation is older than the load. Stamps are 19-digit numbers."""
    r = env.redis
    fill = r.register_script(_FENCED_FILL)

    def read(key):
        value = r.get(f"p:{key}")
        if value is not None:
            return value.decode()
        stamp = str(time.time_ns())
        value = env.db.get(key)
        if value is not None:
            fill(keys=[f"p:{key}", f"inv:{key}"], args=[value, stamp])
        return value

    def write(key, value):
        r.set(f"inv:{key}", str(time.time_ns()))
        env.db.put(key, value)
        r.delete(f"p:{key}")

    return Adapter(read=read, write=write, decode=bytes.decode, cache_key=lambda key: f"p:{key}")


def test_numbers_compared_by_order_are_not_renamed_so_no_false_proof():
    proof = prove(_fenced, "cache-aside", readers=1, writers=1)
    assert proof.complete and not proof.holds


LOCK_ADAPTER = """
import redis
from cachepact import Adapter

def make(env):
    r = redis.Redis.from_url(env.redis_url, **env.redis_options)

    def read(key):
        value = r.get(f"p:{key}")
        if value is not None:
            return value.decode()
        with r.lock(f"lock:{key}", timeout=10):
            value = env.db.get(key)
        if value is not None:
            r.set(f"p:{key}", value, ex=300)  # after releasing: the race
        return value

    def write(key, value):
        with r.lock(f"lock:{key}", timeout=10):
            env.db.put(key, value)
            r.delete(f"p:{key}")

    return Adapter(read=read, write=write, decode=bytes.decode)
"""


def test_a_printed_replay_reruns_the_failure_in_a_new_process(tmp_path):
    """redis-py's Lock makes its tokens with uuid1, whose first call in a process runs a subprocess
    (and takes locks): under control, that added scheduling points to a process's first run only,
    so a replay in a new process landed on other points and passed."""
    import subprocess
    import sys

    (tmp_path / "locked.py").write_text(LOCK_ADAPTER)
    cmd = [sys.executable, "-W", "ignore", "-m", "cachepact", "check", "locked.py:make", "--pattern", "cache-aside"]
    first = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert first.returncode == 1, first.stdout + first.stderr
    replay = next(line for line in first.stdout.splitlines() if line.startswith("Replay: "))
    string = replay.split("--replay ", 1)[1].strip("'")
    again = subprocess.run([*cmd, "--replay", string], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "FAIL coherent-at-rest" in again.stdout, again.stdout + again.stderr


def test_a_loop_longer_than_the_lone_rounds_is_a_pass_that_says_what_it_did_not_explore(monkeypatch):
    """The branch where a waiter retries alone is cut after 64 rounds: giving up after 100 tries is
    not reached, and the report must say so rather than read as a plain pass. Time stands still
    inside races here: with it moving, the lock's 5 s PX runs out under its holder, a failure of its
    own (tests/test_race_clock.py)."""
    monkeypatch.setattr(replay_format, "RACE_JUMPS", 0)
    result = check(lambda env: _gives_up(env, tries=100), "cache-aside", seed=0, target="t:gives_up_100")
    assert result.passed
    assert any("polled alone for 64 rounds" in w for w in result.warnings), result.report()
    assert "polled alone" in result.report()
