"""spec/ and the model cannot drift: every generated block must equal what the CLI prints now."""

from cachepact import INVARIANTS
from spec_sync import SPEC, drift


def test_every_generated_table_in_the_spec_is_what_the_model_produces():
    assert drift() == [], "spec/README.md is stale: run `python tests/spec_sync.py --write`"


def test_the_spec_states_all_eight_invariants():
    text = SPEC.read_text()
    assert len(INVARIANTS) == 8
    for name in INVARIANTS:
        assert f"| `{name}` |" in text
