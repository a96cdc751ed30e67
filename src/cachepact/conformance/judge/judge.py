"""Judging a run as it happens, by stepping the model (``cachepact.model``'s refinement checker).

The judge is the refinement mapping between the adapter's world and the model's: cache keys to the
run's keys, payloads to the values they stand for (``Adapter.decode``), each call to the model step
it is (``Obs``). The model says whether the step is one the pattern allows at that moment; the
judge turns its answer into a ``Finding`` in the adapter's own terms, and checks, at every moment
nothing is in flight, that every cached entry (under whatever key the adapter stored it) stands for
what the DB holds.

Cache keys are mapped without configuration when they can be, from every look, store and removal
(``key_of``): a key named as the run names it, a payload that holds one of the run's values, a
negative entry a read stores, a read's lease, a cache key naming one run key as a word of its own
(provisional until a store shows it holds an entry). ``Adapter.cache_key`` fixes the mapping
instead (each app instance's). Keys that are no entry (locks, leases, markers, counters) are the
adapter's own coordination: whose *claim* each is decides whether a read that finds it may skip its
fill (``_claim``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

import attrs

from ...backends import HashField
from ...errors import DefinitionError
from ...model import Kind, Pattern, Step, show
from ...model._participants import FLUSH as FLUSH_KIND
from ...model._participants import READ, REFRESH, WRITE, OpKind
from ...model._properties import BY_NAME
from ...model._system import ABSENT as ABSENT_ID
from ...model._system import CACHE_F, DB_F, DIRTY, LOADED, MARKS, NONE, OPS
from .._contract import ABSENT, NO_ENTRY, Adapter
from ..drive.replay import INITIAL, KEYS
from ..record.decode import TOKEN, UNDECODABLE, default_decode
from ..record.env import Effect, one_line
from ..record.redis_commands import BLIND, RANDOM_TOKEN, READS, RUN_KEY, command_name
from ..runtime.session import Session
from .findings import Finding
from .refinement import Obs, Refinement, Rejection

KEY_INDEX = {k: n for n, k in enumerate(KEYS)}


class _Raised:
    """What an operation that raised (once a fault reached it) returned, for ``Judge.finish``."""

    def __repr__(self) -> str:
        return "RAISED"


RAISED = _Raised()
ABSENT_AT_START = tuple(k not in INITIAL for k in KEYS)
_VALUE = re.compile(r"(k\d+)\.v(\d+)")
FILLS = ("set", "add", "lease_set")


@attrs.define
class _Phantoms:
    """Values no write made (another key's, garbage): each gets an id below the model's, for messages."""

    shown: dict[int, str] = attrs.Factory(dict)
    ids: dict[str, int] = attrs.Factory(dict)

    def id_of(self, text: str) -> int:
        if text not in self.ids:
            self.ids[text] = -10 - len(self.ids)
            self.shown[self.ids[text]] = text
        return self.ids[text]


class Judge:
    """One run's judge: ``begin``, ``observe`` each step, ``finish`` each operation, ``at_rest``."""

    def __init__(
        self,
        pattern: Pattern,
        adapter: Adapter,
        *,
        peek: Callable[[Any], Any],
        session: Session | None = None,
        others: tuple[Adapter, ...] = (),
        faults: bool = False,
    ) -> None:
        self.pattern = pattern
        # Faults (``--faults``): the fault invariants are judged; a key whose entry a write's failed
        # (or skipped) invalidation left behind -> (the write, the step, how), until the entry changes;
        # and, per cache key, how long such an entry stayed stale at most (its time to live).
        self.faults = faults
        self.failed_invalidation: dict[int, tuple[str, int, str]] = {}
        self.staleness: dict[str, float] = session.staleness if session is not None else {}
        self._session = session
        self._raised: set[str] = set()  # operations that raised (a write that did is acknowledged to nobody)
        session = session if session is not None else Session()
        self._peeking = session.within(session.peeking)  # cache_key's reads of env are the kit's peeks
        self._decoding = session.within(session.decoding)  # decode may not call env
        self.broken: DefinitionError | None = None  # the user's mapping failed: the check stops (exit 2)
        self.refinement = Refinement(
            pattern, keys=len(KEYS), absent=ABSENT_AT_START, key_names=KEYS, value_name=self.name
        )
        self.decode: Callable[[Any], Any] = adapter.decode or default_decode
        self.cache_keys: dict[Any, int] = {}  # the adapter's cache key -> the run's key index
        self.cache_key = adapter.cache_key
        # Each app instance names its entries with its own cache_key (a version it keeps in process is
        # its own): a key's entry is under every cache key any instance's reads would reach.
        self._cache_key_fns = [a.cache_key for a in (adapter, *others) if a.cache_key is not None]
        if self.cache_key is not None:
            self.cache_keys = self._mapped()
        self.peek = peek
        self.claim_keys: dict[Any, int] = self._claim_keys(adapter.claim_key)  # declared claims -> key
        self._by_key: list[list[Any]] = [[ck for ck, n in self.cache_keys.items() if n == k] for k in range(len(KEYS))]
        self._unsettled: set[int] = set()  # keys changed since the last rest point
        self._provisional: set[Any] = set()  # cache keys learned by the run key they name, no store yet
        self._bookkeeping: set[Any] = set()  # cache keys that hold the adapter's bookkeeping: no entry
        self._histories: set[Any] = set()  # cache keys a write kept an older value under: never an entry
        self._looked: set[Any] = set()  # cache keys some read looked at (hit or miss): where reads are served
        self._claims: dict[Any, tuple[str, bool]] = {}  # a key that is no entry -> (who stored it, has a TTL)
        self._retired: dict[Any, int] = {}  # cache keys cache_key no longer gives (a version moved on)
        self._found_claims: dict[str, str] = {}  # a read -> the claim it found (for the race's hint)
        self._unmapped: set[Any] = set()  # keys stored that are no entry, for the final state
        self._write_value: dict[str, Any] = {}  # a write's own value, by op
        self._write_ops: set[str] = set()  # the names of the run's writes
        self.op_index: dict[str, int] = {}
        self.phantoms = _Phantoms()
        self._ids: dict[tuple[int, str], int] = {}  # value_id of string values, which runs repeat
        self._decoded: dict[str | bytes, Any] = {}
        self.finding: Finding | None = None
        self.findings: list[Finding] = []
        self.redis_leases = False  # the run used cachepact.leases (for the write-order message)
        # Background workers (a refresh thread, a flusher): each unit of their work on one key is an
        # operation of the model's, begun at the worker's first call on that key.
        self.workers: dict[str, OpKind] = {}
        self._units: dict[str, int] = {}  # a worker -> the model slot of its unit in flight
        self._busy: set[str] = set()  # workers at work (started, not idle): the system is not at rest

    @property
    def reached(self) -> set[str]:
        return self.refinement.reached

    # -- values and keys ----------------------------------------------------------------------------

    def value_id(self, k: int, value: Any) -> int:
        """A value as the model numbers it: 0 is what the DB held at the start, n the n-th write's."""
        if type(value) is str:
            known = self._ids.get((k, value))
            if known is None:
                known = self._ids[k, value] = self._value_id(k, value)
            return known
        return self._value_id(k, value)

    def _value_id(self, k: int, value: Any) -> int:
        if value is NO_ENTRY:
            return NONE
        if value is UNDECODABLE:
            return self.phantoms.id_of("an entry cachepact cannot decode (pass decode= to say what it stands for)")
        if value is None:
            return 0 if ABSENT_AT_START[k] else NONE
        if value is ABSENT:
            return 0 if ABSENT_AT_START[k] else ABSENT_ID
        if isinstance(value, str):
            m = _VALUE.fullmatch(value)
            if m and m.group(1) == KEYS[k]:
                return int(m.group(2))
        return self.phantoms.id_of(show(value))

    def name(self, k: int, v: int, *, entry: bool = False) -> str:
        """How reports write value ``v`` of key ``k`` (``entry``: as a cached entry, where "no value"
        is a negative entry, ABSENT)."""
        if v == NONE:
            return "None"
        if v == ABSENT_ID or (entry and v == 0 and ABSENT_AT_START[k]):
            return "ABSENT"
        if v == 0:
            return INITIAL.get(KEYS[k], "None")
        if v < 0:
            return self.phantoms.shown.get(v, "?")
        return f"{KEYS[k]}.v{v}"

    def decoded(self, payload: Any) -> Any:
        """What a payload stands for; UNDECODABLE when ``decode`` cannot say (or fails)."""
        if payload is None:
            return None
        if type(payload) is str or type(payload) is bytes:  # runs store the same few payloads over and over
            known = self._decoded.get(payload)
            if known is None:
                known = self._decoded[payload] = self._decode(payload)
            return known
        return self._decode(payload)

    def _decode(self, payload: Any) -> Any:
        if _side_record(payload):
            return UNDECODABLE  # a list, a set, a hash read whole: a side record, never one key's entry
        try:
            with self._decoding:
                return self.decode(payload)
        except DefinitionError as e:
            self.broken = self.broken or e
            return UNDECODABLE
        except Exception:
            return UNDECODABLE

    def key_of(self, ck: Any, decoded: Any, *, op: Any, call: str, leases: bool = False) -> int | None:
        """The run's key whose entry ``ck`` is, learning it from every call (``call``: ``"look"``,
        ``"store"``, ``"removal"``, ``"lease"``) of an operation ``op``; None: not an entry.

        What teaches, without ``cache_key``: a cache key that is the run's key itself; a payload that
        holds a value of the key, stored by a read or found by the key's own read, or a write's own
        new value it stored; a negative entry a read stored; a read's first lease (taken to fill
        that very entry); and a cache key that names exactly one of the run's keys (``user:k1``,
        ``products[k1]``) looked up, removed or stored by an operation of that key. A key learned by
        its name alone is provisional until a store confirms it: one that turns out to hold the
        adapter's bookkeeping (a lock's token, a version counter: anything that is no value) is no
        entry from then on, nor is a side record (a list, a set, a stream, a hash read whole) or a
        history (an older value a write keeps under a key of its own), nor a staging key (a read's value
        under a key no read has looked at, named by a random token, not a key: built to be renamed into
        place)."""
        try:
            known = self.cache_keys.get(ck)
        except TypeError:
            return None
        if call == "look" or call == "lease":
            self._looked.add(ck)
            if isinstance(ck, HashField):
                self._looked.add(_text(ck.key))  # a look into a hash: its fields are where reads are served
        if known is not None and ck not in self._provisional:
            return known  # the common case: a key learned for good
        if ck in self.claim_keys or ck in self._histories:
            return None  # a claim the adapter declared, or a history: never an entry
        bookkeeping = decoded is not None and _no_value(decoded)
        if known is not None:
            if ck in self._provisional and leases:
                self._provisional.discard(ck)  # a lease is only ever taken on an entry
            elif ck in self._provisional and (call == "store" or call == "look") and decoded is not None:
                history = (
                    call == "store" and op.kind == WRITE and decoded not in (NO_ENTRY, self._write_value.get(op.name))
                )
                if bookkeeping or history:
                    # A name that looked like an entry's holds the adapter's bookkeeping, or a history.
                    self._forget(ck)
                    if history:
                        self._histories.add(ck)
                    return None
                self._provisional.discard(ck)
            return known
        if self.cache_key is not None:
            return None
        if ck in self._bookkeeping:
            if bookkeeping or decoded is None or call not in ("store", "look"):
                return None
            # It holds a value now (a payload the kit could not read before, a negative entry): the
            # learning below decides again.
            self._bookkeeping.discard(ck)
        if ck in KEY_INDEX:
            n = KEY_INDEX[ck]
        elif bookkeeping and decoded is not None:
            self._bookkeeping.add(ck)
            return None
        elif (owner := _token_key(decoded)) is not None and (
            (call == "store" and (op.kind == READ or decoded == self._write_value.get(op.name)))
            or (call == "look" and op.kind == READ and owner == op.key)
        ):
            named = _named_key(ck)
            if call == "store" and op.kind == READ and named is None and _staging(ck) and not self._was_looked(ck):
                # A read's value under a key no read has looked at: a staging key (built, then
                # RENAMEd or COPYed into place), not where reads are served. What it is moved into is
                # judged; what an aborted move leaves there is no stale entry. A read that looks there
                # later teaches it as an entry then. A key whose name says its key (user:k1) is that
                # key's entry at once (a read that keeps its own index of what it cached fills it
                # first), and so is an alias with no random token (slug:..., by-sku:...): an adapter
                # may cache a value under several keys, and each must stay coherent.
                return None
            n = owner if named is None else named  # a key named for k2 holding k1's value is k2's entry
        elif op.kind == READ and ((decoded is ABSENT and call == "store") or (call == "lease" and not op.leased_once)):
            n = op.key  # a negative entry a read stored, or its first lease: its own entry
        elif call == "store" and op.kind == WRITE and owner is not None:
            self._histories.add(ck)  # an older value a write keeps under a key of its own: a history
            return None
        elif owner is None and _named_key(ck) == op.key:
            n = op.key
            self._provisional.add(ck)
        else:
            return None
        self.cache_keys[ck] = n
        self._by_key[n].append(ck)
        self._unsettled.add(n)
        return n

    def _was_looked(self, ck: Any) -> bool:
        """Whether some read looked at ``ck`` (a hash's field: or at the whole hash, as a script that
        declares the hash does before it writes a field it names in ARGV)."""
        if ck in self._looked:
            return True
        return isinstance(ck, HashField) and _text(ck.key) in self._looked

    def _claim_keys(self, claim_key: Callable[[Any], Any] | None) -> dict[Any, int]:
        """``claim_key``'s cache keys, each the claim on one run key's entry."""
        if claim_key is None:
            return {}
        out: dict[Any, int] = {}
        with self._peeking:
            for n, key in enumerate(KEYS):
                given = _user_call(claim_key, key, "claim_key", "the cache key (or keys) of its claim")
                # A list or set names several; a tuple is one key (env.cache keys may be tuples).
                for ck in given if isinstance(given, (list, set, frozenset)) else (given,):
                    _hashable(ck, "claim_key", key)
                    out[ck] = n
        return out

    def _forget(self, ck: Any) -> None:
        """A provisionally learned cache key is the adapter's bookkeeping: no entry, from now on."""
        n = self.cache_keys.pop(ck)
        self._by_key[n].remove(ck)
        self._provisional.discard(ck)
        self._bookkeeping.add(ck)

    def _mapped(self) -> dict[Any, int]:
        """``cache_key``'s mapping now: it may change as the run goes (a versioned key)."""
        assert self.cache_key is not None
        with self._peeking:
            return {_cache_key(fn, key): n for fn in self._cache_key_fns for n, key in enumerate(KEYS)}

    def _follow_cache_key(self) -> None:
        """Read ``cache_key`` again; a key whose entry moved to another cache key now stands for what
        that cache key holds (the old one is unreachable: not the entry any more)."""
        try:
            mapped = self._mapped()
        except DefinitionError as e:  # raised on an operation's thread: the world ends the check with it
            self.broken = self.broken or e
            return
        if mapped == self.cache_keys:
            return
        moved = {n for ck, n in mapped.items() if self.cache_keys.get(ck) != n}
        for ck, n in self.cache_keys.items():
            if mapped.get(ck) != n:
                self._retired[ck] = n  # unreachable now: a fill there is one the versioning voided
                if self._write_ops & self.op_index.keys() and self.entry_id(n, self.peek(ck)) != NONE:
                    self.reached.add("invalidate")  # a write moved the version away from an entry
        self.cache_keys = mapped
        self._by_key = [[ck for ck, n in mapped.items() if n == k] for k in range(len(KEYS))]
        for k in moved:
            entry = next((e for ck in self._by_key[k] if (e := self.entry_id(k, self.peek(ck))) != NONE), NONE)
            self.refinement.resync(k, entry)
            self._unsettled.add(k)

    def cache_keys_of(self, k: int) -> list[Any]:
        """The cache keys of key ``k``'s entry, in the order the run met them."""
        return self._by_key[k]

    # -- the run ------------------------------------------------------------------------------------

    def begin(self, op: str, kind: str, key: Any, value: Any) -> None:
        k = KEY_INDEX[key]
        self.op_index[op] = self.refinement.begin(kind, op, k, self.value_id(k, value) if kind == WRITE else NONE)
        if kind == WRITE:
            self._write_value[op] = value
            self._write_ops.add(op)

    def kind_of(self, op: str) -> str | None:
        """Whether ``op`` is a read or a write (None for a name the judge does not know)."""
        i = self.op_index.get(op)
        return None if i is None else self.refinement.ops[i].kind

    def worker(self, name: str, kind: OpKind) -> None:
        """``name`` is background work of ``kind`` (a refresh, a flush): its calls are judged by the
        background invariants, each key's stretch of them as one unit of work."""
        self.workers[name] = kind

    def worker_busy(self, name: str) -> None:
        """The worker has work (a refresh thread started, a flush due): nothing is at rest until it
        is idle again, whether or not it has made a call yet."""
        self._busy.add(name)

    def worker_idle(self, name: str) -> None:
        """The worker is idle or gone: the unit it was on is over."""
        self._busy.discard(name)
        self._end_unit(name)

    def _end_unit(self, name: str) -> None:
        i = self._units.pop(name, None)
        if i is not None:
            self.op_index.pop(name, None)
            self.refinement.end_background(i)

    def _unit(self, step: Step) -> int | None:
        """The model slot of the worker's unit of work for this call's key: its current one, or a new
        one begun (the one before it over) when it moves to another key or finished its program."""
        name = step.op
        if step.target == "db":
            k = KEY_INDEX.get(step.key)
        else:
            k = self.cache_keys.get(step.key)
            k = _named_key(step.key) if k is None else k
        if k is None:
            return None  # a key that holds no entry (a lock, a queue): nothing the model follows
        i = self._units.get(name)
        if i is not None and self.refinement.ops[i].key == k and not self.refinement.background_done(i):
            return i
        self._end_unit(name)
        i = self._units[name] = self.op_index[name] = self.refinement.begin(self.workers[name], name, k)
        return i

    def observe(self, index: int, step: Step, effect: Effect) -> Finding | None:
        """Judge one call the moment it happens; the first finding of the run is kept."""
        i = self._unit(step) if step.op in self.workers else self.op_index.get(step.op)
        if i is None:
            return None
        if self.cache_key is not None:
            self._follow_cache_key()
        if step.fault is not None and self._failed(i, index, step):
            return None  # it had no effect: nothing more to judge of it
        obs = self._abstract(i, step, effect)
        if obs is None:
            return None
        if obs.changed and obs.kind in (Kind.FILL, Kind.PUT):
            self._unsettled.add(obs.key)  # an entry or a DB value changed: look at it at the next rest
        self.refinement.at = index
        if self.faults:
            poisoned = self._poisoned(i, step, obs)
            if poisoned is not None:
                return self._found(poisoned, step.op, index)
        found = self._found(self.refinement.observe(i, obs), step.op, index)
        if self.failed_invalidation and obs.changed and obs.kind in (Kind.FILL, Kind.INVALIDATE, Kind.STORE):
            # The entry changed since: converged, unless what it holds now is also a value the DB no
            # longer holds (a fill whose lease the failed invalidation did not void): still its doing.
            entry = self.refinement.state[CACHE_F][obs.key]
            if entry == NONE or entry == self.refinement.state[DB_F][obs.key]:
                self.failed_invalidation.pop(obs.key, None)
        if step.op in self._units and self.refinement.background_done(i):
            self._end_unit(step.op)  # its program is done: the next call on the key is new work
        return found

    def finish(self, op: str, result: Any, index: int) -> Finding | None:
        if self.cache_key is not None:
            self._follow_cache_key()  # a write may have moved the entry without a call (a version bump)
        i = self.op_index.pop(op)  # its slot in the model goes to the next op
        o = self.refinement.ops[i]
        k = o.key
        if result is RAISED:  # a fault reached it and it raised: allowed, and nothing it returned to judge
            self._raised.add(op)
            pending, past_put = self.refinement.abort(i)
            self.reached.add("raised")
            if o.kind == WRITE and past_put and pending in (Kind.INVALIDATE, Kind.STORE):
                self.failed_invalidation.setdefault(k, (op, index, "it raised before invalidating"))
                self.reached.add("failed-invalidation")
            return None
        # A read returns a value, not a payload: no decode (None is "no value").
        value = NONE if o.kind == WRITE else self.value_id(k, result)
        rejection = self.refinement.finish(i, value)
        never_held = rejection is not None and (rejection.invariant, rejection.code) == ("fresh-read", "never-held")
        if self.faults and never_held:
            # A read that returns what the DB never held (a stand-in for a load that failed): a phantom.
            rejection = attrs.evolve(rejection, invariant="no-phantom-read", code="phantom")
        return self._found(rejection, op, index)

    # -- faults (--faults) --------------------------------------------------------------------------

    _FAILED_KIND: ClassVar[dict[tuple[str, str], Kind]] = {
        ("db", "get"): Kind.LOAD,
        ("db", "put"): Kind.PUT,
        ("db", "commit"): Kind.PUT,
        ("cache", "get"): Kind.LOOKUP,
        ("cache", "lease_get"): Kind.LOOKUP,
        ("cache", "set"): Kind.FILL,
        ("cache", "add"): Kind.FILL,
        ("cache", "lease_set"): Kind.FILL,
        ("cache", "delete"): Kind.INVALIDATE,
    }

    def _in_transaction(self, i: int, step: Step, k: int) -> None:
        """A call inside a transaction that no other operation sees: a write's staged put of its own
        key makes its cache step premature until the commit (``invalidate-after-commit``)."""
        op = self.refinement.ops[i]
        if step.action == "put" and op.kind == WRITE and k == op.key and step.fault is None:
            op.staged = True
        elif step.action == "rollback":
            op.staged = False

    def _failed(self, i: int, index: int, step: Step) -> bool:
        """A call that failed (``--faults``). One that had no effect (it failed before reaching the
        store, or it was a look whose reply was lost) is the op's instruction taken as made with no
        effect: True, nothing more to judge. One that took effect (its reply lost) is judged as made:
        False."""
        self.reached.add("fault")
        op = self.refinement.ops[i]
        op.faulted = True
        kind = self._FAILED_KIND.get((str(step.target), step.action))
        if step.tx is not None and step.action != "commit":
            return True  # a staged call: whatever it did stays inside its transaction
        if kind is None or op.kind in (REFRESH, FLUSH_KIND):
            return step.fault == "before"
        if step.fault == "lost" and kind not in (Kind.LOOKUP, Kind.LOAD):
            return False
        k = KEY_INDEX.get(step.key) if step.target == "db" else self.cache_keys.get(step.key, KEY_INDEX.get(step.key))
        if k is None and kind is Kind.LOOKUP and op.kind == READ:
            # A look at a key that is no entry (a version, a lock) failed: the read cannot know what is
            # cached, so it may take its own lookup for a miss and go to the DB (Flask-Caching's
            # memoize calls the function when reading its version key fails).
            k = op.key
        if k is None:
            return True
        self.refinement.failed(i, kind, k)
        if kind is Kind.LOAD:
            self.reached.add("failed-load")
        if op.kind == WRITE and kind in (Kind.INVALIDATE, Kind.FILL) and k == op.key:
            self.failed_invalidation.setdefault(k, (op.name, index, "its invalidation failed"))
            self.reached.add("failed-invalidation")
        return True

    def _releases(self, i: int, step: Step) -> bool:
        """A read's ``lease_set(key, None, token)`` that the cache took, on its own key, before the read
        loaded: the lease given back. At its fill it is what it always was, a fill of nothing (right
        for a key the DB lacks, ``who-populates`` for a read that loaded a value)."""
        ref = self.refinement
        if step.result is not True or ref.expects(i) is Kind.FILL or ref.state[OPS][i][LOADED] != NONE:
            return False
        return self.cache_keys.get(step.key, KEY_INDEX.get(step.key)) == ref.ops[i].key

    def _poisoned(self, i: int, step: Step, obs: Obs) -> Rejection | None:
        """A fill after a failed load, or of an error object: the entry is poisoned (``no-poisoned-fill``)."""
        op = self.refinement.ops[i]
        if step.target == "db" and step.action == "get":
            op.load_failed = False  # it loaded again: what it fills now is what it read
            return None
        if obs.kind is not Kind.FILL or not obs.changed:
            return None
        if step.action == "lease_set" and step.value is None:
            return None  # lease_set(key, None, token) releases the lease and stores nothing
        fields = {"op": op.name, "key": KEYS[obs.key], "value": show(step.value)}
        if isinstance(step.value, BaseException):
            return Rejection("no-poisoned-fill", "cached-error", fields, (("no-fill", None, obs.key, NONE),))
        if op.kind == READ and op.load_failed:
            return Rejection("no-poisoned-fill", "after-failed-load", fields, (("no-fill", None, obs.key, NONE),))
        return None

    def returned(self, op: str) -> None:
        """``op`` returned; threads it started still run, so it ends later (``finish``)."""
        i = self.op_index.get(op)
        if i is not None:
            self.refinement.returned(i)

    def clock_moved(self) -> None:
        self.refinement.clock_moved()

    def evicted(self, ck: Any, *, expired: bool = False) -> None:
        """The cache dropped an entry on its own (legal): its capacity, or the kit's clock passed the
        entry's deadline (``expired``). A dirty one (write-behind) takes its write with it, unless a
        flush has it already: the next rest point tells."""
        k = self.cache_keys.get(ck)
        if k is not None:
            self.refinement.evict(k, expired=expired)
            self.failed_invalidation.pop(k, None)  # the stale entry it left is gone: converged
        else:
            self._claims.pop(ck, None)  # a lease or a lock that ran out: nobody's claim now

    def unflushed(self, index: int) -> Finding | None:
        """The run is over and its background work idle: a dirty value left now is never flushed."""
        s = self.refinement.state
        for k, m in enumerate(s[MARKS]):
            if m & DIRTY:
                v = s[CACHE_F][k]
                message = BY_NAME["no-lost-write"].message(
                    "never-flushed",
                    {
                        "where": KEYS[k],
                        "value": self.name(k, v, entry=True),
                        "op": self.refinement.writer_of.get((k, v), "a write"),
                        "truth": self.name(k, s[DB_F][k]),
                    },
                )
                op = self.refinement.writer_of.get((k, v), "-")
                return self.keep(Finding(invariant="no-lost-write", message=message, op=op, culprit=index, key=KEYS[k]))
        return None

    def joinable(self, op: str) -> int:
        """The values op ``op`` (a read in flight) may take from other reads' loads (``System.join``)."""
        i = self.op_index.get(op)
        return 0 if i is None else self.refinement.ops[i].joinable

    def in_flight(self) -> bool:
        return bool(self._busy) or self.refinement.in_flight()

    def at_rest(
        self,
        peek: Callable[[Any], Any],
        op: str,
        index: int,
        *,
        steps: list[Step] | None = None,
        expiring: Callable[[], list[tuple[Any, float]]] | None = None,
    ) -> Finding | None:
        """With nothing in flight, every cached entry stands for what the DB holds.

        Given the run's ``steps`` (a concurrent run), the culprit is the step that stored the stale
        entry, not the moment it was noticed: that is where the race was lost.
        """
        if self.cache_key is not None:
            self._follow_cache_key()
        if self.refinement.dirty():
            return None  # a dirty value waits for its flush: work is left, the system is not at rest
        lost = self.refinement.lost_at_rest() if self.refinement.system.behind else None
        # The DB lacks a completed write (the cache may disagree too): the culprit is the step that
        # dropped or overwrote its dirty value, where the run shows one.
        at = lost.allowed[0][3] if lost is not None else -1
        behind = self._found(attrs.evolve(lost, allowed=()), op, at if at >= 0 else index) if lost else None
        unsettled, self._unsettled = self._unsettled, set()
        for ck, k, v, truth in self.incoherent(peek, only=unsettled, follow=False):
            key = KEYS[k]
            where = show(ck) if ck == key else f"{show(ck)} (for {key})"
            if k in self.failed_invalidation:  # judged by its staleness bound, not by coherent-at-rest
                self._unsettled.add(k)  # still stale: looked at again at the next rest point
                left = dict(expiring()).get(ck) if expiring is not None else None
                if left is not None:
                    self.staleness[show(ck)] = max(self.staleness.get(show(ck), 0.0), left)
                    if self.failed_invalidation[k][0] not in self._raised and self._session is not None:
                        self._session.stale_after_acknowledged = True
                    continue
                writer, at, how = self.failed_invalidation[k]
                message = BY_NAME["no-stale-after-failed-invalidate"].message(
                    "stale-forever",
                    {
                        "writer": writer,
                        "how": how,
                        "where": where,
                        "value": self.name(k, v, entry=True),
                        "truth": self.name(k, truth),
                    },
                )
                return self.keep(
                    Finding(
                        invariant="no-stale-after-failed-invalidate",
                        message=message,
                        op=writer,
                        culprit=at,
                        key=ck,
                        allowed=("a retry of the invalidation, or an entry that expires (a time to live)",),
                        hint=BY_NAME["no-stale-after-failed-invalidate"].remedy,
                    )
                )
            culprit, allowed, hint = index, (), ""
            if steps is not None:
                fills = [
                    n for n, st in enumerate(steps) if st.target == "cache" and st.key == ck and st.action in FILLS
                ]
                culprit = fills[-1] if fills else index
                worker = self.workers.get(steps[culprit].op) if fills else None
                if worker is not None:  # background work stored it: a refresh (or a flush) raced
                    allowed = (f"no store by this {worker.name.lower()}: its value is not the DB's",)
                    hint = BY_NAME["no-stale-refresh"].remedy
                elif fills:
                    what = "store" if self._is_write(steps[culprit].op) else "fill"
                    allowed = (f"this very {what}: the pattern as textbooks state it has this race",)
                if worker is None:
                    hint = self._race_hint(steps, culprit, ck, self.name(k, v, entry=True))
            message = BY_NAME["coherent-at-rest"].message(
                "stale-entry",
                {"op": op, "where": where, "value": self.name(k, v, entry=True), "truth": self.name(k, truth)},
            )
            stale = self.keep(
                Finding(
                    invariant="coherent-at-rest",
                    message=message,
                    op=op,
                    culprit=culprit,
                    key=ck,
                    allowed=allowed,
                    hint=hint,
                )
            )
            return behind or stale
        return behind

    def incoherent(
        self, peek: Callable[[Any], Any], *, only: set[int] | None = None, follow: bool = True
    ) -> list[tuple]:
        """(cache key, key, value it stands for, the DB's value) for every entry that differs from the DB
        (``follow``: read ``cache_key`` first, unless the caller just did)."""
        if follow and self.cache_key is not None:
            self._follow_cache_key()
        db = self.refinement.state[DB_F]
        out = []
        for ck, k in list(self.cache_keys.items()):  # in the order the run met them (it may forget some)
            if only is not None and k not in only:
                continue  # nothing stored and no DB write since the last rest point: still coherent
            payload = peek(ck)
            if payload is None:
                continue
            if ck in self._provisional and _no_value(self.decoded(payload)):
                self._forget(ck)  # learned by its name, holding the adapter's bookkeeping: no entry
                continue
            v = self.entry_id(k, payload)
            if v != NONE and v != db[k]:
                out.append((ck, k, v, db[k]))
        return out

    def _is_write(self, op: str) -> bool:
        return op in self._write_ops

    def _race_hint(self, steps: list[Step], culprit: int, ck: Any, shown: str) -> str:
        """What would have stopped this stale entry: the pattern's own fix, in the API the adapter used."""
        fill = steps[culprit] if culprit < len(steps) else None
        claim = self._found_claims.get(fill.op) if fill is not None else None
        if claim is not None and not self._is_write(fill.op):
            return (
                f"the read {fill.op} found {claim} and filled anyway, leaving {shown}, which it had loaded "
                "before the write: a read that finds another's lease or lock must serve what it loaded without "
                "filling (or wait and look again)"
            )
        early = self._invalidated_before_put(steps, ck)
        if early is not None:
            return (
                f"the write {early} deleted {show(ck)} before its DB put and not after, so a read in between "
                f"refilled what the DB still held: delete after the put (a delete before it as well is harmless)"
            )
        if self.pattern.fix != "leases":
            return self.pattern.writes.race_hint
        fill = steps[culprit] if culprit < len(steps) else None
        if (
            fill is not None
            and fill.action in ("set", "add")
            and any(s.op == fill.op and s.action == "lease_get" for s in steps[:culprit])
        ):
            through = (
                "Leases.set(key, value, token)"
                if fill.command is not None
                else f"lease_set({show(ck)}, {shown}, token)"
            )
            return (
                f"the fill used {fill.action} after taking a lease: fill with {through}, which the cache "
                "refuses once the write's delete has voided the lease"
            )
        if fill is not None and fill.action == "lease_set":
            return (
                "a lease taken after the load, or after the write's delete, guards nothing: take it with "
                f"{'Leases.get' if fill.command is not None else 'lease_get'} before reading the DB, so a delete "
                "in between voids it"
            )
        if fill is not None and fill.command is not None:  # code talking to Redis
            return (
                "fill through a lease, cachepact.leases.Leases(client): get(key) before reading the DB, then "
                "set(key, value, token); the write's delete(key) voids the lease, and Redis refuses the stale fill"
            )
        return self.pattern.writes.race_hint.format(
            lease_get="lease_get", lease_set=f"lease_set({show(ck)}, {shown}, token)"
        )

    def _invalidated_before_put(self, steps: list[Step], ck: Any) -> str | None:
        """A write whose every delete of ``ck`` came before its DB put (its leases and the pattern's fix
        are beside the point there: the order is the bug), or None."""
        for w in dict.fromkeys(st.op for st in steps if self._is_write(st.op)):
            mine = [(n, st) for n, st in enumerate(steps) if st.op == w]
            puts = [n for n, st in mine if st.target == "db" and st.action == "put"]
            deletes = [
                n for n, st in mine if st.target == "cache" and st.key == ck and st.action in ("delete", "evict")
            ]
            if puts and deletes and max(deletes) < min(puts):
                return w
        return None

    # -- from a call to the model's terms ------------------------------------------------------------

    def _abstract(self, i: int, step: Step, effect: Effect) -> Obs | None:
        actor = step.actor
        if step.target == "db":
            k = KEY_INDEX.get(step.key)
            if k is None:
                return None  # a key the run does not have: its reads return None, judged at return
            if step.tx is not None and step.action != "commit":
                self._in_transaction(i, step, k)
                return None  # a staged put, a read of one, a rollback: nothing another operation sees
            if step.action == "get":  # a DB read leaves the entry as it was
                entry = (self.refinement.state[CACHE_F][k], False)
                return Obs(Kind.LOAD, actor, k, result=self.value_id(k, self._db_value(step.result)), after=entry)
            if step.action == "commit":  # the write point of a transaction's put: it is visible from now
                self.reached.add("commit")
                self.refinement.ops[i].staged = False
            return Obs(
                Kind.PUT,
                actor,
                k,
                value=self.value_id(k, self._db_value(step.value)),
                changed=effect.changed,
                after=(self.refinement.state[CACHE_F][k], False),
            )
        op = self.refinement.ops[i]
        ck = step.key
        if step.action in ("lease_get", "lease_set") and step.command is not None:
            self.redis_leases = True
        if step.action in ("get", "lease_get"):
            payload, token = (step.result, None) if step.action == "get" else step.result
            decoded = self.decoded(payload)
            leasing = step.action == "lease_get" and op.kind == READ and not op.leased_once
            k = self.key_of(ck, decoded, op=op, call="lease" if leasing else "look", leases=step.action == "lease_get")
            if leasing:
                op.leased_once = True
            if k is None and op.kind == READ and self._retired.get(ck) == op.key and _may_write(step.command):
                return self._versioned_away(op, actor)  # a SET of what the old key already held
            if k is None:
                self._claim(op, step, effect)
                return None
            if step.action == "get" and _blind(step.command, payload):
                return None  # WATCH, TTL, an EXISTS that found one: the caller saw no value
            if op.kind == READ and decoded is NO_ENTRY and _may_write(step.command):
                # A SET NX refused by a write's tombstone: the write's claim that no read fill for now.
                self._note_claim(op, step.op, f"the tombstone on {show(ck)}")
            found = self.entry_id(k, payload)
            if op.kind == REFRESH and _may_write(step.command):
                # A refresh's SET of what the entry held already: judged by effect a look, but it is
                # the refresh's store (it renews the entry's time to live).
                return Obs(Kind.FILL, actor, k, found, None, False, False, (found, effect.lease_after))
            after_fill = op.kind == READ and self.refinement.expects(i) is Kind.FILL
            if after_fill and getattr(step.command, "effect", None) == "read":
                # A script that may write (not *_RO) left the entry as it was when the read had loaded
                # and was to fill: a conditional fill it refused (a version check), not a lookup.
                return Obs(Kind.FILL, actor, k, NONE, False, False, False, self._after(k, effect))
            if found == NONE and op.looked and step.action == "get" and ck in self._provisional:
                # Nothing under a key known only by its name (a flag, a lock not held): it says no more
                # than the lookups the read made already, and may be no entry at all.
                return None
            leased = step.action == "lease_get"
            outcome = (found, token is not None, leased and found == NONE and token is None)
            same = effect.after is payload and payload is not None  # a hit leaves the entry as it was
            after = (found, effect.lease_after) if same else self._after(k, effect)
            return Obs(Kind.LOOKUP, actor, k, NONE, outcome, leased, effect.changed, after)
        if step.action == "lease_set" and step.value is None and op.kind == READ and self._releases(i, step):
            # lease_set(key, None, token) before the read loaded: it gives its lease back (a read that
            # joins another's load), as the contract says. No fill, and no lease of its is out.
            self.refinement.release(i)
            return None
        if step.action in FILLS:
            decoded = self.decoded(step.value)
            k = self.key_of(ck, decoded, op=op, call="store", leases=step.action == "lease_set")
            if k is None and op.kind == READ and self._retired.get(ck) == op.key:
                return self._versioned_away(op, actor)
            if k is None:
                self._claim(op, step, effect)
                after_load = self.refinement.expects(i) is Kind.FILL  # a claim comes before the load
                if decoded is UNDECODABLE and op.kind == READ and after_load and not op.stored_undecodable:
                    op.stored_undecodable = f"{show(ck)} = {show(step.value)}"
                return None
            if step.result is False and str(getattr(step.command, "effect", "")).startswith("refused: a WATCH"):
                op.refusal_reason = "a key it WATCHed changed"  # the server said why it refused the fill
            if decoded is NO_ENTRY:
                # A tombstone: the key has no entry now (a write storing one invalidates).
                return Obs(Kind.INVALIDATE, actor, k, changed=effect.changed, after=self._after(k, effect))
            value = NONE if step.value is None else self.value_id(k, decoded)
            same = effect.after is step.value and step.value is not None  # the entry is what it stored
            after = (value, effect.lease_after) if same else self._after(k, effect)
            return Obs(Kind.FILL, actor, k, value, step.result, step.action == "lease_set", effect.changed, after)
        # delete
        k = self.key_of(ck, None, op=op, call="removal")
        if k is None:
            self._claim(op, step, effect)
            return None
        told = isinstance(step.result, (bytes, str))  # GETDEL: the caller saw what it removed
        return Obs(Kind.INVALIDATE, actor, k, result=told or None, changed=effect.changed, after=self._after(k, effect))

    def _claim(self, op: Any, step: Step, effect: Effect) -> None:
        """A call on a key that is no entry (a lease, a lock, a marker, a counter): who holds it.

        A key an operation stored is its claim until removed or expired, and counts while its holder
        is in flight, or, once the holder has returned, while it has a time to live (a lease a reader
        left, a marker a write leaves so that reads do not fill for a while): a lock left behind for
        good, or a stamp, excuses no read from filling. A write's counter (a version) claims nothing;
        a read's counter is a lock (``INCR lock:k1`` answering 1 is taken). A read that finds another's
        claim, by a look or by a command that could not take it (a ``SET NX``, an ``add``, a script
        that refused, an ``INCR`` past 1), is waiting, as a ``cachepact.leases`` waiter is, and may
        serve what it loads without filling."""
        ck = step.key
        try:
            held = self._claims.get(ck)
        except TypeError:
            return
        other = held is not None and held[0] != step.op and self._counts_as_claim(ck, held)
        if effect.changed:
            if effect.after is not None:
                self._unmapped.add(ck)
            if effect.after is None:
                self._claims.pop(ck, None)
            elif _counts(step.command) and (op.kind == WRITE or other):
                if op.kind == READ:
                    self._note_claim(op, step.op, f"{held[0]}'s claim on {show(ck)}")  # its INCR found it held
                elif held is None or not other:
                    self._claims.pop(ck, None)  # a write's counter, a version: no claim
            else:
                self._claims[ck] = (step.op, step.ttl is not None)
            return
        if held is None and ck in self.claim_keys and effect.after is not None:
            held, other = ("another operation", True), True  # a declared claim, held since before
        if other and op.kind == READ and effect.after is not None:
            self._note_claim(op, step.op, f"{held[0]}'s claim on {show(ck)}")

    def _counts_as_claim(self, ck: Any, held: tuple[str, bool]) -> bool:
        """A claim excuses a read while its holder is in flight, or while it has a time to live."""
        holder, expires = held
        return holder in self.op_index or expires or ck in self.claim_keys

    def _note_claim(self, op: Any, name: str, claim: str) -> None:
        op.found_claim = claim
        self._found_claims[name] = claim

    def _versioned_away(self, op: Any, actor: Any) -> Obs:
        """A read's fill of its entry under the name it had before a write moved it (a versioned key):
        nobody reads it any more, so it is a fill the cache refused, as a voided lease's is."""
        op.refusal_reason = "its key's version moved on"
        return Obs(Kind.FILL, actor, op.key, result=False, changed=False, after=self._after(op.key, Effect(None, None)))

    def _after(self, k: int, effect: Effect) -> tuple[int, bool]:
        """The key's entry after a call: this cache key's, or, when it holds nothing, another's the
        key's entry is also under (an adapter may cache one value under two keys)."""
        entry = self.entry_id(k, effect.after)
        if entry == NONE and len(self._by_key[k]) > 1:
            entry = next((e for ck in self._by_key[k] if (e := self.entry_id(k, self.peek(ck))) != NONE), NONE)
        return entry, effect.lease_after

    def entry_id(self, k: int, payload: Any) -> int:
        """The value an entry of key ``k`` holding ``payload`` stands for; NONE for no entry (nothing
        there, or a tombstone: ``decode`` gave ``NO_ENTRY``)."""
        if payload is None:
            return NONE
        decoded = self.decoded(payload)
        return NONE if decoded is NO_ENTRY else self.value_id(k, decoded)

    def _db_value(self, value: Any) -> Any:
        """The DB holds what writes put; an adapter that serialises into the DB is read through it."""
        if value is None or (isinstance(value, str) and _VALUE.fullmatch(value)):
            return value
        decoded = default_decode(value)
        return value if decoded is UNDECODABLE else decoded

    # -- findings -----------------------------------------------------------------------------------

    def _found(self, rejection: Rejection | None, op: str, index: int) -> Finding | None:
        if rejection is None:
            return None
        return self.keep(
            Finding(
                invariant=rejection.invariant,
                message=self._with_keys(rejection),
                op=op,
                culprit=index,
                allowed=self._allowed(rejection.allowed, staged=self._staged(op)),
            )
        )

    def _staged(self, op: str) -> bool:
        """Whether ``op`` has a put staged in a transaction it has not committed yet."""
        i = self.op_index.get(op)
        return i is not None and self.refinement.ops[i].staged

    def keep(self, finding: Finding) -> Finding:
        """The first finding of a run is the one it reports (``findings`` keeps them all)."""
        if self.finding is None:
            self.finding = finding
        self.findings.append(finding)
        return finding

    def _with_keys(self, rejection: Rejection) -> str:
        """A write that left an entry behind names the cache key the entry is under."""
        reason = rejection.reason
        leftover = rejection.code == "never-invalidated"
        if leftover and rejection.fields.get("held") == "a lease is out on it" and self.redis_leases:
            reason += " (a plain DEL leaves cachepact.leases' lease in place: invalidate with Leases.delete(key))"
        if leftover:
            k = next((item[2] for item in rejection.allowed), None)
            keys = self._holding(k) if k is not None else []
            if keys and keys != [KEYS[k]]:
                reason += f" (under {', '.join(show(ck) for ck in keys)}"
                if self.cache_key is None:
                    reason += "; if reads no longer reach it, a versioned key, say so with cache_key="
                reason += self._named_by(k, keys)
                reason += ")"
        return reason

    def _named_by(self, k: int, keys: list[Any]) -> str:
        """Which app instances' ``cache_key`` still names a leftover entry, when not all do: a version
        one process keeps for itself is not seen by the others."""
        fns = self._cache_key_fns
        if len(fns) < 2:
            return ""
        with self._peeking:
            naming = [n + 1 for n, fn in enumerate(fns) if _cache_key(fn, KEYS[k]) in keys]
        if not naming or len(naming) == len(fns):
            return ""
        who = ", ".join(str(n) for n in naming)
        return (
            f", which app instance {who}'s cache_key still names: a version each process keeps for itself is not "
            "seen by the others; keep it in the shared store"
        )

    def _allowed(self, allowed: tuple[tuple, ...], *, staged: bool = False) -> tuple[str, ...]:
        out = []
        for item in allowed:
            kind, by, k, value = item[:4]
            who = f"{by}: " if by is not None else ""
            holding = self._holding(k)
            ck = show(holding[0] if holding else next(iter(self.cache_keys_of(k)), KEYS[k]))
            v = self.name(k, value)
            if kind == "no-fill":
                out.append(f"no fill of {ck}: the load failed, so there is nothing to cache (raise, or return)")
            elif kind == "discard":
                out.append(f"no store: discard the refresh of {ck} (a write changed it since the refresh loaded)")
            elif kind == "in-order":
                out.append(f"no put of anything older than {v}: the flushes of {KEYS[k]} in write order")
            elif kind == "return":
                nothing = value == 0 and ABSENT_AT_START[k]
                out.append(
                    "return without filling"
                    if nothing
                    else f"return {v}"
                    if value != NONE
                    else "return (the write had nothing left to do)"
                )
            elif kind is Kind.LOOKUP:
                out.append(f"{who}cache.get({ck})")
            elif kind is Kind.LOAD:
                out.append(f"{who}db.get({KEYS[k]})")
            elif kind is Kind.FILL:
                if value == 0 and ABSENT_AT_START[k]:
                    out.append(f"{who}a negative entry under {ck} (decode= maps it to cachepact.ABSENT)")
                elif len(item) > 4:
                    out.append(f"{who}cache.lease_set({ck}, {v}, token)")
                else:
                    out += [f"{who}cache.set({ck}, {v})", f"{who}cache.add({ck}, {v})"]
            elif kind is Kind.PUT and staged:  # its put is made: the commit makes it visible
                out.append(f"{who}the commit of its transaction (db.commit: {KEYS[k]} = {v})")
            elif kind is Kind.PUT:
                out.append(f"{who}db.put({KEYS[k]}, {v})")
            elif kind is Kind.STORE:
                out.append(f"{who}cache.set({ck}, {v})")
            else:
                out += [f"{who}cache.delete({show(c)})" for c in holding] or [f"{who}cache.delete({ck})"]
        return tuple(out)

    def _holding(self, k: int) -> list[Any]:
        """The cache keys of key ``k``'s entry that hold something now."""
        return [ck for ck in self.cache_keys_of(k) if self.entry_id(k, self.peek(ck)) != NONE]

    # -- what the run left ----------------------------------------------------------------------------

    def final_state(self, db_get: Callable[[Any], Any], peek: Callable[[Any], Any]) -> tuple[tuple[str, ...], ...]:
        """(key, DB, cache decoded, cache raw) for every key: the raw column names each entry's cache
        key and payload when either differs from what it stands for."""
        rows = []
        for n, key in enumerate(KEYS):
            decoded, raw = [], []
            for ck in self.cache_keys_of(n):
                payload = peek(ck)
                if payload is None:
                    continue
                v = self.entry_id(n, payload)
                shown = "no entry (a tombstone)" if v == NONE else self.name(n, v, entry=True)
                decoded.append(shown if ck == key else f"{show(ck)}={shown}")
                if ck != key or payload != shown:
                    raw.append(f"{show(ck)}={_raw(payload)}")
            rows.append((key, show(db_get(key)), ", ".join(decoded) or "None", ", ".join(raw)))
        # The adapter's own keys that are no entry (a lease, a lock, a marker, a counter), as left.
        for ck in sorted((self._unmapped | self._histories) - set(self.cache_keys), key=show):
            payload = peek(ck)
            if payload is not None:
                rows.append((show(ck), "-", "(not an entry)", f"{show(ck)}={_raw(payload)}"))
        return tuple(rows)


_SIDE_RECORDS = frozenset(["list", "set", "zset", "stream", "hash"])


def _named_key(ck: Any) -> int | None:
    """The run's key a cache key names as a word of its own (``user:k1``, ``products[k1]``,
    ``app:1:k1``), when it names exactly one."""
    text = f"{_text(ck.key)}[{_text(ck.field)}]" if isinstance(ck, HashField) else _text(ck)
    if not isinstance(text, str):
        return None
    named = {KEY_INDEX[w] for w in RUN_KEY.findall(text) if w in KEY_INDEX}
    return named.pop() if len(named) == 1 else None


def _staging(ck: Any) -> bool:
    """A key made for one fill: its name holds a random token (``tmp:<uuid4().hex>``)."""
    text = _text(ck)
    return isinstance(text, str) and RANDOM_TOKEN.search(text) is not None


def _text(x: Any) -> Any:
    if isinstance(x, bytes):
        return x.decode(errors="replace")
    return x if isinstance(x, str) else None


def _token_key(decoded: Any) -> int | None:
    """The run's key whose value ``decoded`` is (``k1.v3`` is k1's), or None."""
    if isinstance(decoded, str) and TOKEN.fullmatch(decoded):
        return KEY_INDEX.get(decoded.partition(".")[0])
    return None


def _no_value(decoded: Any) -> bool:
    """What is no value of any key: a lock's token, a counter, whatever ``decode`` makes of them."""
    return decoded is not ABSENT and decoded is not NO_ENTRY and _token_key(decoded) is None


_COUNTERS = frozenset(["INCR", "INCRBY", "DECR", "DECRBY", "INCRBYFLOAT", "HINCRBY", "HINCRBYFLOAT"])


def _counts(command: Any) -> bool:
    """Whether a recorded Redis command only bumped a counter (``INCR gen:k1``: a version)."""
    commands = getattr(command, "commands", None)
    return bool(commands) and all(command_name(args) in _COUNTERS for args in commands)


def _blind(command: Any, found: Any) -> bool:
    """Whether a recorded read told its caller nothing of the value it found (``WATCH``, ``TTL``,
    ``TYPE``; ``EXISTS`` when the key is there: an entry, not which)."""
    commands = getattr(command, "commands", None)
    if not commands:
        return False
    names = [command_name(args) for args in commands]
    return all(n in BLIND or (n == "EXISTS" and found is not None) for n in names)


def _may_write(command: Any) -> bool:
    """Whether a recorded Redis command (a ``Sent``) could have written (not only ``GET``/``EXISTS``)."""
    commands = getattr(command, "commands", None)
    return bool(commands) and any(command_name(args) not in READS for args in commands)


def _side_record(payload: Any) -> bool:
    """A key of another type, read whole (``("list", [...])``): a side record (an outbox, a stream, a
    set of ids, a hash whose fields are not named), never one key's entry."""
    return type(payload) is tuple and len(payload) == 2 and payload[0] in _SIDE_RECORDS


def _raw(payload: Any, limit: int = 80) -> str:
    """A payload as reports show it: its repr, or, for an object without one of its own, its type
    and fields (no memory addresses), cut to ``limit`` characters."""
    text = repr(payload)
    if " object at 0x" in text:
        fields = getattr(payload, "__dict__", None) or {
            slot: getattr(payload, slot) for slot in getattr(type(payload), "__slots__", ()) if hasattr(payload, slot)
        }
        text = f"{type(payload).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cache_key(fn: Callable[[Any], Any], key: str) -> Any:
    ck = _user_call(fn, key, "cache_key", "the cache key of its entry")
    _hashable(ck, "cache_key", key)
    return ck


def _user_call(fn: Callable[[Any], Any], key: str, field: str, gives: str) -> Any:
    try:
        return fn(key)
    except Exception as e:
        raise DefinitionError(
            f"Adapter.{field}({key!r}) raised {one_line(e)}; it must map a key to {gives}", field=field
        ) from e


def _hashable(ck: Any, field: str, key: str) -> None:
    try:
        hash(ck)  # a cache key must be usable as one
    except TypeError as e:
        raise DefinitionError(
            f"Adapter.{field}({key!r}) returned an unhashable {type(ck).__name__}; return a cache key (a str or bytes)",
            field=field,
        ) from e
