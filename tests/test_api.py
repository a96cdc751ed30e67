"""The public API: what ``cachepact`` exports, that importing it is light, and its error tree."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing

import pytest

import cachepact
import cachepact.diagrams
import cachepact.errors
import cachepact.model
from cachepact.adapters.reference import cache_aside

HEAVY = ("pytest", "hypothesis", "networkx", "matplotlib", "attrs", "_pytest")


def loaded_after(code: str) -> list[str]:
    probe = f"{code}; import sys; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return out.split()


def test_import_cachepact_loads_no_heavy_package():
    assert [m for m in loaded_after("import cachepact") if m in HEAVY] == []


def test_the_pytest_plugin_module_loads_nothing_of_the_kit():
    loaded = loaded_after("import cachepact.pytest_plugin")
    assert [m for m in loaded if m in HEAVY and m not in ("pytest", "_pytest")] == []


def test_every_public_name_resolves_and_nothing_private_is_listed():
    for name in cachepact.__all__:
        assert getattr(cachepact, name) is not None, name
        assert not name.startswith("_") or name == "__version__"
    assert {"Adapter", "check", "prove", "Result", "Finding", "conformance_test", "CachepactError"} <= set(
        cachepact.__all__
    )
    with pytest.raises(AttributeError, match="no attribute 'Progress'"):
        cachepact.Progress  # noqa: B018


def _public_classes() -> set[type]:
    out = set()
    for module in (cachepact, cachepact.model, cachepact.diagrams, cachepact.errors):
        out |= {obj for name in module.__all__ if isinstance(obj := getattr(module, name), type)}
    return out


def _classes_in(hint: object) -> set[type]:
    found = {hint} if isinstance(hint, type) else set()
    for arg in typing.get_args(hint):
        found |= _classes_in(arg)
    return found


def test_no_private_class_appears_in_a_public_signature():
    public = _public_classes()
    for name in cachepact.__all__:
        obj = getattr(cachepact, name)
        targets = [obj] if inspect.isfunction(obj) else [obj.__init__] if isinstance(obj, type) else []
        for fn in filter(inspect.isfunction, targets):
            hints = typing.get_type_hints(fn, globalns=vars(sys.modules[fn.__module__]))
            for hint in hints.values():
                for cls in _classes_in(hint):
                    if cls.__module__.startswith("cachepact"):
                        assert cls in public, f"{name} mentions {cls.__module__}.{cls.__qualname__}"


def test_every_error_is_a_cachepact_error_and_the_matching_builtin():
    expected = {
        "DefinitionError": TypeError,
        "InvalidArgument": ValueError,
        "StateSpaceTooLarge": ValueError,
        "MissingDependency": ImportError,
        "UsageError": ValueError,
        "ConformanceFailure": AssertionError,
        "StoreError": ConnectionError,
        "CacheError": ConnectionError,
        "DBError": ConnectionError,
    }
    for name in cachepact.errors.__all__:
        cls = getattr(cachepact.errors, name)
        if name == "Interrupted":  # Ctrl-C: a KeyboardInterrupt, so `except Exception` never swallows it
            assert issubclass(cls, KeyboardInterrupt) and not issubclass(cls, Exception)
            assert getattr(cachepact, name) is cls
            continue
        assert issubclass(cls, cachepact.CachepactError), name
        if name in expected:
            assert issubclass(cls, expected[name]), name
        assert getattr(cachepact, name) is cls


def test_library_errors_speak_of_parameters_and_carry_fields():
    with pytest.raises(cachepact.InvalidArgument) as e:
        cachepact.check(cache_aside, "cache-aside", max_ops=50)
    assert (e.value.parameter, e.value.value) == ("max_ops", 50)
    assert str(e.value) == "max_ops must be between 2 and 6, not 50" and "--" not in str(e.value)
    with pytest.raises(
        cachepact.InvalidArgument,
        match=r"^pattern 'read-through\+write-behnd': 'write-behnd' is not a write half; use one of: invalidate, "
        r"write-through, write-behind$",
    ):
        cachepact.check(cache_aside, "read-through+write-behnd")
    with pytest.raises(cachepact.InvalidArgument, match=r"^replay 'r:k1' is not a replay string"):
        cachepact.check(cache_aside, "cache-aside", replay="r:k1")


def test_a_factory_returning_no_adapter_is_a_definition_error_with_its_target():
    with pytest.raises(cachepact.DefinitionError) as e:
        cachepact.check(lambda env: {"read": 1}, "cache-aside", target="mine:make")
    assert e.value.target == "mine:make"
    assert str(e.value).startswith("mine:make returned a dict, not a cachepact.Adapter")
    with pytest.raises(cachepact.DefinitionError) as e:
        cachepact.Adapter(read=1, write=print)
    assert e.value.field == "read" and isinstance(e.value, TypeError)


def test_prove_explores_every_schedule_and_returns_the_race_as_a_result():
    proof = cachepact.prove(cache_aside, "cache-aside", readers=1, writers=1)
    assert not proof.holds and proof.counterexample is not None
    assert proof.counterexample.finding.invariant == "coherent-at-rest"
    assert proof.counterexample.replay == "con/|r:k1,w:k1/0011"
    with pytest.raises(cachepact.InvalidArgument, match=r"^readers plus writers must be between 2 and 6"):
        cachepact.prove(cache_aside, readers=1, writers=0)


def test_version_is_printed_by_the_command_line():
    out = subprocess.run(
        [sys.executable, "-m", "cachepact", "--version"], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == f"cachepact {cachepact.__version__}"
