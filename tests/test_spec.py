"""spec/ and the code cannot drift: generated blocks equal what the CLI prints now, and the contract
page names everything the public surface exposes."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import attrs

import cachepact
from cachepact.cli import build_parser
from cachepact.conformance.record.env import RecordingCache, RecordingDB
from cachepact.model import invariant_names
from spec_sync import SPEC, drift

CONTRACT = Path(__file__).resolve().parent.parent / "spec" / "contract.md"


def test_every_generated_table_in_the_spec_is_what_the_model_produces():
    assert drift() == [], "spec/ is stale: run `python tests/spec_sync.py --write`"


def test_the_spec_and_the_contract_state_every_declared_invariant():
    assert invariant_names() == cachepact.INVARIANTS  # the public list is the declarations'
    for text in (SPEC.read_text(), CONTRACT.read_text()):
        for name in cachepact.INVARIANTS:
            assert f"| `{name}` |" in text


def test_the_contract_names_every_env_method_and_adapter_field():
    text = CONTRACT.read_text()
    for prefix, cls in (("env.db", RecordingDB), ("env.cache", RecordingCache)):
        for name, fn in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_"):
                params = ", ".join(
                    p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
                    for p in list(inspect.signature(fn).parameters.values())[1:]
                )
                assert f"`{prefix}.{name}({params})`" in text, f"{prefix}.{name}({params})"
    for field in attrs.fields(cachepact.Adapter):
        assert f"| `{field.name}` |" in text


def test_the_contract_names_every_public_name_parameter_and_flag():
    text = CONTRACT.read_text()
    for name in cachepact.__all__:
        if name != "__version__":
            assert name in text, name
    public_attributes = {
        cls: [a.name for a in attrs.fields(cls)] + [n for n, v in vars(cls).items() if isinstance(v, property)]
        for cls in (cachepact.Result, cachepact.Proof, cachepact.Finding)
    }
    for cls, names in public_attributes.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `cachepact.{cls.__name__}` |"))
        for name in names:
            assert f"`{name}`" in row, f"{cls.__name__}.{name}"
    for fn in (cachepact.check, cachepact.prove):
        for param in list(inspect.signature(fn).parameters)[1:]:
            assert f"{param}=" in text, f"{fn.__name__}({param})"
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in text, f"cachepact {name} {flag}"
    for finding in ("adapter-error", "timeout", "deadlock"):
        assert f"`{finding}`" in text
