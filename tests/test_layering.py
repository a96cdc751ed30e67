"""The folders are layers: model at the bottom, then conformance and diagrams, then adapters, then
the command line and the pytest plugin. No module imports a layer above its own, and no two
folders import each other. (Read from the source, so a lazy import inside a function counts too.)
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "cachepact"

# Lower number = lower layer. ``cachepact`` itself is the lazy public facade: adapters are written
# against it exactly as users' adapters are, and it imports only ``errors`` eagerly.
LAYERS = {
    "errors": 0,
    "_argtypes": 0,
    "model": 1,
    "leases": 1,  # production leases on Redis: application code imports it, so it needs only redis-py
    "backends": 1,  # the stores behind env (memory, Redis, SQL): below the conformance kit that records them
    "diagrams": 2,
    "conformance": 2,
    "cachepact": 3,
    "adapters": 4,
    "_target": 4,  # loading TARGET strings: the command line's, beside the adapters it loads
    "_held_logs": 4,  # what the adapter logs while the command line checks it
    "cli": 5,
    "pytest_plugin": 5,
    "__main__": 6,
}


def module_of(path: Path) -> str:
    """``.../cachepact/model/_system.py`` -> ``cachepact.model._system``; a package is its ``__init__``."""
    return ".".join(("cachepact", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")


def layer_of(module: str) -> str:
    """``cachepact.model._system`` -> ``model``; ``cachepact`` -> ``cachepact``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "cachepact"


def imports_of(path: Path) -> set[str]:
    module = module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "cachepact"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] == "cachepact":
                # ``from . import __version__`` names the package itself
                found.add(name)
    return found


def edges() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = layer_of(module_of(path))
        for target in imports_of(path):
            dst = layer_of(target)
            if dst != src:
                out.append((str(path.relative_to(PACKAGE)), src, dst))
    return out


def test_every_module_belongs_to_a_known_layer():
    for path in PACKAGE.rglob("*.py"):
        assert layer_of(module_of(path)) in LAYERS, path


def test_no_module_imports_a_layer_above_its_own():
    upward = [(f, src, dst) for f, src, dst in edges() if LAYERS[dst] > LAYERS[src]]
    assert upward == []


def test_no_two_folders_import_each_other():
    pairs = {(src, dst) for _, src, dst in edges()}
    assert {(a, b) for a, b in pairs if (b, a) in pairs} == set()


def test_the_facade_imports_only_the_error_tree_eagerly():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    eager = {node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.level}
    assert eager == {"errors"}
