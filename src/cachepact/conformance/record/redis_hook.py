"""Every command a redis-py client sends during a run, recorded as a step: hooked at one place.

redis-py sends a command through ``Redis.execute_command``, and a pipeline (``MULTI``/``EXEC`` or
not) through ``Pipeline.execute``; commands a pipeline runs at once while it ``WATCH``es go through
``Pipeline.immediate_execute_command``. Wrapping those three catches ``env.redis`` and every client
a library makes itself (Django's ``RedisCache``, ``dogpile.cache.redis``, Flask-Caching), scripts
included (``EVAL``/``EVALSHA``, ``register_script``), while leaving connections, parsing and retries
to redis-py.

Each command, or a whole pipeline, is one atomic step: a scheduling point first, then, under the
recorder's lock, the keys it touches read from the server, the command, the keys read again. What
changed is what it did: a key that now holds something else was stored (its payload and TTL), a
key that is gone was removed, a key left as it was was read. So ``SET`` with any options, ``GETSET``,
``GETDEL``, ``MSET``, ``EXPIRE 0``, a Lua script, all mean what they did, never what their name
suggests. The kit's own ``cachepact.leases`` scripts are known by their source, and are recorded as
the leases they are (``lease_get``, ``lease_set``), as ``env.cache``'s are.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
from typing import Any

from ...backends import HashField
from ...model import show
from ..runtime.session import Session, left_behind, lingering, running
from . import redis_asyncio
from .effect import Effect
from .redis_commands import READS, REMOVALS, RUN_KEY, SCRIPTS, command_name, fields_of, keys_of, names

# redis-py's own methods, saved when the hook first replaces them: the hook is a patch of the
# process's redis-py (every client, whichever check made it), so what it patched over is the process's.
_originals: dict[str, Callable] = {}


class RedisRecording:
    """One world's recording of redis-py commands into its ``Recorder``, against the check's server.
    The world's ``build`` makes it its session's ``recording``."""

    def __init__(self, recorder: Any, servers: Any, cache: Any, session: Session) -> None:
        self.recorder = recorder
        self.session = session
        self._servers = servers
        self._cache = cache
        self.server: Any = None
        self.view: Any = None  # the kit's view of the server: decodes env.cache's own payloads
        self.unobserved: set[str] = servers.unobserved  # commands whose keys the kit could not name
        self.twins: dict[tuple[int, int], tuple] = {}  # redis.asyncio pools' synchronous twins (redis_asyncio)

    def close_twins(self) -> None:
        """The world is over: its asyncio clients' twins let their connections go (on a real server,
        a socket each, which would otherwise wait for the garbage collector)."""
        twins, self.twins = self.twins, {}
        for _, _, twin in twins.values():
            with contextlib.suppress(Exception):
                twin.connection_pool.disconnect()

    def run_server(self) -> Any:
        """The run's Redis server (``backends.RedisServer``)."""
        if self.server is None:
            self._attach()
        return self.server

    def _attach(self) -> None:
        self.server = self._servers.redis()
        self.view = self._servers.redis_view(self._cache)

    def command(
        self,
        client: Any,
        commands: list[tuple[tuple, dict]],
        call: Callable[[], Any],
        *,
        alone: bool = False,
        batch: str = "",
    ) -> Any:
        """Record ``commands`` (one, or a pipeline's) sent by ``client``; ``call`` sends them as redis-py
        would. ``alone``: one command from a plain client, which may go out wrapped with the looks;
        ``batch``: how tables name what sent them at once (``"pipeline"``, ``"MULTI/EXEC"``)."""
        encode = client.get_encoder().encode
        parsed = []  # (name, args, keys as bytes)
        touched: list[bytes] = []
        if self.server is None:
            self._attach()
        known_fields = self.server.fields
        blocking = next((command_name(a) for a, _ in commands if _blocks(a)), None)
        if blocking is not None:
            from ...errors import UsageError

            raise _refuse(
                self.session,
                UsageError(
                    f"{blocking} waits on the server, where the kit cannot schedule what would end the wait "
                    "(this command was not sent); poll instead (a GET or LPOP in a loop with time.sleep), "
                    "whose waits the kit sees"
                ),
            )
        blind = False  # a command that may touch keys it does not name
        unknown = False  # ... one not in the kit's tables at all
        for args, _ in commands:
            name = command_name(args)
            hashed = fields_of(name, args)
            if hashed is not None:  # each field of a hash is an entry of its own
                key = encode(hashed[0])
                encoded = [HashField(key, encode(f)) for f in hashed[1]]
                known_fields.setdefault(key, set()).update(encoded)
            else:
                keys = keys_of(name, args)
                if keys is None:
                    self.unobserved.add(name)
                    keys = []
                    blind = unknown = True
                elif name in SCRIPTS and name not in READS and not self._lease_script([(name, args, keys)]):
                    blind = True  # a script may touch keys it did not declare in KEYS
                encoded = []
                for k in (encode(k) for k in keys):
                    # A command on a whole hash (DEL, EXPIRE) acts on every field of it the run has named:
                    # those fields are the entries, the hash only holds them. A script may write fields
                    # the run never named: it is looked at whole too, and new fields are split out after.
                    fields = known_fields.get(k)
                    if not fields:
                        encoded.append(k)
                    else:
                        encoded += sorted(fields) + ([k] if name in SCRIPTS else [])
            parsed.append((name, args, encoded))
            touched += [k for k in encoded if k not in touched]
        # What such a command did to the keys the run touched before is read around it too (so a
        # script's undeclared DEL is seen); what it did elsewhere cannot be, and the report says so.
        beside = self._beside(touched) if blind else []
        if not touched and not beside:
            if not self.unobserved.isdisjoint(p[0] for p in parsed):
                # Keys the kit cannot name: not judged (the report says so), but never sent after the
                # cleanup either; one atomic step, so nothing inside it (a server's own lock) is a
                # scheduling point while the gate is held.
                self.recorder.before("cache", parsed[0][0], None)
                with self.recorder.step(), self.server.gate:
                    self.server.refuse_if_closed()
                    return call()
            return call()  # PING, SCRIPT LOAD, CLIENT SETNAME: nothing to judge, nothing to switch at
        recorder = self.recorder
        first = parsed[0][0]
        recorder.before("cache", first, shown_key((touched or beside)[0]))
        fails = recorder.fails()
        if fails is False:  # an injected fault (--faults): the command never reaches the server
            self._record_failed(parsed, touched or beside)
            raise redis_errors().ConnectionError(f"{first} failed before taking effect (cachepact --faults)")
        sending = self.session.sending  # inside a recorded command: what it sends meanwhile is its own
        me = threading.get_ident()
        with recorder.step(), self.server.gate:
            self.server.refuse_if_closed()
            sending.add(me)
            ttls = None
            try:
                self.server.register(touched)
                if beside:
                    touched = touched + beside
                # Over a network, one round trip instead of three; in process, the looks cost less alone
                # (and fakeredis expires a key EXPIREd to 0 only once its clock moves, after the EXEC).
                # A command the kit cannot name the keys of may mean anything inside a MULTI (SHUTDOWN
                # is refused there): it goes out alone, between the looks.
                wrap = alone and not unknown and not self.server.fake and _wrappable(client, first)
                wrapped = None
                if alone and first in _LOOKS and not beside and _reads_itself(client, first, parsed[0][2], touched):
                    # A GET, HGET or MGET changes nothing and answers with what it read: its reply is
                    # both looks, so it goes out alone, one round trip as from a bare client.
                    try:
                        result, error = call(), None
                    except (redis_errors().ConnectionError, redis_errors().TimeoutError):
                        raise  # the server went away: the check ends with it (below)
                    except Exception as e:
                        result, error = None, e
                    before = after = [] if error is not None else self._read_reply(first, result)
                    wrapped = (before, (result, error), after, None)
                scriptable = first in _SCRIPTABLE and len(commands[0][0]) < _MAX_SCRIPT_ARGS
                if (
                    wrapped is None
                    and wrap
                    and scriptable
                    and self.server.can_script
                    and not any(isinstance(k, HashField) for k in touched)
                ):
                    wrapped = self._scripted(client, commands[0], touched)
                if wrap and wrapped is None and self.server.can_multi:
                    wrapped = self._wrapped(client, commands[0], touched)
                if wrapped is not None:
                    before, (result, error), after, ttls = wrapped
                else:
                    before = self.view.observe(touched)
                    try:
                        result, error = call(), None
                    except Exception as e:  # the command's own error is the adapter's to see
                        result, error = None, e
                    after = self.view.observe(touched)
            except (redis_errors().ConnectionError, redis_errors().TimeoutError) as e:
                self.server.lost = e  # the check ends with it, once this operation has unwound
                raise
            finally:
                sending.discard(me)
            if isinstance(error, redis_errors().NoScriptError) and fails is None:
                recorder.never_ran()  # redis-py loads the script and sends it again: that is the call
            if error is not None and self.server.fake and "unknown command" in str(error) and parsed[0][0] in SCRIPTS:
                self.server.problem = (
                    f"{parsed[0][0]} needs Lua, and the in-process server has none (the lupa package is missing): "
                    "pip install 'fakeredis[lua]', or check on a real server with --redis redis://host:port/N"
                )
            # An injected fault (--faults) whose reply is lost: the command took effect, recorded as
            # such, each step marked; the client then sees a timeout.
            recorder.marking = ("lost", "TimeoutError") if fails else None
            try:
                if isinstance(error, redis_errors().WatchError):
                    self._record_refused(parsed, touched, before)
                elif error is None or before != after:  # a command refused (NOSCRIPT, WRONGTYPE) did nothing
                    if beside:
                        touched, before, after = self._undeclared(parsed, touched, before, after, set(beside))
                    touched, before, after = self._hash_fields(parsed, touched, before, after)
                    self._record(parsed, touched, before, after, result, batch, ttls)
            finally:
                recorder.marking = None
        if fails:
            raise redis_errors().TimeoutError(f"{first}: the reply was lost; it took effect (cachepact --faults)")
        if error is not None:
            raise error
        return result

    def _record_failed(self, parsed: list[tuple[str, tuple, list[Any]]], keys: list[Any]) -> None:
        """A command that failed before reaching the server (``--faults``): one step, on the first key it
        names (a script's or a pipeline's first: the entry, before a lease or a lock key), as what it
        would have been (a removal, a look, a store), marked failed; it changed nothing."""
        name, args, _ = parsed[0]
        lease = self._lease_script(parsed)
        if lease is not None:  # one of cachepact.leases' scripts: what it is, not a script's worst
            action = {"lease_get": "get", "lease_set": "set"}.get(lease, "delete")
            command: Any = f"Leases.{_LEASE_CALLS[lease]}({shown_key(keys[0])})" if keys else render(args)
        else:
            action = "delete" if name in REMOVALS else "get" if name in READS else "set"
            command = render(args)
        with self.recorder.step():
            for key in keys[:1]:
                self.recorder.record(
                    "cache",
                    action,
                    shown_key(key),
                    None,
                    None,
                    Effect(None, None),
                    token=None,
                    ttl=None,
                    command=command,
                    fault="before",
                    error="ConnectionError",
                    depth=_DEPTH,
                )

    def _beside(self, touched: list[Any]) -> list[Any]:
        """The keys the run touched before (and their named fields), but for ``touched``."""
        fields = self.server.fields
        out: list[Any] = []
        for k in sorted(self.server.registered):
            out += sorted(fields[k]) if fields.get(k) else [k]
        return [k for k in out if k not in touched]

    def _undeclared(
        self, parsed: list[tuple[str, tuple, list[Any]]], touched: list[Any], before: list, after: list, beside: set
    ) -> tuple[list[Any], list, list]:
        """Keep, of the keys read beside a command, those it changed: each is a key it touched without
        naming it, which the report names (the kit saw it only because the run had touched it before)."""
        keep = [n for n, k in enumerate(touched) if k not in beside or before[n] != after[n]]
        for n in keep:
            if touched[n] in beside:
                self.unobserved.add(parsed[0][0])
                self._servers.undeclared.setdefault(parsed[0][0], set()).add(show(shown_key(touched[n])))
                for entry in parsed:
                    entry[2].append(touched[n])  # the command's own key from now on, for its step
        return [touched[n] for n in keep], [before[n] for n in keep], [after[n] for n in keep]

    def _hash_fields(
        self, parsed: list[tuple[str, tuple, list[Any]]], touched: list[Any], before: list, after: list
    ) -> tuple[list[Any], list, list]:
        """A key that held or now holds a hash, changed by a command that named no field of it (a
        script's HSET, a RENAME): its fields are the entries, as when HSET is sent itself. Each field
        is recorded as a key of its own, and is known from now on, so a later DEL of the hash acts on
        it. Without this a script filling ``user:k1[value]`` stored the whole hash, a payload no
        decode could read (a false who-populates)."""
        known = self.server.fields
        if not any(k in known for k in touched) and not any(_is_hash(v) for v in (*before, *after)):
            return touched, before, after  # the common case: no hash in sight
        keys, was, now = [], [], []
        named = set(touched)
        for k, b, a in zip(touched, before, after):
            whole = not isinstance(k, HashField) and (
                k in known or ((_is_hash(b) or _is_hash(a)) and _holds_entries(k, b, a))
            )
            if not whole or not (b is None or _is_hash(b)) or not (a is None or _is_hash(a)):
                keys.append(k), was.append(b), now.append(a)
                continue
            # The hash itself is no entry: its fields are, those looked at already and the new ones.
            old, new = (b[1] or {}) if b else {}, (a[1] or {}) if a else {}
            fields = [f for f in (HashField(k, f) for f in sorted(set(old) | set(new))) if f not in named]
            known.setdefault(k, set()).update(fields)
            for f in fields:
                keys.append(f), was.append(old.get(f.field)), now.append(new.get(f.field))
            for entry in parsed:
                if k in entry[2]:
                    entry[2].extend(fields)  # the command's own keys from now on, for its step
        return keys, was, now

    def _wrapped(self, client: Any, command: tuple[tuple, dict], touched: list[bytes]) -> tuple | None:
        """The looks and the command in one round trip: ``MULTI``, each key read, the command, each key
        read again with its time to live, ``EXEC`` (atomic on the server too). None when the server
        refused the transaction as a whole (a malformed command): then it is sent alone."""
        args, options = command
        pipe = client.pipeline(transaction=True)
        for k in touched:
            pipe.execute_command(*_look(k))
        pipe.execute_command(*args, **options)
        for k in touched:
            pipe.execute_command(*_look(k))
            pipe.execute_command("PTTL", k.key if isinstance(k, HashField) else k)
        try:
            replies = pipe.execute(raise_on_error=False)
        except redis_errors().ExecAbortError:
            return None
        finally:
            pipe.reset()
        n = len(touched)
        before, reply, rest = replies[:n], replies[n], replies[n + 1 :]
        after, ttl_ms = rest[0::2], rest[1::2]
        before = self._whole(touched, before)
        after = self._whole(touched, after)
        ttls = {k: self.server.note_ttl(k, ms) for k, ms in zip(touched, ttl_ms)}
        outcome = (None, reply) if isinstance(reply, Exception) else (reply, None)
        return before, outcome, after, ttls

    def _scripted(self, client: Any, command: tuple[tuple, dict], touched: list[bytes]) -> tuple | None:
        """The looks and a string command in one ``EVALSHA`` of the kit's own script, which reads each
        key, runs the command, and reads each key again with its time to live: one command to pack and
        one reply to parse instead of a transaction's six. The reply is parsed as redis-py would have."""
        args, options = command
        n = len(touched)
        errors = redis_errors()
        try:
            try:
                replies = client.execute_command("EVALSHA", _LOOK_SHA, n, *touched, *args)
            except errors.NoScriptError:
                client.execute_command("SCRIPT LOAD", _LOOK)
                replies = client.execute_command("EVALSHA", _LOOK_SHA, n, *touched, *args)
        except errors.ResponseError as e:
            # The user may not run scripts (an ACL without @scripting, a managed Redis): the script never
            # ran, so the command goes out another way, and so do all the later ones.
            if not _refused_kit_command(e):
                raise
            self.server.can_script = False
            return None
        before, reply, rest = replies[:n], replies[n], replies[n + 1 :]
        after, ttl_ms = rest[:n], rest[n:]
        if isinstance(reply, Exception):
            outcome: tuple = (None, reply)
        else:
            callback = client.response_callbacks.get(args[0])
            options = {k: v for k, v in options.items() if k != "keys"}
            outcome = (callback(reply, **options) if callback else reply, None)
        ttls = {k: self.server.note_ttl(k, ms) for k, ms in zip(touched, ttl_ms)}
        return self._whole(touched, before), outcome, self._whole(touched, after), ttls

    def _read_reply(self, name: str, reply: Any) -> list[Any]:
        """What a GET, HGET or MGET read, as the kit's looks at its keys."""
        unwrap = self.view.unwrap
        if name == "MGET":
            return [unwrap(p) for p in reply]
        return [unwrap(reply)]

    def _whole(self, keys: list[bytes], replies: list[Any]) -> list[Any]:
        """GET replies as the kit's looks: a key of another type (WRONGTYPE) read whole by the kit."""
        out = []
        for k, reply in zip(keys, replies):
            if isinstance(reply, Exception):
                out.append(None if isinstance(k, HashField) else self.view.observe([k])[0])
            else:
                out.append(self.view.unwrap(reply))
        return out

    def _record(
        self,
        parsed: list[tuple[str, tuple, list[bytes]]],
        touched: list[bytes],
        before: list[Any],
        after: list[Any],
        result: Any,
        pipeline: str,
        ttls: dict[bytes, float | None] | None = None,
    ) -> None:
        lease = self._lease_script(parsed) if not pipeline else None
        if lease is not None:
            self._record_lease(lease, parsed[0], before, after, result)
            return
        batch = Batch(tuple(args for _, args, _ in parsed), pipeline) if len(touched) > 1 else None
        for n, key in enumerate(touched):
            was, now = before[n], after[n]
            sent = [(name, args) for name, args, keys in parsed if key in keys]
            names = {name for name, _ in sent}
            removal = bool(names & REMOVALS)
            if was is not None and now is None:
                action, value, ttl = "delete", None, None
                self.server.forget_ttl(key)
            elif now is not None and now != was:
                action, value = "set", now
                # A field a script's hash gained was not looked at by name: its TTL is its hash's.
                ttl = ttls[key] if ttls is not None and key in ttls else self.server.pttl(key)
            elif removal:
                action, value, ttl = "delete", None, None  # the removal of nothing there
            else:
                action, value, ttl = "get", None, None  # left as it was: read (or a stutter)
            effect = _did(action, was, now) if names & SCRIPTS and not names & READS else None
            step_key = shown_key(key)
            self.recorder.record(
                "cache",
                action,
                step_key,
                value,
                was if action == "get" else (result if not pipeline and len(touched) == 1 else None),
                Effect(was, now),
                token=None,
                ttl=ttl,
                command=Sent(
                    tuple(args for _, args in sent), pipeline, step_key, effect, batch=batch, did=(action, was, now)
                ),
                depth=_DEPTH,
            )

    def _record_refused(self, parsed: list[tuple[str, tuple, list[Any]]], touched: list[Any], before: list) -> None:
        """A transaction whose WATCH saw a change: EXEC ran nothing. Each key it would have stored is a
        fill the cache refused (as an ``add`` that found an entry), so a read may return without one.
        The refused stores of several keys are one call, as any transaction is: one row in reports."""
        refused = []
        was = dict(zip(touched, before))
        for n, key in enumerate(touched):
            stores = [args for name, args, keys in parsed if key in keys and name not in READS and name not in REMOVALS]
            if stores and not _moved_from(stores[-1], key):  # a RENAME's source: no fill refused there
                refused.append((n, key, stores))
        batch = Batch(tuple(args for _, args, _ in parsed), "MULTI/EXEC") if len(refused) > 1 else None
        for n, key, stores in refused:
            self.recorder.record(
                "cache",
                "add",
                shown_key(key),
                _would_store(stores, key, was),
                False,
                Effect(before[n], before[n]),
                token=None,
                ttl=None,
                command=Sent(
                    tuple(stores), "MULTI/EXEC", shown_key(key), "refused: a WATCHed key changed", batch=batch
                ),
                depth=_DEPTH,
            )

    # -- cachepact.leases ---------------------------------------------------------------------------

    def _lease_script(self, parsed: list[tuple[str, tuple, list[bytes]]]) -> str | None:
        name, args, keys = parsed[0]
        if name not in ("EVAL", "EVALSHA") or len(keys) != 2:
            return None
        script = args[1]
        if isinstance(script, str):
            script = script.encode()
        return _lease_scripts().get(script)

    def _record_lease(self, action: str, command: tuple, before: list, after: list, result: Any) -> None:
        """A ``cachepact.leases`` script: the key's lease as ``env.cache``'s are recorded."""
        _, args, (key, lease_key) = command
        self.server.lease_keys.add(lease_key)
        self.server.leased[lease_key] = key
        argv = args[5:]
        was, now = before[0], after[0]
        # The lease's own expiry (PX) is what the clock may run out inside a race: noted when one is
        # granted, forgotten when it is gone.
        if after[1] is not None and before[1] is None:
            self.server.pttl(lease_key)
        elif after[1] is None:
            self.server.forget_ttl(lease_key)
        if now is None:
            self.server.forget_ttl(key)
        effect = Effect(was, now, before[1] is not None, after[1] is not None)
        token = value = ttl = None
        if action == "lease_get":
            shown = (was, _text(result) if was is None and result is not None else None)
            if was is not None:
                shown = (was, None)
        elif action == "lease_set":
            token = _text(argv[0]) if argv else None
            value = now if now != was else (argv[1] if len(argv) > 1 else None)
            shown = bool(result)
            if shown and now is not None:
                ttl = self.server.pttl(key)
        else:
            shown = None
        self.recorder.record(
            "cache",
            action,
            shown_key(key),
            value,
            shown,
            effect,
            token=token,
            ttl=ttl,
            command=f"Leases.{_LEASE_CALLS[action]}({shown_key(key)})",
            depth=_DEPTH,
        )


@functools.cache
def _lease_scripts() -> dict[bytes, str]:
    """``cachepact.leases``'s scripts, by source and by SHA1 (what ``EVALSHA`` sends): made once, on
    first use, and never changed (a constant of the kit, so shared by every check)."""
    import hashlib

    from ...leases import SCRIPTS

    known = {}
    for action, source in SCRIPTS.items():
        known[source.encode()] = action
        known[hashlib.sha1(source.encode()).hexdigest().encode()] = action
    return known


_LEASE_CALLS = {"lease_get": "get", "lease_set": "set", "delete": "delete"}
_DEPTH = 5  # attribution starts at the caller of the hooked redis-py method: record <- _record <- command <- hook


class Sent:
    """The command(s) a step is the effect of, rendered only when a report shows it: most steps of a
    check are never shown, and rendering every argument costs more than judging the step."""

    __slots__ = ("_text", "batch", "commands", "did", "effect", "key", "pipeline")

    def __init__(
        self,
        commands: tuple[tuple, ...],
        pipeline: str,
        key: Any,
        effect: str | None,
        *,
        batch: Batch | None = None,
        did: tuple[str, Any, Any] | None = None,
    ) -> None:
        self.commands, self.pipeline, self.key, self.effect = commands, pipeline, key, effect
        self.batch = batch  # what was sent at once (a pipeline, a script, a command on several keys)
        self.did = did  # (action, before, after): what it did to this step's key, rendered on demand
        self._text: str | None = None

    def effect_text(self) -> str:
        """What the command did to this step's key: ``read``, ``removed``, ``stored k1.v0``."""
        if self.effect is not None:
            return self.effect
        return _did(*self.did) if self.did is not None else "read"

    def __str__(self) -> str:
        if self._text is None:
            text = "; ".join(render(args) for args in self.commands)
            if self.pipeline:
                text = f"{self.pipeline}: {text}"
            if self.effect is not None:
                text += f"  [{show(self.key)}: {self.effect}]"
            self._text = text
        return self._text

    __repr__ = __str__

    def reply(self, result: Any) -> str | None:
        """What the server answered for the step's key where its result (the payload the kit read)
        is not that: an ``EXISTS`` counts the key, 1 or 0 (named, when it names several keys, each a
        row). None: the result is shown as it is."""
        if all(command_name(args) == "EXISTS" for args in self.commands):
            count = "0" if result is None else "1"
            return f"{show(self.key)}: {count}" if any(len(args) > 2 for args in self.commands) else count
        if self.did is not None and self.did[0] == "get" and all(command_name(a) not in READS for a in self.commands):
            return "unchanged"  # it could have written (SET NX, a script) and left the key as it was
        return None

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class Batch:
    """The commands one recorded call sent at once (one command, a pipeline's, a script), shared by
    the steps it is the effect of, one per key: tables show them as one row, the judge as its net
    effect on each key."""

    __slots__ = ("_text", "commands", "pipeline")

    def __init__(self, commands: tuple[tuple, ...], pipeline: str) -> None:
        self.commands, self.pipeline = commands, pipeline
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            text = "; ".join(render(args) for args in self.commands)
            self._text = f"{self.pipeline}: {text}" if self.pipeline else text
        return self._text


def _did(action: str, was: Any, now: Any) -> str:
    return {"delete": "removed" if was is not None else "nothing to remove", "set": f"stored {_arg(now)}"}.get(
        action, "read"
    )


def _look(k: Any) -> tuple:
    return ("HGET", k.key, k.field) if isinstance(k, HashField) else ("GET", k)


def shown_key(key: Any) -> Any:
    """A key as steps and the judge name it: text when it is text (``k1``, ``user:1``); a hash's
    field as itself (``products[k1]``)."""
    if isinstance(key, HashField):
        return key
    try:
        return key.decode()
    except UnicodeDecodeError:
        return key


def _text(x: Any) -> Any:
    return x.decode(errors="replace") if isinstance(x, bytes) else x


def _arg(x: Any, limit: int = 40) -> str:
    if isinstance(x, bytes):
        try:
            x = x.decode()
        except UnicodeDecodeError:
            text = repr(x)
            return text if len(text) <= limit else text[: limit - 1] + "…"
    text = str(x)
    if not text.isprintable() or " " in text:
        text = repr(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(args: tuple) -> str:
    """A command as sent: ``SET k1 k1.v0 EX 300``; a script's source or SHA shortened."""
    name = command_name(args)
    shown = [str(args[0])]
    for n, a in enumerate(args[1:], 1):
        if n == 1 and name in SCRIPTS:
            shown.append(_arg(a, 12))
        else:
            shown.append(_arg(a))
    return " ".join(shown)


# -- the hook ---------------------------------------------------------------------------------------


# Commands that block or wait server-side mean something else inside MULTI: they go out alone.
_ALONE = frozenset(
    [
        "BLPOP",
        "BRPOP",
        "BLMOVE",
        "BRPOPLPUSH",
        "BZPOPMIN",
        "BZPOPMAX",
        "BLMPOP",
        "BZMPOP",
        "XREAD",
        "XREADGROUP",
        "WAIT",
        "WATCH",
        "MULTI",
        "EXEC",
        "DISCARD",
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "MONITOR",
    ]
)


# String commands whose replies a Lua script hands back unchanged (bulk, integer, status, nil, a flat
# array): these go out inside the kit's look script.
# (Not INCR and its kin: Lua numbers are doubles, so a reply past 2**53 would come back rounded.)
_SCRIPTABLE = names(
    """GET SET SETEX PSETEX SETNX GETSET GETDEL MGET MSET MSETNX DEL UNLINK EXISTS EXPIRE PEXPIRE EXPIREAT
    PEXPIREAT PERSIST TTL PTTL APPEND STRLEN TOUCH"""
)
# KEYS: the keys the command touches; ARGV: the command. Errors come back in place (pcall), so a
# WRONGTYPE look or a refused command is a reply element, never an aborted script.
_LOOK = """
local out, n = {}, #KEYS
for i = 1, n do out[i] = redis.pcall('GET', KEYS[i]) end
out[n + 1] = redis.pcall(unpack(ARGV))
for i = 1, n do
  out[n + 1 + i] = redis.pcall('GET', KEYS[i])
  out[2 * n + 1 + i] = redis.call('PTTL', KEYS[i])
end
return out
"""
_LOOK_SHA = __import__("hashlib").sha1(_LOOK.encode()).hexdigest()


_MAX_SCRIPT_ARGS = 4000  # Lua's unpack() takes about 8000 values: a bigger command goes out in a MULTI


def _refused_kit_command(e: Exception) -> bool:
    """The server refused the kit's own wrapping (no permission, scripting or MULTI disabled)."""
    text = str(e)
    return isinstance(e, redis_errors().NoPermissionError) or "NOPERM" in text or "unknown command" in text


# Commands that change nothing and answer with exactly what their keys hold.
_LOOKS = frozenset(["GET", "HGET", "MGET"])


def _reads_itself(client: Any, name: str, keys: list[Any], touched: list[Any]) -> bool:
    """Whether a read's reply is the looks: a client that returns bytes (the looks compare bytes),
    and each key named once (MGET k1 k1 answers twice for one key)."""
    import redis.client

    if isinstance(client, redis.client.Pipeline) or client.get_encoder().decode_responses:
        return False
    if name != "HGET" and any(isinstance(k, HashField) for k in touched):
        return False  # a GET of a hash whose fields the run named: its reply is no field's
    return len(keys) == len(touched)


_BLOCKING = frozenset(["BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BZPOPMIN", "BZPOPMAX", "BLMPOP", "BZMPOP", "WAIT"])


def _blocks(args: tuple) -> bool:
    """Whether a command waits on the server (``BLPOP``, ``XREAD BLOCK``): nothing the kit schedules
    could end the wait while it holds the step."""
    name = command_name(args)
    if name in _BLOCKING:
        return True
    if name in ("XREAD", "XREADGROUP"):
        return any(
            isinstance(a, (str, bytes)) and str(a if isinstance(a, str) else a.decode()).upper() == "BLOCK"
            for a in args
        )
    return False


def _wrappable(client: Any, name: str) -> bool:
    """Whether a command may go out inside the kit's ``MULTI``: from a plain client that returns bytes
    (the looks compare bytes; a decoding client could fail on a binary value after the fact)."""
    import redis.client

    if name in _ALONE or isinstance(client, redis.client.Pipeline):
        return False
    return not client.get_encoder().decode_responses


def env_in_decode() -> Exception:
    from ...errors import DefinitionError

    return DefinitionError(
        "Adapter.decode called env (a cache or Redis read); decode must map a payload to its value from "
        "the payload alone: read a version or counter in cache_key instead, which may read env.redis",
        field="decode",
    )


def redis_errors() -> Any:
    import redis.exceptions

    return redis.exceptions


def _recording(client: Any) -> RedisRecording | None:
    """Where the running session records this command (None: send it as redis-py would)."""
    me = threading.get_ident()
    if left_behind(me):
        raise redis_errors().ConnectionError(
            "cachepact: the check this thread worked for is over (it was left behind by a timeout or "
            "Ctrl-C); the command was not sent"
        )
    session = running()
    if session is None or session.recording is None:
        return None
    if session.decoding and me in session.decoding:
        raise _refuse(session, env_in_decode())
    if me in session.peeking:
        return None  # cache_key reading the run's stores: the kit's peek, not a step
    if me in session.sending or getattr(client.connection_pool, "_cachepact_internal", False):
        return None  # a command the kit's own code sends (its looks, a recorded command's parts)
    return session.recording


def _refuse(session: Any, error: Exception) -> Exception:
    """The check stops with ``error`` (exit 2) once the operation unwinds, even if it is swallowed."""
    if session.refused is None:
        session.refused = error
    return error


def _peek_only(args: tuple) -> None:
    """While ``cache_key`` runs, the adapter's commands are the kit's peeks: reads only."""
    session = running()
    if session is not None and session.peeking and threading.get_ident() in session.peeking:
        name = command_name(args)
        if name not in READS:
            from ...errors import DefinitionError

            raise _refuse(
                session,
                DefinitionError(
                    f"Adapter.cache_key sent {name}; cache_key may only read the stores (GET a version), "
                    "never write: make the key its first write creates in write or read instead",
                    field="cache_key",
                ),
            )


def _execute_command(self: Any, *args: Any, **options: Any) -> Any:
    _peek_only(args)
    rec = _recording(self)
    original = _originals["execute_command"]
    if rec is None:
        return original(self, *args, **options)
    return rec.command(self, [(args, options)], lambda: original(self, *args, **options), alone=True)


def _immediate_execute_command(self: Any, *args: Any, **options: Any) -> Any:
    rec = _recording(self)
    original = _originals["immediate_execute_command"]
    if rec is None:
        return original(self, *args, **options)
    return rec.command(self, [(args, options)], lambda: original(self, *args, **options))


def _pipeline_execute(self: Any, raise_on_error: bool = True) -> Any:
    rec = _recording(self)
    original = _originals["execute"]
    if rec is None or not self.command_stack:
        return original(self, raise_on_error)
    batch = "MULTI/EXEC" if self.transaction else "pipeline"
    return rec.command(self, list(self.command_stack), lambda: original(self, raise_on_error), batch=batch)


class hooked:
    """While entered, redis-py's clients record into the running session's ``recording``. On
    leaving, a thread a check left running (a timeout, Ctrl-C) could still send commands after the
    kit removed the run's keys: while any such thread runs its job the methods stay wrapped,
    refusing exactly those threads' commands (``runtime.session.left_behind``), and nobody else's.

    ``depth`` and ``installed`` are class attributes on purpose: they count the patch of redis-py,
    which is the process's (every check's ``Servers`` enters it), not any one check's."""

    depth = 0
    installed = False

    def __enter__(self) -> None:
        if hooked.depth == 0 and not hooked.installed:
            import redis.client

            hooked.installed = True

            _originals["execute_command"] = redis.client.Redis.execute_command
            _originals["immediate_execute_command"] = redis.client.Pipeline.immediate_execute_command
            _originals["execute"] = redis.client.Pipeline.execute
            redis.client.Redis.execute_command = _execute_command
            redis.client.Pipeline.immediate_execute_command = _immediate_execute_command
            redis.client.Pipeline.execute = _pipeline_execute
            redis_asyncio.install()  # redis.asyncio's commands go through synchronous twins
        hooked.depth += 1

    def __exit__(self, *exc: object) -> None:
        hooked.depth -= 1
        if hooked.depth > 0 or lingering():
            return
        if hooked.installed:
            import redis.client

            hooked.installed = False
            redis.client.Redis.execute_command = _originals["execute_command"]
            redis.client.Pipeline.immediate_execute_command = _originals["immediate_execute_command"]
            redis.client.Pipeline.execute = _originals["execute"]
            redis_asyncio.uninstall()


def _is_hash(observed: Any) -> bool:
    """A look's value is a whole hash (the view reads a hash key as ``("hash", {field: value})``)."""
    return type(observed) is tuple and len(observed) == 2 and observed[0] == "hash"


_VALUE_AT = {"SET": 2, "SETNX": 2, "GETSET": 2, "SETEX": 3, "PSETEX": 3}
_MOVES = ("RENAME", "RENAMENX", "COPY")


def _bytes(x: Any) -> Any:
    return x.encode() if isinstance(x, str) else x


def _moved_from(args: tuple, key: Any) -> bool:
    """Whether ``key`` is the source of a RENAME or COPY in ``args``."""
    return command_name(args) in _MOVES and len(args) > 2 and _bytes(args[1]) == key


def _would_store(stores: list[tuple], key: Any, was: dict) -> Any:
    """What a refused transaction would have left under ``key``: the last SET's value, or what a
    RENAME or COPY onto it would have brought (its source as it stood); None when the kit cannot tell
    (a counter, a field). An EXPIRE after them stores nothing of its own."""
    for args in reversed(stores):
        name = command_name(args)
        if name in _MOVES and len(args) > 2 and _bytes(args[2]) == key:
            return was.get(_bytes(args[1]))
        at = _VALUE_AT.get(name)
        if at is not None and len(args) > at:
            return args[at]
    return None


def _holds_entries(key: Any, before: Any, after: Any) -> bool:
    """Whether a hash a script changed caches the run's keys: its name or a field names one
    (``user:k1``, ``users`` with field ``k1``). Any other hash (an outbox or CDC record a write
    appends) is a side record, read whole, as a list is."""
    fields = [*((before or (None, {}))[1] or {}), *((after or (None, {}))[1] or {})]
    return any(RUN_KEY.search(_text(x) or "") for x in (key, *fields))


__all__ = ["Batch", "RedisRecording", "Sent", "hooked", "render", "shown_key"]
