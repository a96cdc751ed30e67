"""The wheel installs as one package, ``cachepact``, into a fresh virtual environment."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_wheel_built_from_the_repo_installs_into_a_fresh_venv_as_cachepact_only(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
    )
    [wheel] = dist.glob("cachepact-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"cachepact"}
    names = zipfile.ZipFile(wheel).namelist()
    assert "cachepact/py.typed" in names and "cachepact/model/__init__.py" in names
    assert not any(n.startswith(("cachepact/tests/", "cachepact/bench/", "cachepact/spec/")) for n in names)

    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, str(wheel)], check=True
    )
    # The fresh venv gets its dependencies (attrs, networkx, ...) from this environment, behind its own
    # site-packages, so the cachepact it imports must be the one the wheel put there.
    deps = sysconfig.get_paths()["purelib"]
    Path(site, "_deps.pth").write_text(deps + "\n")
    probe = (
        "import cachepact, cachepact.model, importlib.util as u;"
        "print(cachepact.__file__);"
        "print(u.find_spec('model') is None and u.find_spec('conformance') is None)"
    )
    out = subprocess.run(
        [str(python), "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path
    ).stdout.split()
    assert out[0].startswith(str(env)), out
    assert out[1] == "True"


def test_from_the_repository_root_only_cachepact_imports():
    probe = (
        "import importlib.util as u, cachepact;"
        "print([n for n in ('model', 'conformance', 'adapters', 'diagrams') if u.find_spec(n)])"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
