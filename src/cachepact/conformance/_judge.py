"""Judging a recorded run: trace refinement against the pattern's model, plus the invariants.

Each operation's recorded steps are walked through the pattern's read or write program (the
responsibilities come from ``cachepact.model``: who loads, who fills, who writes). The first step
the program does not allow at that point is the culprit, and the invariant it breaks names the
finding. Refinement is stuttering-insensitive: a lookup that changes nothing (a ``get`` inside a
write, a re-check after a miss) is allowed; the invariants judge what it led to.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..model import APP, Actor, Pattern, Step, show
from ._findings import Finding

LOOKUPS = ("get", "lease_get")
FILLS = ("set", "add", "lease_set")


def _lookup_hit(step: Step) -> tuple[bool, bool]:
    """(hit, waiting) for a get or lease_get step."""
    if step.action == "get":
        return step.result is not None, False
    value, token = step.result
    return value is not None, value is None and token is None


class Judge:
    """Holds what the kit knows of the world between operations: DB history, fills, cache keys."""

    def __init__(self, pattern: Pattern, initial: dict[Any, Any], keys: tuple[Any, ...]) -> None:
        self.pattern = pattern
        # Per key, every value the DB has held, in order; a read must return one at or after its floor.
        self.history: dict[Any, list[Any]] = {k: [initial.get(k)] for k in keys}
        self.completed: dict[Any, int] = dict.fromkeys(keys, 0)  # history index of the newest completed write
        self.filled: set[Any] = set()  # filled by a read and not invalidated since
        self.cache_keys: dict[Any, set[Any]] = {k: {k} for k in keys}  # the cache keys an adapter used per key
        self.reached: set[str] = set()

    # -- reads ---------------------------------------------------------------------------------

    def floor(self, key: Any) -> int:
        return self.completed[key]

    def read(
        self, op: str, key: Any, steps: list[tuple[int, Step]], result: Any, *, floor: int, cached_at_start: bool
    ) -> Finding | None:
        p = self.pattern
        load_by, fill_by = p.load_by, p.fill_by
        other = Actor.CACHE if load_by is Actor.APP else Actor.APP
        filled_before = cached_at_start and key in self.filled
        state, loaded, hit_value = "lookup", None, None
        k = show(key)

        def allowed() -> tuple[str, ...]:
            if state == "lookup":
                return (f"cache.get({k})", f"cache.lease_get({k})")
            if state in ("miss", "waiting"):
                return (
                    (f"{load_by}: db.get({k})",)
                    if state == "miss"
                    else (f"cache.lease_get({k})", f"{load_by}: db.get({k})")
                )
            if state == "loaded":
                v = show(loaded)
                return (
                    f"{fill_by}: cache.set({k}, {v})",
                    f"{fill_by}: cache.add({k}, {v})",
                    f"{fill_by}: cache.lease_set({k}, {v}, token)",
                )
            return (f"return {show(hit_value if state == 'hit' else loaded)}",)

        def finding(invariant: str, message: str, at: int | None) -> Finding:
            return Finding(invariant=invariant, message=message, op=op, culprit=at, allowed=allowed())

        for at, s in steps:
            if s.target == "cache":
                self.cache_keys[key].add(s.key)
            if s.target == "db":
                if s.action == "put":
                    return finding("write-order", f"the read {op} wrote the DB; only a write may", at)
                if s.actor is other and state in ("miss", "waiting", "loaded", "filled"):
                    return finding(
                        "who-loads", f"on a miss the DB is read by {load_by} in {p.name}; here {s.actor} read it", at
                    )
                if state == "waiting" and s.key == key and s.actor is load_by:
                    # Another lease stayed out: memcache clients then serve from the DB without filling.
                    state, loaded = "filled", s.result
                    continue
                if state == "miss" and s.key == key:
                    state, loaded = "loaded", s.result
                    self.reached.add("miss")
                    if s.result is None:
                        self.reached.add("absent-read")
                    continue
                if filled_before and state in ("lookup", "hit"):
                    return finding(
                        "hit-after-fill",
                        f"{k} was filled and not invalidated since, yet the read {op} went to the DB",
                        at,
                    )
                what = (
                    "on a hit"
                    if state == "hit"
                    else "without looking up the cache first"
                    if state == "lookup"
                    else "twice"
                )
                return finding("single-load", f"the read {op} read the DB {what}", at)
            if s.action in LOOKUPS:
                if state in ("lookup", "miss", "waiting"):
                    hit, waiting = _lookup_hit(s)
                    if hit:
                        state, hit_value = "hit", s.result if s.action == "get" else s.result[0]
                    else:
                        state = "waiting" if waiting else "miss"
                continue
            if s.action in FILLS:
                if state == "loaded":
                    if s.actor is not fill_by:
                        return finding(
                            "who-populates",
                            f"in {p.name} the entry is filled by {fill_by}; here {s.actor} filled it",
                            at,
                        )
                    if s.value != loaded:
                        return finding(
                            "who-populates", f"the read {op} loaded {show(loaded)} but filled {show(s.value)}", at
                        )
                    state = "filled"
                    self.reached.add("fill")
                    self.filled.add(key)
                    continue
                if (
                    state in ("hit", "filled")
                    and s.action != "lease_set"
                    and s.value == (hit_value if state == "hit" else loaded)
                ):
                    continue  # storing what is already there changes nothing
                why = "before loading from the DB" if state in ("lookup", "miss") else "a second time"
                return finding("who-populates", f"the read {op} filled the entry {why}", at)
            # delete
            return finding("who-populates", f"the read {op} removed the entry; only a write invalidates", at)

        if state == "hit":
            self.reached.add("hit")
        if state == "miss":
            return finding("who-loads", f"the read {op} missed but never loaded from the DB (by {load_by})", None)
        if state == "loaded" and loaded is not None:
            return finding("who-populates", f"the read {op} loaded {show(loaded)} but never filled the entry", None)
        history = self.history[key]
        if result not in history[floor:]:
            newer = show(history[floor])
            told = (
                f"a value the DB never held for {k}"
                if result not in history
                else f"{show(result)}, older than {newer} written before the read began"
            )
            ok = " | ".join(f"return {show(v)}" for v in history[floor:])
            return Finding(
                invariant="fresh-read", message=f"the read {op} of {k} returned {told}", op=op, allowed=(ok,)
            )
        return None

    # -- writes --------------------------------------------------------------------------------

    def write(
        self, op: str, key: Any, value: Any, steps: list[tuple[int, Step]], *, record: bool = True
    ) -> Finding | None:
        """Judge a write; ``record`` appends its value to the DB history (sequential runs; a
        concurrent run builds the history from the trace's puts in the order they happened)."""
        p = self.pattern
        state = "start"
        k, v = show(key), show(value)

        def allowed() -> tuple[str, ...]:
            if state == "start":
                return (f"{p.write_by}: db.put({k}, {v})",)
            if state == "put":
                return (f"cache.delete({k})",)
            return ("return",)

        def finding(invariant: str, message: str, at: int | None) -> Finding:
            return Finding(invariant=invariant, message=message, op=op, culprit=at, allowed=allowed())

        for at, s in steps:
            if s.target == "cache":
                self.cache_keys[key].add(s.key)
            if s.target == "db" and s.action == "put":
                if state == "start" and s.key == key and s.value == value:
                    if s.actor is not p.write_by:
                        return finding("write-order", f"in {p.name} the App writes the DB; here {s.actor} wrote it", at)
                    state = "put"
                    continue
                if state != "start" and s.key == key and s.value == value:
                    continue  # the same put again changes nothing
                if state == "deleted":
                    return finding("write-order", f"the write {op} wrote the DB after invalidating", at)
                return finding("write-order", f"the write {op} put {show(s.key)}={show(s.value)}, not {k}={v}", at)
            if s.action in FILLS:
                return finding(
                    "invalidate-not-update",
                    f"the write {op} stored {show(s.value)} into the cache instead of deleting the entry",
                    at,
                )
            if s.action == "delete":
                if state == "start":
                    return finding("write-order", f"the write {op} invalidated {k} before writing the DB", at)
                state = "deleted"
                continue
            # lookups and DB reads inside a write change nothing

        if state == "start":
            return finding("write-order", f"the write {op} never wrote the DB", None)
        if state == "put":
            return finding("write-order", f"the write {op} wrote the DB but never invalidated {k}", None)
        self.reached.add("write-invalidate")
        self.filled.discard(key)
        if record:
            self.history[key].append(value)
            self.completed[key] = len(self.history[key]) - 1
        return None

    # -- rest ----------------------------------------------------------------------------------

    def at_rest(self, db: Any, cache: Any, op: str) -> Finding | None:
        """With nothing in flight, every cached entry equals the DB value (an absent entry is fine)."""
        for key, cache_keys in self.cache_keys.items():
            truth = db.get(key)
            for ck in sorted(cache_keys, key=repr):
                entry = cache.get(ck)
                if entry is not None and entry != truth:
                    where = show(ck) if ck == key else f"{show(ck)} (for {show(key)})"
                    return Finding(
                        invariant="coherent-at-rest",
                        message=f"after {op}, with nothing in flight, the cache holds {where} = {show(entry)} "
                        f"but the DB holds {show(truth)}",
                        op=op,
                        key=ck,
                    )
        return None


# -- concurrent runs -------------------------------------------------------------------------------


def judge_operations(
    judge: Judge,
    steps: list[Step],
    ops: tuple[tuple[str, Any], ...],
    names: list[str],
    values: dict[int, Any],
    results: dict[int, Any],
    started: dict[int, int],
    ended: dict[int, int],
    errors: dict[int, BaseException],
) -> list[Finding]:
    """Judge every operation of a concurrent run that returned, in the order they returned.

    The DB history is the trace's puts in the order they happened; a read's floor is the newest
    write of its key that had returned before the read began (real-time order).
    """
    for s in steps:
        if s.op in names and s.target == "db" and s.action == "put":
            judge.history.setdefault(s.key, [None]).append(s.value)
    found: list[Finding] = []
    for i in sorted(ended, key=ended.get):
        if i in errors:
            continue
        kind, key = ops[i]
        own = [(n, s) for n, s in enumerate(steps) if s.op == names[i] and s.target != APP]
        if kind == "w":
            f = judge.write(names[i], key, values[i], own, record=False)
        else:
            floor = judge.completed[key]
            history = judge.history[key]
            for j, (kind2, key2) in enumerate(ops):
                if kind2 == "w" and key2 == key and j in ended and ended[j] < started[i] and values[j] in history:
                    floor = max(floor, history.index(values[j]))
            f = judge.read(names[i], key, own, results.get(i), floor=floor, cached_at_start=False)
        if f is not None:
            found.append(f if f.culprit is not None else attrs.evolve(f, culprit=ended[i]))
    return found


def fill_overlapped_write(
    steps: list[Step], names: list[str], ops: tuple[tuple[str, Any], ...], started: dict, ended: dict
) -> bool:
    """Did a read that filled (or tried to) run while a write of the same key was in flight?"""
    for r, (kind, key) in enumerate(ops):
        if kind != "r" or r not in ended:
            continue
        if not any(s.op == names[r] and s.action in FILLS for s in steps):
            continue
        for w, (kind2, key2) in enumerate(ops):
            if kind2 == "w" and key2 == key and w in ended and started[w] < ended[r] and started[r] < ended[w]:
                return True
    return False


def stale_fill(found: Finding, steps: list[Step], cache: Any, *, fallback: int) -> Finding:
    """A stale entry at rest: the culprit is the step that stored it, not the moment it was noticed."""
    fills = [n for n, s in enumerate(steps) if s.target == "cache" and s.key == found.key and s.action in FILLS]
    k, v = found.key, cache.get(found.key)
    hint = (
        f"the same step: the pattern as the seed states it has this race; fill through a lease "
        f"(lease_get, then lease_set({k}, {v}, token)) so the invalidation voids the stale fill"
    )
    return attrs.evolve(found, culprit=fills[-1] if fills else fallback, allowed=(hint,))
