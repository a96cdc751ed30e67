"""The instrumented environment handed to an adapter factory: ``env.db`` and ``env.cache``.

Every call is one atomic step, recorded with its actor and operation, and a point where the
scheduler may switch to another thread working for an operation.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import attrs

from ...errors import BackendError, CacheError, DBError, DefinitionError, StoreError
from ...model import Actor, Step, show
from .._contract import Adapter, article
from ..runtime.primitives import RealLock, real_primitives
from ..runtime.session import Session
from .attribution import Attribution
from .coroutines import CACHE_TASK, WORKER, AsyncStore, drive, is_awaitable
from .effect import Effect
from .redis_hook import RedisRecording, env_in_decode
from .servers import Servers
from .transaction import Transaction, Transactions, commit_effects

OUTSIDE = "-"  # the op name of a call made outside any operation the kit started


class OpContext(NamedTuple):
    """How the recorder names the calls of a thread working for an operation."""

    op: str
    attribution: Attribution  # of the app instance the operation runs on
    inherited: Actor = Actor.APP  # a helper thread's: the actor of the code that started it


class Recorder:
    """Collects the steps of a run, attributing each to its actor and to the operation of the thread
    making it, and hands each to ``on_step`` (the judge) the moment it happens."""

    def __init__(self, attribution: Attribution, session: Session) -> None:
        self.attribution = attribution  # for calls outside any operation (in make)
        self.scheduled = session.scheduled  # thread ident -> its scheduler handle, the check's
        self.session = session
        self.steps: list[Step] = []
        self.threads: dict[int, OpContext] = {}  # thread ident -> what it works for
        self.running = False  # operations are running: a call from any other thread is a stray
        self.park: Callable[[tuple], None] | None = None  # the scheduler's switch point
        self.strays: list[Step] = []  # calls from threads the kit does not run
        self.on_step: Callable[[int, Step, Effect], None] | None = None
        self.lost: BackendError | None = None  # a server behind env went away during a call
        # Faults (``--faults``): given the operation a call is made for, whether the call fails (None:
        # it does not; False: before taking effect; True: it takes effect and its reply is lost).
        self.fault: Callable[[str], bool | None] | None = None
        self.unfault: Callable[[str], None] | None = None  # the call just counted never ran
        # While a command whose reply is lost is recorded (redis-py): the mark its steps carry.
        self.marking: tuple[str, str] | None = None
        # A call and its record are one step, even when a thread runs out of the kit's control.
        self.lock = RealLock()

    def context(self) -> OpContext | None:
        """What the calling code works for: its asyncio task's worker, else its thread's operation."""
        return WORKER.get() or self.threads.get(threading.get_ident())

    def before(self, target: str, action: str, key: Any) -> None:
        handle = self.scheduled.get(threading.get_ident())
        if handle is not None:
            handle.park((target, action, key))

    def fails(self) -> bool | None:
        """Whether the call the calling thread is about to make fails (``--faults``), as the run's
        plan says for its operation: None, or whether it takes effect before failing."""
        if self.fault is None:
            return None
        context = self.context()
        return None if context is None else self.fault(context.op)

    def never_ran(self) -> None:
        """The call the calling thread just made never ran: the server did not have its script yet
        (``NOSCRIPT``), and the client loads it and sends the call again. It is no call of the run's
        plan of faults, so a replay, whose server starts without the script, numbers calls as the
        run that printed it did."""
        if self.unfault is None:
            return
        context = self.context()
        if context is not None:
            self.unfault(context.op)

    def step(self) -> _Atomic:
        """Entered around a call and its looks: one atomic step. The lock keeps other threads out, and
        the calling thread does not stop at scheduling points inside it (a client library's own locks)."""
        return _Atomic(self.lock, self.scheduled)

    def record(
        self,
        target: str,
        action: str,
        key: Any,
        value: Any,
        result: Any,
        effect: Effect,
        *,
        token: Any,
        ttl: Any,
        command: str | None = None,
        fault: str | None = None,
        error: str | None = None,
        tx: str | None = None,
        depth: int = 4,  # actor() <- record <- _call <- env method <- caller
    ) -> Step:
        context = self.context()
        if context is None:
            op, actor = OUTSIDE, self.attribution.actor(depth)
        else:
            op = context.op
            actor = context.attribution.actor(depth)  # (a worker's calls still show which cache_code ran)
            if context.inherited is not Actor.APP or CACHE_TASK.get():
                actor = Actor.CACHE  # a helper thread, or an asyncio task, the Cache's code started
        step = Step(
            op=op,
            actor=actor,
            target=target,
            action=action,
            key=key,
            value=value,
            result=result,
            token=token,
            ttl=ttl,
            command=command,
            fault=fault if fault is not None or self.marking is None else self.marking[0],
            error=error if fault is not None or self.marking is None else self.marking[1],
            tx=tx,
        )
        self.steps.append(step)
        if op == OUTSIDE and self.running:
            self.strays.append(step)
        elif self.on_step is not None:
            self.on_step(len(self.steps) - 1, step, effect)
        return step


class _Atomic:
    __slots__ = ("handle", "lock", "scheduled")

    def __init__(self, lock: Any, scheduled: dict[int, Any]) -> None:
        self.lock = lock
        self.scheduled = scheduled
        self.handle: Any = None

    def __enter__(self) -> None:
        self.lock.acquire()
        self.handle = self.scheduled.get(threading.get_ident())
        if self.handle is not None:
            self.handle.atomic += 1

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.atomic -= 1
        self.lock.release()


_NO_GATE = contextlib.nullcontext()


class _Recording:
    """Every call: a scheduling point first, then the backend call between two looks at its key,
    then the recorded step."""

    _target = ""

    def __init__(self, backend: Any, recorder: Recorder) -> None:
        self._backend = backend
        self._recorder = recorder

    def _look(self, key: Any) -> tuple[Any, bool]:
        raise NotImplementedError

    def _call(self, action: str, key: Any, *args: Any, value: Any = None, token: Any = None, ttl: Any = None) -> Any:
        recorder = self._recorder
        session = recorder.session
        if session.peeking or session.decoding:
            me = threading.get_ident()
            if me in session.decoding:
                error = env_in_decode()
                session.refused = session.refused or error  # the check stops with it, even if caught
                raise error
            if me in session.peeking:  # cache_key reading the run's stores: the kit's peek, not a step
                if action != "get":
                    error = DefinitionError(
                        f"Adapter.cache_key called env.{self._target}.{action}; cache_key may only read the "
                        "stores, never write",
                        field="cache_key",
                    )
                    session.refused = session.refused or error
                    raise error
                method = getattr(self._backend, action)
                return method(key, *args) if ttl is None else method(key, *args, ttl=ttl)
        recorder.before(self._target, action, key)
        fails = recorder.fails()
        # A store on a server has a gate its cleanup takes: no call recreates a key after it.
        with recorder.step(), getattr(self._backend, "gate", _NO_GATE):
            before, lease_before = self._look(key)
            if fails is False:  # an injected fault: the call fails before it reaches the store
                error = self._error(action, key, took_effect=False)
                effect = Effect(before, before, lease_before, lease_before)
                name = type(error).__name__
                recorder.record(
                    self._target, action, key, value, None, effect, token=token, ttl=ttl, fault="before", error=name
                )
                raise error
            method = getattr(self._backend, action)
            try:
                result = method(key, *args) if ttl is None else method(key, *args, ttl=ttl)
            except BackendError as e:  # the database went away: the check ends (World.perform)
                recorder.lost = e
                raise
            after, lease_after = self._look(key)
            shown = tuple(result) if action == "lease_get" else result
            effect = Effect(before, after, lease_before, lease_after)
            if fails:  # an injected fault: the store did what was asked; the reply is lost on the way
                error = self._error(action, key, took_effect=True)
                name = type(error).__name__
                recorder.record(
                    self._target, action, key, value, shown, effect, token=token, ttl=ttl, fault="lost", error=name
                )
                raise error
            recorder.record(self._target, action, key, value, shown, effect, token=token, ttl=ttl)
        return result

    def _error(self, action: str, key: Any, *, took_effect: bool) -> StoreError:
        error_type = DBError if self._target == "db" else CacheError
        return error_type(f"{self._target}.{action}({show(key)})", took_effect=took_effect)


class RecordingDB(_Recording):
    """``env.db``: ``get(key) -> value | None``, ``put(key, value)`` and ``transaction()``."""

    _target = "db"

    def __init__(self, backend: Any, recorder: Recorder, transactions: Transactions | None = None) -> None:
        super().__init__(backend, recorder)
        self._transactions = transactions if transactions is not None else Transactions()

    def _look(self, key: Any) -> tuple[Any, bool]:
        return self._backend.get(key), False

    def get(self, key: Any) -> Any:
        tx = self._transactions.current()
        if tx is not None and key in tx.staged:  # its own put, not yet committed: only it sees it
            return self._staged_call("get", key, tx, result=tx.staged[key])
        # A read of a committed value, inside a transaction or not: a load like any other (its row
        # does not name the transaction; the judge tells staged calls by it).
        return self._call("get", key)

    def put(self, key: Any, value: Any) -> None:
        tx = self._transactions.current()
        if tx is None:
            self._call("put", key, value, value=value)
            return
        self._staged_call("put", key, tx, value=value)
        tx.staged[key] = value

    def transaction(self) -> Any:
        """A context manager: puts inside become visible to other operations when the block exits
        normally (the commit, one recorded step and scheduling point), never when it raises; reads
        inside see its own puts. It gives the ``Transaction``, whose ``on_commit(fn)`` runs ``fn``
        after the commit. Blocks nest as savepoints."""
        return self._transactions.block(self)

    def _staged_call(self, action: str, key: Any, tx: Transaction, *, value: Any = None, result: Any = None) -> Any:
        """A call inside a transaction that the database answers from the transaction's own puts:
        recorded and scheduled like any call, it changes nothing another operation can see."""
        recorder = self._recorder
        recorder.before(self._target, action, key)
        fails = recorder.fails()
        with recorder.step():
            now = self._backend.get(key)
            effect = Effect(now, now)
            if fails is not None:
                error = self._error(action, key, took_effect=bool(fails))
                fault = "lost" if fails else "before"
                self._record_in(tx, action, key, value, None, effect, fault=fault, error=type(error).__name__)
                raise error
            self._record_in(tx, action, key, value, result, effect)
        return result

    def _commit(self, tx: Transaction) -> None:
        recorder = self._recorder
        keys = list(tx.staged)
        recorder.before(self._target, "commit", keys[0] if keys else None)
        fails = recorder.fails()
        with recorder.step(), getattr(self._backend, "gate", _NO_GATE):
            if fails is False:  # the COMMIT never reached the database: nothing is applied
                error = self._error("commit", tx.name, took_effect=False)
                for key, value in tx.staged.items() or [(None, None)]:
                    now = None if key is None else self._backend.get(key)
                    effect = Effect(now, now)
                    self._record_in(tx, "commit", key, value, None, effect, fault="before", error=type(error).__name__)
                raise error
            try:
                effects = commit_effects(self._backend, tx.staged) if keys else [(None, None, Effect(None, None))]
            except BackendError as e:
                recorder.lost = e
                raise
            error = self._error("commit", tx.name, took_effect=True) if fails else None
            for key, value, effect in effects:
                fault, name = ("lost", type(error).__name__) if error is not None else (None, None)
                self._record_in(tx, "commit", key, value, None, effect, fault=fault, error=name)
            if error is not None:  # committed; the reply never came back
                raise error

    def _rollback(self, tx: Transaction, *, savepoint: bool = False) -> None:
        """The block raised: nothing of it is applied (of an inner block: nothing since its savepoint).
        Recorded (no scheduling point: nothing another operation sees changes)."""
        recorder = self._recorder
        key = next(iter(tx.staged), None)
        with recorder.step():
            now = None if key is None else self._backend.get(key)
            self._record_in(tx, "rollback", key, "savepoint" if savepoint else None, None, Effect(now, now))

    def _record_in(
        self,
        tx: Transaction,
        action: str,
        key: Any,
        value: Any,
        result: Any,
        effect: Effect,
        *,
        fault: str | None = None,
        error: str | None = None,
    ) -> None:
        self._recorder.record(
            self._target,
            action,
            key,
            value,
            result,
            effect,
            token=None,
            ttl=None,
            fault=fault,
            error=error,
            tx=tx.name,
            depth=5,
        )


def _check_ttl(ttl: Any) -> None:
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 0):
        raise TypeError(f"ttl must be a number of seconds (0 or more) or None, not {ttl!r}")


class RecordingCache(_Recording):
    """``env.cache``: get, set, add, delete, lease_get, lease_set (spec/contract.md); ``ttl=`` is seconds
    on the kit's virtual clock."""

    _target = "cache"

    def _look(self, key: Any) -> tuple[Any, bool]:
        return self._backend.look(key)

    def get(self, key: Any) -> Any:
        return self._call("get", key)

    def set(self, key: Any, value: Any, ttl: float | None = None) -> None:
        _check_ttl(ttl)
        self._call("set", key, value, value=value, ttl=ttl)

    def add(self, key: Any, value: Any, ttl: float | None = None) -> bool:
        _check_ttl(ttl)
        return self._call("add", key, value, value=value, ttl=ttl)

    def delete(self, key: Any) -> None:
        self._call("delete", key)

    def lease_get(self, key: Any) -> tuple[Any, Any]:
        return self._call("lease_get", key)

    def lease_set(self, key: Any, value: Any, token: Any, ttl: float | None = None) -> bool:
        _check_ttl(ttl)
        return self._call("lease_set", key, value, token, value=value, token=token, ttl=ttl)


@attrs.define
class Env:
    """What the factory ``make(env)`` receives: ``db``, ``cache``, and, on demand, ``redis`` (a genuine
    ``redis.Redis`` client on the run's Redis server) with ``redis_url`` and ``redis_options`` for the
    clients a library makes itself: ``redis.Redis.from_url(env.redis_url, **env.redis_options)``."""

    db: RecordingDB
    cache: RecordingCache
    _servers: Any = attrs.field(default=None, repr=False)
    _redis: Any = attrs.field(default=None, repr=False)
    _async_redis: Any = attrs.field(default=None, repr=False)

    @property
    def async_cache(self) -> AsyncStore:
        """``env.cache`` with awaitable methods, for ``async def`` adapters: ``await env.async_cache.get(k)``."""
        return AsyncStore(self.cache)

    @property
    def async_db(self) -> AsyncStore:
        """``env.db`` with awaitable methods: ``await env.async_db.get(k)``, ``await env.async_db.put(k, v)``;
        ``with env.async_db.transaction():`` as ``env.db``'s."""
        return AsyncStore(self.db)

    @property
    def redis(self) -> Any:
        """This app instance's own redis-py client on the run's server (each instance, like each
        process of a deployment, has its own connections)."""
        if self._redis is None:
            server = self._server()
            with real_primitives():  # its pool's locks guard redis-py's internals: never scheduling points
                self._redis = server.client()
        return self._redis

    @property
    def async_redis(self) -> Any:
        """This app instance's own ``redis.asyncio.Redis`` client on the run's server, for ``async def``
        adapters: ``await env.async_redis.get(k)``. Its commands are recorded as ``env.redis``'s are."""
        if self._async_redis is None:
            server = self._server()
            with real_primitives():
                self._async_redis = server.async_client()
        return self._async_redis

    @property
    def redis_url(self) -> str:
        """The run's Redis server as a URL, for a library that makes its own client (Django's
        ``LOCATION``, dogpile's ``url``, Flask-Caching's ``CACHE_REDIS_URL``); pass ``redis_options`` too."""
        return self._server().url

    @property
    def redis_options(self) -> dict[str, Any]:
        """Keyword arguments a redis-py client or pool needs, besides ``redis_url``, to reach the run's
        server: the connection class of the in-process server (empty for a real one)."""
        return dict(self._server().options)

    def _server(self) -> Any:
        if self._servers is None:
            raise RuntimeError("env.redis needs a check's servers")
        return self._servers.redis()


def one_line(e: BaseException) -> str:
    """An exception as one line, ``Type: message``, for the one-line errors the kit prints."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def run_operation(
    fn: Callable[..., Any],
    *args: Any,
    attribution: Attribution | None = None,
    returned: Callable[[Any], None] | None = None,
    left_running: Callable[[list], None] | None = None,
) -> Any:
    """Every adapter operation starts here: its frame is where attribution stops looking. A coroutine
    (an ``async def`` read or write) runs to its end on its thread's event loop; ``attribution``
    (the app instance's) says which of the tasks it starts are the Cache's. ``returned(result)`` is
    told when the operation returns to its caller: for a coroutine, when it returns, before the tasks
    it left running are done; ``left_running(tasks)`` then hears which those are."""
    result = fn(*args)
    if is_awaitable(result):
        started_by_cache = (lambda: attribution.actor(2) is Actor.CACHE) if attribution is not None else _never
        return drive(result, cache_started=started_by_cache, returned=returned, left_running=left_running)
    if returned is not None:
        returned(result)
    return result


def _never() -> bool:
    return False


BOUNDARY = run_operation.__code__


def attribution_for(session: Session, cache_code: tuple) -> Attribution:
    """One Attribution per ``cache_code`` in a check (its ``session``): its per-code-object memo then
    lasts across the many worlds the check builds, instead of being relearned for every example, and
    which entries it saw is the check's alone."""
    try:
        attribution = session.attributions.get(cache_code)
    except TypeError:  # an unhashable entry: no sharing, same answers
        attribution = Attribution(cache_code, BOUNDARY)
    else:
        if attribution is None:
            attribution = session.attributions[cache_code] = Attribution(cache_code, BOUNDARY)
    if attribution.labels:
        session.in_use[id(attribution)] = attribution
    return attribution


def unseen_cache_code(session: Session) -> list[str]:
    """``cache_code`` entries no DB or cache call of the check (its ``session``) had on its stack."""
    seen: dict[str, bool] = {}
    for attribution in session.in_use.values():
        for n, name in enumerate(attribution.labels):
            seen[name] = seen.get(name, False) or n in attribution.seen or name in session.cache_code_ran
    return [name for name, was in seen.items() if not was]


@attrs.define
class Harness:
    """One fresh world: backends, the recorder, and each app instance's env and adapter on them."""

    db: Any
    cache: Any  # what the judge reads: env.cache's store, and the Redis server if env.redis was used
    recorder: Recorder
    envs: list[Env]
    adapters: list[Adapter]
    attributions: list[Attribution]
    redis: RedisRecording


def build(
    make: Callable[[Env], Adapter],
    *,
    initial: dict[Any, Any],
    label: str = "the factory",
    instances: int = 1,
    servers: Servers | None = None,
    session: Session | None = None,
    keys: tuple[Any, ...] = (),
) -> Harness:
    """Build a world: one DB and one cache, shared by ``instances`` app instances, each the user's
    factory called with an env of its own (as each process of a deployment would build its own).
    A factory that fails or returns something other than an ``Adapter`` is a ``DefinitionError``.
    The world's redis-py commands are recorded from here on, while its ``session`` runs (``make``
    may send some). A factory that changes what one of the run's ``keys`` holds in the DB is a
    ``DefinitionError``."""
    servers = servers if servers is not None else Servers()
    session = session if session is not None else Session()
    db, cache = servers.fresh(initial)
    recorder = Recorder(attribution_for(session, ()), session)
    redis = RedisRecording(recorder, servers, cache, session)
    session.recording = redis
    envs, adapters = [], []
    numbers = itertools.count(1)  # the world's transactions, numbered across its app instances
    for n in range(instances):
        db_env = RecordingDB(db, recorder, Transactions(numbers))
        env = Env(db=db_env, cache=RecordingCache(cache, recorder), servers=servers)
        envs.append(env)
        session.building = n  # the app instance whose make runs: threads it starts are its daemons
        adapters.append(_made(make, env, label))
    for key in keys:  # the run's keys are the kit's: a value make put there is one no write made
        if db.get(key) != initial.get(key):
            raise DefinitionError(
                f"{label} wrote {key} to env.db ({db.get(key)!r}); the run's keys ({', '.join(map(str, keys))}) "
                "belong to the kit, which sets what they hold: seed keys of your own in make",
                target=label,
            )
    attributions = [attribution_for(session, a.cache_code) for a in adapters]
    recorder.attribution = attributions[0]
    return Harness(
        db=db,
        cache=servers.view(cache),
        recorder=recorder,
        envs=envs,
        adapters=adapters,
        attributions=attributions,
        redis=redis,
    )


def _made(make: Callable[[Env], Adapter], env: Env, label: str) -> Adapter:
    try:
        adapter = make(env)
    except DefinitionError:
        raise
    except Exception as e:
        raise DefinitionError(f"{label} raised {one_line(e)}; fix the factory", target=label) from e
    if is_awaitable(adapter):
        if inspect.iscoroutine(adapter):
            adapter.close()  # never run: no "never awaited" warning after the one line
        raise DefinitionError(
            f"{label} is a coroutine function (async def), and the factory must return the Adapter itself: "
            "make the factory a plain def (read and write may be async def)",
            target=label,
        )
    if not isinstance(adapter, Adapter):
        raise DefinitionError(
            f"{label} returned {article(type(adapter).__name__)}, not a cachepact.Adapter; "
            "return cachepact.Adapter(read=..., write=..., cache_code=...)",
            target=label,
        )
    return adapter


__all__ = ["Env", "Harness", "OpContext", "Recorder", "RecordingCache", "RecordingDB", "build", "run_operation"]
