"""Regenerate or compare the generated blocks of spec/README.md and spec/contract.md.

``python tests/spec_sync.py --write`` rewrites them from the model; ``tests/test_spec.py`` uses
``drift()`` to fail when the committed text differs.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

from cachepact.cli import main

SPEC = Path(__file__).resolve().parent.parent / "spec" / "README.md"
CONTRACT = SPEC.parent / "contract.md"
PAGES = (SPEC, CONTRACT)
BLOCK = re.compile(r"^(<!-- generated: (?P<cmd>[^\n]+?) -->\n)(?P<body>.*?)^(<!-- end generated -->)", re.S | re.M)


def run(command: str) -> str:
    argv = shlex.split(command)
    assert argv[0] == "cachepact", command
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(argv[1:])
    return out.getvalue()


def regenerate(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + run(m.group("cmd")) + m.group(4), text)


def drift(paths: tuple[Path, ...] = PAGES) -> list[str]:
    """Commands whose committed output differs from what the model produces now."""
    out = []
    for path in paths:
        text = path.read_text()
        out += [
            f"{path.name}: {m.group('cmd')}" for m in BLOCK.finditer(text) if m.group("body") != run(m.group("cmd"))
        ]
    return out


if __name__ == "__main__":
    if "--write" in sys.argv:
        for page in PAGES:
            page.write_text(regenerate(page.read_text()))
    stale = drift()
    print("\n".join(stale) or "spec is in sync")
    sys.exit(1 if stale else 0)
