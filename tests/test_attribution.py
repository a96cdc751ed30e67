"""Who made a call is decided by dynamic extent over cache_code: classes, functions, modules, prefixes."""

from __future__ import annotations

import types

import pytest

import cachepact
from cachepact.adapters.library import ReadThroughCache
from cachepact.conformance.record.env import build, run_operation


def actors(make, key="k1"):
    h = build(make, initial={"k1": "v0"})
    run_operation(h.adapters[0].read, key)
    return [(str(s.actor), s.call) for s in h.recorder.steps]


def test_a_call_from_a_method_of_a_named_class_is_the_caches():
    make = lambda env: cachepact.Adapter(  # noqa: E731
        read=ReadThroughCache(env.cache, env.db.get).get, write=env.db.put, cache_code=ReadThroughCache
    )
    assert actors(make) == [("Cache", "cache.get"), ("Cache", "db.get"), ("Cache", "cache.set")]


def test_a_creator_closure_defined_by_the_app_but_run_by_the_library_is_the_caches():
    def make(env):
        def creator(key):  # app code...
            return env.db.get(key)

        lib = ReadThroughCache(env.cache, creator)  # ...called from inside the library
        return cachepact.Adapter(read=lib.get, write=env.db.put, cache_code=[ReadThroughCache])

    assert ("Cache", "db.get") in actors(make)


def test_the_same_calls_outside_cache_code_are_the_apps():
    make = lambda env: cachepact.Adapter(read=ReadThroughCache(env.cache, env.db.get).get, write=env.db.put)  # noqa: E731
    assert {a for a, _ in actors(make)} == {"App"}


def test_a_named_function_and_a_subclass_inherited_method():
    class Sub(ReadThroughCache):
        pass

    def loader_fn(env, key):
        return env.db.get(key)

    def make(env):
        def read(key):
            env.cache.get(key)
            return loader_fn(env, key)

        return cachepact.Adapter(read=read, write=env.db.put, cache_code=loader_fn)

    assert actors(make) == [("App", "cache.get"), ("Cache", "db.get")]
    make2 = lambda env: cachepact.Adapter(read=Sub(env.cache, env.db.get).get, write=env.db.put, cache_code=Sub)  # noqa: E731
    assert {a for a, _ in actors(make2)} == {"Cache"}


@pytest.mark.parametrize("how", ["module", "prefix", "exact-name"])
def test_a_module_object_or_a_module_name_prefix(how):
    lib = types.ModuleType("vendorlib.cache.core")
    exec("def fetch(db, key):\n    return db.get(key)\n", lib.__dict__)
    entry = {"module": lib, "prefix": "vendorlib", "exact-name": "vendorlib.cache.core"}[how]

    def make(env):
        return cachepact.Adapter(read=lambda key: lib.fetch(env.db, key), write=env.db.put, cache_code=entry)

    assert actors(make) == [("Cache", "db.get")]


def test_a_prefix_does_not_match_a_longer_module_name():
    lib = types.ModuleType("vendorlibrary")
    exec("def fetch(db, key):\n    return db.get(key)\n", lib.__dict__)
    make = lambda env: cachepact.Adapter(read=lambda k: lib.fetch(env.db, k), write=env.db.put, cache_code="vendorlib")  # noqa: E731
    assert actors(make) == [("App", "db.get")]
