"""Sequence diagrams: one graph per trace, four renderers, golden text, real images."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cachepact.cli import main
from cachepact.diagrams import messages, render, sequence_graph, to_dot, to_mermaid
from cachepact.model import CACHE_ASIDE, PATTERNS, Kind, Scenario, explore, flow

GOLDEN = Path(__file__).parent / "golden"
CASES = [(name, f) for name in PATTERNS for f in ("read-hit", "read-miss", "write")]


@pytest.mark.parametrize(("pattern", "name"), CASES)
def test_each_flow_graph_has_exactly_the_seed_steps_in_order_with_the_right_actors(pattern, name):
    trace = flow(PATTERNS[pattern], name)
    g = sequence_graph(trace)
    got = [(u[0], v[0], d["label"]) for u, v, d in messages(g)]
    p = PATTERNS[pattern]
    who = str(p.load_by)
    writer = str(p.by(Kind.PUT))
    store = ("App", "Cache", "2. delete(k1)") if p.has(Kind.INVALIDATE) else (writer, "Cache", "2. set(k1, v1)")
    expected = {
        "read-hit": [("App", "Cache", "1. get(k1) -> v0")],
        "read-miss": [
            ("App", "Cache", "1. get(k1) -> None"),
            (who, "DB", "2. get(k1) -> v0"),
            (who, "Cache", "3. set(k1, v0)"),
        ],
        "write": [(writer, "DB", "1. put(k1, v1)"), store],
    }[name]
    assert got == expected
    assert g.graph["lifelines"] == ["App", "Cache", "DB"]


@pytest.mark.parametrize(("pattern", "name"), CASES)
def test_mermaid_and_dot_match_the_golden_files(pattern, name):
    g = sequence_graph(flow(PATTERNS[pattern], name))
    assert to_mermaid(g) == (GOLDEN / f"{pattern}-{name}.mmd").read_text()
    assert to_dot(g) == (GOLDEN / f"{pattern}-{name}.dot").read_text()


def test_with_several_operations_each_gets_its_own_app_lifeline_and_the_culprit_is_highlighted():
    cex = explore(Scenario(pattern=CACHE_ASIDE)).violations()[0].counterexample
    g = sequence_graph(cex, culprit=len(cex) - 1)
    assert g.graph["lifelines"] == ["App r1", "App w1", "Cache", "DB"]
    text = to_mermaid(g)
    assert "rect rgb(255, 220, 220)\n      App_r1->>Cache: 5. set(k1, v0)" in text
    assert 'e0_5 -> e2_5 [label="5. set(k1, v0)", constraint=false, color=red' in to_dot(g)


def test_svg_parses_as_xml_and_png_is_a_real_image_of_sensible_size(tmp_path):
    g = sequence_graph(flow(CACHE_ASIDE, "stale-set"), culprit=4)
    svg = render(g, "svg")
    assert ET.fromstring(svg).tag.endswith("svg")
    png = render(g, "png", tmp_path / "race.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert 600 <= width <= 3000 and 300 <= height <= 2000
    assert (tmp_path / "race.png").read_bytes() == png


def test_the_race_flow_is_the_explorers_shortest_counterexample():
    cex = explore(Scenario(pattern=CACHE_ASIDE)).violations()[0].counterexample
    assert flow(CACHE_ASIDE, "stale-set").steps == cex.steps


def test_cli_diagram_picks_the_format_from_the_extension(tmp_path, capsys):
    for ext in ("mmd", "dot", "svg", "png"):
        out = tmp_path / f"f.{ext}"
        assert main(["diagram", "--pattern", "read-through", "--flow", "read-miss", "-o", str(out)]) == 0
        assert out.stat().st_size > 100
    assert main(["diagram", "--pattern", "read-through", "--flow", "write"]) == 0
    assert capsys.readouterr().out.startswith("sequenceDiagram\n")


def test_a_failing_check_writes_the_counterexample_picture_and_names_it(tmp_path, capsys):
    out = tmp_path / "fail.png"
    code = main(
        ["check", "cachepact.adapters.broken:aside_invalidate_first", "--pattern", "cache-aside", "--diagram", str(out)]
    )
    assert code == 1 and out.read_bytes()[:4] == b"\x89PNG"
    assert f"Diagram: {out}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["diagram", "--pattern", "cache-aside", "--flow", "read-sideways"], "invalid choice"),
        (["diagram", "--pattern", "cache-aside", "--flow", "write", "--format", "gif"], "invalid choice"),
        (
            ["diagram", "--pattern", "cache-aside", "--flow", "write", "-o", "/no/such/dir/f.png"],
            "-o /no/such/dir/f.png",
        ),
        (["diagram", "--pattern", "cache-aside", "--flow", "write", "-o", "f.txt"], "add --format"),
        (["diagram", "--pattern", "cache-aside", "--flow", "write", "--format", "png"], "name a file with -o FILE"),
    ],
)
def test_bad_diagram_input_exits_2_with_one_line(capsys, argv, fix):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and fix in err, err


def test_without_matplotlib_a_picture_format_exits_2_naming_the_fix(monkeypatch, tmp_path, capsys):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    code = main(["diagram", "--pattern", "cache-aside", "--flow", "write", "-o", str(tmp_path / "f.png")])
    err = capsys.readouterr().err
    assert code == 2 and "png needs matplotlib; pip install 'matplotlib>=3.7' or use --format mermaid|dot" in err
