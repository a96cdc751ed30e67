"""Each legal difference between a run and the model is a named rule (conformance/judge/rules.py):
here each is tested on its own, on the refinement checker, with the call it allows and, beside it,
the nearest call it does not."""

from __future__ import annotations

from cachepact.conformance.judge import rules
from cachepact.conformance.judge.refinement import Obs, Refinement
from cachepact.model import CACHE_ASIDE, READ_THROUGH, WRITE_THROUGH, Actor, Kind
from cachepact.model._system import NONE

APP, CACHE = Actor.APP, Actor.CACHE
K1 = 0  # k1: the DB holds v0 at the start


def checker(pattern=CACHE_ASIDE) -> Refinement:
    return Refinement(
        pattern, keys=3, absent=(False, False, True), key_names=("k1", "k2", "k3"), value_name=lambda k, v: f"v{v}"
    )


def lookup(found=NONE, *, granted=False, wait=False, leased=False, actor=APP) -> Obs:
    return Obs(Kind.LOOKUP, actor, K1, NONE, (found, granted, wait), leased, granted, (found, granted))


def load(v=0, actor=APP) -> Obs:
    return Obs(Kind.LOAD, actor, K1, result=v, changed=False)


def fill(v=0, *, actor=APP, leased=False, stored=True) -> Obs:
    return Obs(Kind.FILL, actor, K1, v, stored, leased, stored, (v if stored else NONE, False))


def put(v, actor=APP, *, entry=NONE) -> Obs:
    """A DB put, with the key's entry as the store holds it after (a put leaves the cache as it is)."""
    return Obs(Kind.PUT, actor, K1, v, after=(entry, False))


def delete(*, actor=APP, changed=True) -> Obs:
    return Obs(Kind.INVALIDATE, actor, K1, changed=changed)


def run(ref: Refinement, i: int, *calls: Obs):
    """Hand op ``i`` each call; the first rejection (or None)."""
    for obs in calls:
        rejection = ref.observe(i, obs)
        if rejection is not None:
            return rejection
    return None


def filled(ref: Refinement) -> None:
    """A first read of k1 that missed, loaded v0 and filled it."""
    r = ref.begin("r", "r0", K1)
    assert run(ref, r, lookup(), load(), fill()) is None and ref.finish(r, 0) is None


def test_already_stands_a_second_fill_of_the_value_the_entry_holds_is_a_stutter():
    ref = checker()
    filled(ref)
    r = ref.begin("r", "r1", K1)
    assert rules.already_stands(ref, r, ref.ops[r], fill(0))
    assert not rules.already_stands(ref, r, ref.ops[r], fill(3))


def test_unchanged_a_delete_of_nothing_in_a_read_is_a_stutter():
    ref = checker()
    r = ref.begin("r", "r1", K1)
    assert run(ref, r, lookup(), delete(changed=False)) is None


def test_unchanged_a_refused_guarded_fill_with_a_reason_lets_the_read_return_without_filling():
    ref = checker()
    r = ref.begin("r", "r1", K1)
    found = Obs(Kind.FILL, APP, K1, 0, False, False, False, (0, False))  # an add that found an entry
    assert run(ref, r, lookup(), load(), found) is None
    assert ref.finish(r, 0) is None
    raced = checker()
    r = raced.begin("r", "r1", K1)
    assert run(raced, r, lookup(), load()) is None
    w = raced.begin("w", "w1", K1, 1)  # a write overlapped the read: a version check may refuse its fill
    assert run(raced, w, put(1)) is None and raced.finish(w, NONE) is None
    assert run(raced, r, fill(0, stored=False)) is None and raced.finish(r, 0) is None
    claimed = checker()
    r = claimed.begin("r", "r1", K1)
    claimed.ops[r].found_claim = "r2's claim on lease:k1"  # what the judge notes of a marker it could not take
    assert run(claimed, r, lookup(), load()) is None and claimed.finish(r, 0) is None
    ref2 = checker()
    r2 = ref2.begin("r", "r1", K1)
    assert run(ref2, r2, lookup(), load()) is None
    assert ref2.finish(r2, 0).code == "never-filled"  # it never tried


def test_unchanged_a_fill_refused_for_no_reason_the_run_shows_is_still_owed():
    ref = checker()
    r = ref.begin("r", "r1", K1)
    assert run(ref, r, lookup(), load(), fill(0, stored=False)) is None  # an inverted guard: nothing there
    rejection = ref.finish(r, 0)
    assert (rejection.invariant, rejection.code) == ("who-populates", "never-filled")
    assert "guard the right way round" in rejection.reason


def test_waited_load_a_read_told_to_wait_serves_from_the_db_without_filling():
    ref = checker()
    holder = ref.begin("r", "r1", K1)
    assert run(ref, holder, lookup(granted=True, leased=True)) is None
    r = ref.begin("r", "r2", K1)
    assert run(ref, r, lookup(wait=True, leased=True), load()) is None
    assert ref.finish(r, 0) is None


def test_unseen_lookup_a_read_whose_first_call_is_its_load_looked_up_out_of_sight():
    ref = checker()
    r = ref.begin("r", "r1", K1)
    assert run(ref, r, load(), fill()) is None and ref.finish(r, 0) is None
    assert "miss" in ref.reached


def test_unseen_lookup_a_read_that_deletes_before_it_looks_has_not_looked_yet():
    # A read that drops the entry, then looks (always a miss) and loads: no read was served from the
    # cache, so no hit is reached (a false hit made hit-after-fill pass under --strict).
    ref = checker()
    filled(ref)
    ref.reached.clear()
    r = ref.begin("r", "r1", K1)
    assert run(ref, r, delete(), lookup(), load(), fill()) is None and ref.finish(r, 0) is None
    assert "hit" not in ref.reached and "miss" in ref.reached


def test_nil_steps_a_write_may_leave_out_an_invalidation_with_nothing_cached():
    ref = checker()
    w = ref.begin("w", "w1", K1, 1)
    assert run(ref, w, put(1)) is None and ref.finish(w, NONE) is None
    ref2 = checker()
    filled(ref2)
    w2 = ref2.begin("w", "w1", K1, 1)
    assert run(ref2, w2, put(1, entry=0)) is None
    assert ref2.finish(w2, NONE).code == "never-invalidated"


def test_extra_removal_a_delete_before_the_put_again_or_by_a_read_removes_what_it_removes():
    ref = checker()
    filled(ref)
    w = ref.begin("w", "w1", K1, 1)
    assert rules.extra_removal(ref, w, ref.ops[w], delete())  # before its put: the cache may drop any entry
    assert ref.state[1][K1] == NONE
    assert run(ref, w, put(1), delete(changed=False)) is None and ref.finish(w, NONE) is None  # double delete
    related = Obs(Kind.INVALIDATE, APP, 1, changed=True)  # k2's entry, from a write of k1
    assert rules.extra_removal(ref, w, ref.ops[w], related)
    reader = checker()
    filled(reader)
    r = reader.begin("r", "r1", K1)
    assert run(reader, r, lookup(0), delete()) is None  # a read dropping an entry: as an eviction
    assert not rules.extra_removal(reader, r, reader.ops[r], load())  # only removals


def test_extra_removal_a_write_through_delete_is_harmless_before_its_store_and_not_after():
    ref = checker(WRITE_THROUGH)
    w = ref.begin("w", "w1", K1, 1)
    store = Obs(Kind.FILL, CACHE, K1, 1, None, False, True, (1, False))
    assert run(ref, w, put(1, CACHE), delete(actor=CACHE), store) is None and ref.finish(w, NONE) is None
    ref2 = checker(WRITE_THROUGH)
    w2 = ref2.begin("w", "w1", K1, 1)
    rejection = run(ref2, w2, put(1, CACHE), store, delete(actor=CACHE))
    assert (rejection.invariant, rejection.code) == ("write-updates", "write-deleted")


def test_a_write_that_invalidates_only_before_its_put_leaves_what_a_read_filled_in_between():
    ref = checker()
    filled(ref)
    w = ref.begin("w", "w1", K1, 1)
    assert run(ref, w, delete()) is None
    r = ref.begin("r", "r1", K1)
    assert run(ref, r, lookup(), load(0), fill(0)) is None and ref.finish(r, 0) is None
    assert run(ref, w, put(1, entry=0)) is None
    assert ref.finish(w, NONE).code == "never-invalidated"


def test_eviction_the_cache_may_drop_an_entry():
    ref = checker(READ_THROUGH)
    filled_by = ref.begin("r", "r0", K1)
    assert run(ref, filled_by, lookup(actor=CACHE), load(actor=CACHE), fill(actor=CACHE)) is None
    assert ref.finish(filled_by, 0) is None
    r = ref.begin("r", "r1", K1)
    assert run(ref, r, lookup(0, actor=CACHE), delete(actor=CACHE)) is None and "eviction" in ref.reached


def test_db_read_in_write_a_read_modify_write_changes_nothing():
    ref = checker()
    w = ref.begin("w", "w1", K1, 1)
    assert rules.db_read_in_write(ref, w, ref.ops[w], load())
    assert run(ref, w, load(), put(1)) is None and ref.finish(w, NONE) is None


def test_expired_hit_a_read_that_hit_may_load_once_time_has_passed_since_the_fill():
    ref = checker()
    filled(ref)
    ref.clock_moved()
    r = ref.begin("r", "r1", K1)
    assert run(ref, r, lookup(0), load(), fill()) is None and "expiry" in ref.reached
    ref2 = checker()
    filled(ref2)
    r2 = ref2.begin("r", "r1", K1)
    rejection = run(ref2, r2, lookup(0), load())
    assert (rejection.invariant, rejection.code) == ("hit-after-fill", "missed-filled")


def test_store_again_a_write_through_write_may_store_its_value_twice_not_another():
    ref = checker(WRITE_THROUGH)
    w = ref.begin("w", "w1", K1, 1)
    store = Obs(Kind.FILL, CACHE, K1, 1, None, False, True, (1, False))
    assert run(ref, w, put(1, CACHE), store) is None
    assert rules.store_again(ref, w, ref.ops[w], Obs(Kind.STORE, CACHE, K1, 1))
    assert not rules.store_again(ref, w, ref.ops[w], Obs(Kind.STORE, CACHE, K1, 0))


def test_late_lease_a_lease_taken_after_the_load_guards_the_fill_from_then_on():
    ref = checker()
    r = ref.begin("r", "r1", K1)
    assert run(ref, r, lookup(), load(), lookup(granted=True, leased=True)) is None
    assert ref.state.ops[r].token  # the fill is now a lease-guarded one
    w = ref.begin("w", "w1", K1, 1)
    assert run(ref, w, put(1), delete()) is None  # the delete voids it
    assert not ref.state.ops[r].token


def test_every_rule_is_documented_and_listed():
    for rule in rules.ALL:
        assert rule.__doc__ and len(rule.__doc__.split()) > 8, rule.__name__
    assert set(rules.STUTTERS) | set(rules.BEFORE) | set(rules.TOLERATED) <= set(rules.ALL)


def test_unseen_lookup_of_a_read_that_began_with_no_entry_is_a_miss_though_a_write_stored_since():
    # A read whose lookup the kit could not map (a prefixed key not learned yet) began with k1 absent;
    # a write-through write stored meanwhile; the read then loads: it looked when the key was absent.
    ref = checker(WRITE_THROUGH)
    r = ref.begin("r", "r1", K1)
    w = ref.begin("w", "w1", K1, 1)
    store = Obs(Kind.FILL, CACHE, K1, 1, None, False, True, (1, False))
    assert run(ref, w, put(1, CACHE), store) is None and ref.finish(w, NONE) is None
    assert run(ref, r, load(1, CACHE), fill(1, actor=CACHE)) is None and ref.finish(r, 1) is None
    # ... while a read that began with the entry there and loads anyway is still caught
    ref2 = checker(WRITE_THROUGH)
    w2 = ref2.begin("w", "w1", K1, 1)
    assert run(ref2, w2, put(1, CACHE), store) is None and ref2.finish(w2, NONE) is None
    r2 = ref2.begin("r", "r1", K1)
    rejection = run(ref2, r2, load(1, CACHE))
    assert (rejection.invariant, rejection.code) == ("hit-after-fill", "missed-stored")


def test_a_read_may_return_what_a_look_after_its_load_found():
    # Django's get_or_set: get, load, add (refused: a write stored meanwhile), get again -> the newer value.
    ref = checker(WRITE_THROUGH)
    r = ref.begin("r", "r1", K1)
    assert run(ref, r, lookup(actor=CACHE), load(0, CACHE)) is None
    w = ref.begin("w", "w1", K1, 1)
    store = Obs(Kind.FILL, CACHE, K1, 1, None, False, True, (1, False))
    assert run(ref, w, put(1, CACHE), store) is None and ref.finish(w, NONE) is None
    refused_add = Obs(Kind.FILL, CACHE, K1, 0, False, False, False, (1, False))
    assert run(ref, r, refused_add, lookup(1, actor=CACHE)) is None
    assert ref.finish(r, 1) is None
    # ... but not a value it neither loaded nor found
    ref2 = checker(WRITE_THROUGH)
    r2 = ref2.begin("r", "r1", K1)
    assert run(ref2, r2, lookup(actor=CACHE), load(0, CACHE), fill(0, actor=CACHE)) is None
    assert ref2.finish(r2, 1).invariant == "fresh-read"


def test_a_delete_between_a_write_through_put_and_its_store_is_harmless():
    ref = checker(WRITE_THROUGH)
    w = ref.begin("w", "w1", K1, 1)
    store = Obs(Kind.FILL, CACHE, K1, 1, None, False, True, (1, False))
    assert run(ref, w, put(1, CACHE), delete(actor=CACHE, changed=True), store) is None
    assert ref.finish(w, NONE) is None
    ref2 = checker(WRITE_THROUGH)
    w2 = ref2.begin("w", "w1", K1, 1)
    assert run(ref2, w2, put(1, CACHE), delete(actor=CACHE, changed=True)) is None
    assert ref2.finish(w2, NONE).code == "never-stored"  # deleted, and never stored


def test_expired_hit_applies_to_the_reads_own_key_only():
    ref = checker()
    filled(ref)
    ref.clock_moved()
    r = ref.begin("r", "r1", K1)
    other = Obs(Kind.LOAD, APP, 1, result=0, changed=False)  # k2 from the DB, after k1 hit
    assert not rules.expired_hit(ref, r, ref.ops[r], other)
    rejection = run(ref, r, lookup(0), other)
    assert (rejection.invariant, rejection.code) == ("single-load", "read-other-key")


def test_a_read_may_not_return_an_older_value_a_look_after_its_load_found():
    # r1 loads v1; r0's stale fill of v0 lands; r1's add is refused and its second look finds v0:
    # returning v0 is older than what it read (cachetools' "prefer the item already in the cache").
    ref = checker()
    r0, r1 = ref.begin("r", "r0", K1), ref.begin("r", "r1", K1)
    assert run(ref, r0, lookup(), load(0)) is None and run(ref, r1, lookup()) is None
    w = ref.begin("w", "w1", K1, 1)
    assert run(ref, w, put(1), delete(changed=False)) is None and ref.finish(w, NONE) is None
    assert run(ref, r1, load(1)) is None and run(ref, r0, fill(0)) is None
    assert run(ref, r1, Obs(Kind.FILL, APP, K1, 1, False, False, False, (0, False)), lookup(0)) is None
    rejection = ref.finish(r1, 0)
    assert (rejection.invariant, rejection.code) == ("fresh-read", "not-what-it-read")


def test_a_read_that_hit_and_stores_its_value_back_after_a_write_is_named_for_what_it_did():
    # A hit counter kept in the entry (GET, then SET ... KEEPTTL): a write's delete in between is undone.
    ref = checker()
    filled(ref)
    r = ref.begin("r", "r1", K1)
    assert run(ref, r, lookup(0)) is None
    w = ref.begin("w", "w1", K1, 1)
    assert run(ref, w, put(1, entry=0), delete()) is None and ref.finish(w, NONE) is None
    rejection = run(ref, r, fill(0))
    assert (rejection.invariant, rejection.code) == ("who-populates", "filled-after-hit")
