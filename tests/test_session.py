"""One run, one session: a check's mutable state is its own, and one check at a time runs in a process.

The kit patches what is the whole process's (threading's primitives, ``time.sleep``, redis-py, the
clock through time-machine), so two checks at once in one process cannot both be right: the second
is refused at once, in one line that names the fix. Checks one after another each start from
nothing the last one left. And no module of the kit keeps a run's state in a module-level container
(read from the source: a new one fails here until it is listed with its reason).
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

from cachepact import Adapter, Result, UsageError, check, prove
from cachepact.adapters.broken import aside_update_on_write
from cachepact.adapters.reference import cache_aside, cache_aside_leased
from cachepact.conformance.runtime.session import Session, running
from test_polled_locks import _gives_up as gives_up

QUICK = {"seed": 0, "max_examples": 5, "concurrency": False}
REFUSAL = "is running in this process (started on thread "
FIX = "; run checks one after another, or in separate processes"


def _is_refusal(e: BaseException, what: str = "check") -> bool:
    text = str(e)
    return (
        type(e) is UsageError
        and text.startswith(f"another {what} {REFUSAL}")
        and text.endswith(FIX)
        and "\n" not in text
    )


# -- two at once --------------------------------------------------------------------------------------


def _at_the_same_moment(makes: dict) -> dict[str, object]:
    """``check`` each of ``makes`` on a thread of its own, both calls started together (a barrier):
    each call's Result, or what it raised. The first to take the process holds it in its first
    ``on_progress`` until the other call has returned, so the two really overlap, whichever wins."""
    barrier = threading.Barrier(len(makes))
    ended = {name: threading.Event() for name in makes}
    outcome: dict[str, object] = {}

    def call(name: str) -> None:
        other = next(ended[n] for n in makes if n != name)

        def hold(examples: int, operations: int) -> None:
            other.wait(timeout=30)  # the other call is made, and ends, while this check runs

        barrier.wait(timeout=30)
        try:
            outcome[name] = check(makes[name], "cache-aside", target=name, on_progress=hold, **QUICK)
        except BaseException as e:
            outcome[name] = e
        finally:
            ended[name].set()

    threads = [threading.Thread(target=call, args=(name,)) for name in makes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcome


def test_two_checks_at_the_same_moment_one_gives_its_verdict_the_other_is_refused_in_one_line():
    makes = {"passing": cache_aside_leased, "failing": aside_update_on_write}
    for _ in range(2):
        outcome = _at_the_same_moment(makes)
        assert set(outcome) == set(makes)
        refused = [name for name, got in outcome.items() if isinstance(got, BaseException)]
        for name in refused:
            assert _is_refusal(outcome[name]), repr(outcome[name])  # nothing but the refusal
        assert len(refused) == 1, outcome  # one ran, while the other was refused
        for name, got in outcome.items():
            if isinstance(got, Result):  # the true verdict, its own
                assert got.target == name
                if name == "passing":
                    assert got.passed, got.report()
                else:
                    assert got.finding is not None and got.finding.invariant == "invalidate-not-update", got.report()
        # The refused one runs fine afterwards: nothing was left held.
        again = check(makes[refused[0]], "cache-aside", target=refused[0], **QUICK)
        assert again.passed == (refused[0] == "passing")
    assert running() is None


def test_a_check_or_proof_started_while_one_runs_is_refused_and_the_running_one_goes_on():
    seen: list[BaseException] = []

    def nested(examples: int, operations: int) -> None:
        if not seen:
            for call in (lambda: check(cache_aside, **QUICK), lambda: prove(cache_aside, readers=1, writers=1)):
                try:
                    call()
                except BaseException as e:
                    seen.append(e)

    result = check(cache_aside_leased, "cache-aside", on_progress=nested, **QUICK)
    assert result.passed, result.report()
    assert len(seen) == 2 and all(_is_refusal(e) for e in seen), seen

    def builds_and_tries_a_check(env):
        try:
            check(cache_aside, **QUICK)
        except BaseException as e:
            seen.append(e)
        return cache_aside(env)

    seen.clear()
    proof = prove(builds_and_tries_a_check, readers=1, writers=1)
    assert not proof.holds and proof.counterexample.finding.invariant == "coherent-at-rest"
    assert seen and all(_is_refusal(e, "proof") for e in seen), seen[:1]


def test_a_session_nests_in_itself_and_refuses_another_until_it_ends():
    first, second = Session(), Session(kind="proof")
    with first.claim():
        with first.claim():  # a world inside the check
            assert running() is first
        assert running() is first
        with pytest.raises(UsageError) as e:
            second.claim().__enter__()
        assert str(e.value) == (
            f"another check is running in this process (started on thread {threading.get_ident()}); run "
            "checks one after another, or in separate processes"
        )
    assert running() is None
    with second.claim():
        assert running() is second
    assert running() is None


# -- one after another ---------------------------------------------------------------------------------


def _unrelated_helper(key):
    return key


def _naming_what_never_runs(env):
    adapter = cache_aside_leased(env)
    return Adapter(read=adapter.read, write=adapter.write, cache_code=(_unrelated_helper,))


def test_a_cache_code_warning_is_its_checks_alone():
    warned = check(_naming_what_never_runs, "cache-aside", **QUICK)
    assert any("_unrelated_helper was never on the call stack" in w for w in warned.warnings), warned.warnings
    # Neither the next check nor a proof's counterexample inherits it.
    assert check(cache_aside_leased, "cache-aside", **QUICK).warnings == ()
    proof = prove(cache_aside, readers=1, writers=1)
    assert proof.counterexample is not None and proof.counterexample.warnings == ()


def _gives_up(env):
    """test_polled_locks' SET NX lock tried 100 times (more than the lone rounds the scheduler
    explores), then gone ahead without: the branch where a waiter retries alone is cut, and the
    report says so."""
    return gives_up(env, tries=100)


# r1 takes the lock, w1 polls for it; choice 100 (the scheduler's ALONE + 0) lets w1 retry alone,
# past the 64 lone rounds the scheduler explores: that schedule is cut, and counted.
ALONE_PAST_THE_ROUNDS = "con/|r:k1,w:k1/0.1.0.0.100"


def test_schedules_cut_in_one_check_are_not_counted_in_the_next():
    spun = check(_gives_up, "cache-aside", replay=ALONE_PAST_THE_ROUNDS, target="t:gives_up")
    assert [w for w in spun.warnings if "polled alone for 64 rounds" in w] == [
        "1 schedule cut where an operation polled alone for 64 rounds (a lock or a retry loop only another "
        "operation ends, or a loop longer than that): a loop that gives up after more than 64 tries was not "
        "explored to its end"
    ], spun.report()
    assert check(cache_aside_leased, "cache-aside", **QUICK).warnings == ()
    proof = prove(cache_aside, readers=1, writers=1)
    assert proof.counterexample is not None and proof.counterexample.warnings == ()


_RELEASE = threading.Event()  # made at import: a wait on it is out of the kit's sight
_TRIED = threading.Event()
_AFTER: list[str] = []


def _stuck_then_sends(env):
    """The first operation blocks out of sight past the step timeout (so its check leaves its thread
    behind), then, once released, sends a Redis command."""
    r = env.redis
    adapter = cache_aside_leased(env)

    def stuck():
        if not _AFTER:  # the first operation of the first check only
            _AFTER.append("blocked")
            _RELEASE.wait(timeout=30)
            try:
                r.get("p:k1")
                _AFTER.append("sent")
            except Exception as e:
                _AFTER.append(str(e))
            finally:
                _TRIED.set()

    def read(key):
        stuck()
        return adapter.read(key)

    def write(key, value):
        stuck()
        adapter.write(key, value)

    return Adapter(read=read, write=write)


def test_a_thread_an_earlier_check_left_behind_is_refused_not_recorded_into_the_next():
    left = check(_stuck_then_sends, "cache-aside", step_timeout=0.5, **QUICK)
    assert left.finding is not None and left.finding.invariant == "timeout", left.report()
    assert _AFTER == ["blocked"]

    def release(examples: int, operations: int) -> None:
        if not _RELEASE.is_set():
            _RELEASE.set()  # while this check runs, the thread the last one left sends its command
            assert _TRIED.wait(timeout=10)

    after = check(cache_aside_leased, "cache-aside", on_progress=release, **QUICK)
    assert after.passed and after.warnings == (), after.report()
    assert _AFTER[1:] == [
        "cachepact: the check this thread worked for is over (it was left behind by a timeout or Ctrl-C); "
        "the command was not sent"
    ]


# -- no run state in module globals ---------------------------------------------------------------------

CONFORMANCE = Path(__file__).resolve().parent.parent / "src" / "cachepact" / "conformance"

# Module-level (and class-level) state the kit keeps on purpose, each with why it is not a session's.
# (module, name): reason. ``name`` is what is bound to a mutable container, or what code mutates at
# run time (a module-level object, an imported module it patches, a class attribute).
ALLOWED = {
    ("runtime/session.py", "_PROCESS"): "the process's one running session and the threads sessions left "
    "behind: patched code reached from any thread has no run to ask but the process",
    ("runtime/control.py", "_CONTROLLED"): "the nesting of the process-wide patches; a factory a check left "
    "blocked inside them leaves later, maybe during the next check",
    ("runtime/primitives.py", "threading"): "the process-wide patch of threading's primitives",
    ("runtime/primitives.py", "time"): "the process-wide patch of time.sleep",
    ("runtime/primitives.py", "_PATCH"): "a constant table: what threading holds while patched",
    ("runtime/primitives.py", "_REAL"): "a constant table: the standard library's primitives, saved at import",
    ("runtime/helpers.py", "threading"): "the process-wide patch of Thread.start and Thread.join",
    ("runtime/helpers.py", "ThreadPoolExecutor"): "the process-wide patch of ThreadPoolExecutor.submit",
    ("runtime/helpers.py", "_real_shutdown"): "asyncio's original, saved when first patched over (process-wide)",
    ("record/redis_hook.py", "redis"): "the process-wide patch of redis-py's client methods",
    ("record/redis_hook.py", "_originals"): "redis-py's original methods, saved when first patched over",
    ("record/redis_hook.py", "hooked"): "depth and installed of the process-wide redis-py patch",
    ("record/redis_hook.py", "_LEASE_CALLS"): "a constant table: lease script -> the Leases call it is",
    ("record/redis_hook.py", "_VALUE_AT"): "a constant table: SET-like command -> where its value is",
    ("record/coroutines.py", "futures"): "the process-wide patch of asyncio.futures._get_loop, which answers "
    "differently only between the kit's own loops",
    ("record/coroutines.py", "mixins"): "the process-wide patch of asyncio's binding of a Lock, Event or Queue "
    "to one loop, lifted only between the kit's own loops",
    ("record/redis_asyncio.py", "_WRAPPERS"): "a constant table: patched redis.asyncio method -> its wrapper",
    ("runtime/interrupts.py", "sys"): "sys.unraisablehook, the process's, quieted while a check runs and put back",
    ("drive/replay.py", "INITIAL"): "a constant: the DB every world starts from (copied, never written)",
    ("judge/judge.py", "KEY_INDEX"): "a constant table: key -> its index",
    ("judge/judge.py", "RAISED"): "an immutable sentinel: what an operation that raised returned",
    ("judge/judge.py", "Judge._FAILED_KIND"): "a constant table: a failed call -> the step kind it was",
    ("judge/refinement.py", "_WHO"): "a constant table: step kind -> the invariant it answers to",
    ("judge/refinement.py", "_LABELS"): "a constant table: step kind -> the model's target and actions",
    ("_contract.py", "ABSENT"): "an immutable sentinel (cachepact.ABSENT)",
    ("_contract.py", "NO_ENTRY"): "an immutable sentinel (cachepact.NO_ENTRY)",
}

_CONTAINERS = {
    "dict", "list", "set", "bytearray", "defaultdict", "deque", "OrderedDict", "Counter", "ChainMap",
    "WeakValueDictionary", "WeakKeyDictionary", "WeakSet", "local", "SimpleQueue", "Queue", "LifoQueue",
}  # fmt: skip
_MUTATORS = {
    "append", "extend", "insert", "add", "update", "setdefault", "pop", "popitem", "remove", "discard",
    "clear", "intersection_update", "difference_update", "symmetric_difference_update", "appendleft",
    "popleft", "put", "sort", "reverse", "__setitem__", "__delitem__",
}  # fmt: skip


def _kit_classes() -> set[str]:
    return {
        node.name
        for path in CONFORMANCE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
    }


def _mutable(value: ast.expr | None, kit: set[str]) -> bool:
    """A list, dict or set (or a comprehension of one), a call making a container, or an instance of
    one of the kit's own classes."""
    if isinstance(value, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)):
        return True
    if isinstance(value, ast.Call):
        f = value.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        return name in _CONTAINERS or name in kit
    return False


def _root(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _targets(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, (ast.Assign, ast.Delete)):
        return list(node.targets)
    if isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        return [node.target]
    return []


def _module_level(tree: ast.Module) -> tuple[list[ast.stmt], set[str]]:
    """The statements run at import (under ``if``/``try`` too) and every name they bind."""
    stmts: list[ast.stmt] = []

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            stmts.append(node)
            if isinstance(node, ast.If):
                walk(node.body + node.orelse)
            elif isinstance(node, ast.Try):
                walk(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])

    walk(tree.body)
    names: set[str] = set()
    for node in stmts:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        for t in _targets(node):
            names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return stmts, names


def _locals(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names a function binds itself (parameters, assignments, nested defs); not what it imports,
    which are modules it may patch."""
    a = fn.args
    names = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if x is not None}
    for n in ast.walk(fn):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            names.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not fn:
            names.add(n.name)
    return names


def module_state(path: Path, kit: set[str]) -> set[str]:
    """What ``path`` keeps at module or class level that a run could change: names bound to mutable
    containers, and module-level objects (or imported modules) its code mutates or patches."""
    tree = ast.parse(path.read_text())
    stmts, top = _module_level(tree)
    found: set[str] = set()
    for node in stmts:
        for t in _targets(node):
            if isinstance(t, ast.Name) and t.id != "__all__" and _mutable(getattr(node, "value", None), kit):
                found.add(t.id)
            elif isinstance(t, (ast.Attribute, ast.Subscript)) and _root(t):
                found.add(_root(t))  # type: ignore[arg-type]
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                for t in _targets(item):
                    if isinstance(t, ast.Name) and t.id != "__slots__" and _mutable(getattr(item, "value", None), kit):
                        found.add(f"{node.name}.{t.id}")
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        own = _locals(fn)
        imported = {
            (a.asname or a.name).split(".")[0]
            for n in ast.walk(fn)
            if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in n.names
        }
        for n in ast.walk(fn):
            if isinstance(n, ast.Global):
                found.update(n.names)
            mutated = _targets(n)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _MUTATORS:
                mutated = [ast.Attribute(value=n.func.value, attr=n.func.attr)]
            for t in mutated:
                if isinstance(t, (ast.Attribute, ast.Subscript)):
                    root = _root(t)
                    if root is not None and root not in own and (root in top or root in imported):
                        found.add(root)
    return found


def test_no_module_of_the_kit_keeps_run_state_at_module_level_but_the_listed():
    kit = _kit_classes()
    found = {
        (str(path.relative_to(CONFORMANCE)), name)
        for path in sorted(CONFORMANCE.rglob("*.py"))
        for name in module_state(path, kit)
    }
    new = sorted(found - set(ALLOWED))
    assert new == [], (
        "module-level state a run could change: make it the Session's (runtime/session.py), or, if it is "
        f"truly the process's, list it in ALLOWED with the reason: {new}"
    )
    assert sorted(set(ALLOWED) - found) == [], "listed in ALLOWED but no longer there: remove it"


def test_the_scan_sees_a_new_global_of_every_kind(tmp_path):
    source = """
import threading
CACHE = {}
SEEN: set = set()
LOCAL = threading.local()
class Counter_:
    runs = []
    def bump(self):
        Counter_.total = 1
def remember(x):
    global LAST
    LAST = x
    CACHE[x] = x
    threading.Lock = None
"""
    path = tmp_path / "mod.py"
    path.write_text(source)
    assert module_state(path, set()) == {"CACHE", "SEEN", "LOCAL", "Counter_.runs", "Counter_", "LAST", "threading"}


def test_a_lock_factory_kept_as_a_class_attribute_inside_a_check_makes_locks():
    """werkzeug's routing Map keeps ``lock_class = threading.Lock``; first imported inside a check
    (Flask-Caching's factory), the kit's Lock must not bind as a method, as the builtin does not."""
    import threading

    import cachepact
    from cachepact.adapters.reference import cache_aside_leased

    def make(env):
        class Map:
            lock_class = threading.Lock  # read while the kit's primitives are in place
            rlock_class = threading.RLock
            condition_class = threading.Condition

            def __init__(self) -> None:
                self.locks = (self.lock_class(), self.rlock_class(), self.condition_class())

        Map()
        return cache_aside_leased(env)

    assert cachepact.check(make, "cache-aside", concurrency=False, max_examples=5).passed
