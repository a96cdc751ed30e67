"""Sequence diagrams: one graph per trace, four renderers, golden text, real images."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import cachepact
from cachepact.cli import main
from cachepact.diagrams import messages, render, sequence_graph, to_dot, to_mermaid
from cachepact.model import APP, CACHE_ASIDE, PATTERNS, Actor, Kind, Scenario, Step, Trace, explore, flow, flows_of

GOLDEN = Path(__file__).parent / "golden"
CASES = [(name, f) for name in PATTERNS for f in ("read-hit", "read-miss", "write")]
BACKGROUND = [(name, f) for name, p in PATTERNS.items() for f in ("refresh", "flush") if f in flows_of(p)]


@pytest.mark.parametrize(("pattern", "name"), CASES)
def test_each_flow_graph_has_exactly_the_seed_steps_in_order_with_the_right_actors(pattern, name):
    trace = flow(PATTERNS[pattern], name)
    g = sequence_graph(trace)
    got = [(u[0], v[0], d["label"]) for u, v, d in messages(g)]
    p = PATTERNS[pattern]
    who = str(p.load_by)
    writer = str(p.write[0].by)
    store = ("App", "Cache", "2. delete(k1)") if p.has(Kind.INVALIDATE) else (writer, "Cache", "2. set(k1, v1)")
    write = [(writer, "DB", "1. put(k1, v1)"), store]
    if p.write[0].kind is Kind.STORE:  # write-behind: the write only stores; its flush puts the DB later
        write = [("App", "Cache", "1. set(k1, v1)")]
    expected = {
        "read-hit": [("App", "Cache", "1. get(k1) -> v0")],
        "read-miss": [
            ("App", "Cache", "1. get(k1) -> None"),
            (who, "DB", "2. get(k1) -> v0"),
            (who, "Cache", "3. set(k1, v0)"),
        ],
        "write": write,
    }[name]
    assert got == expected
    assert g.graph["lifelines"] == ["App", "Cache", "DB"]


@pytest.mark.parametrize(("pattern", "name"), BACKGROUND)
def test_background_work_is_drawn_on_a_lifeline_of_its_own_after_the_operation_that_started_it(pattern, name):
    g = sequence_graph(flow(PATTERNS[pattern], name))
    worker = "Cache rf1" if name == "refresh" else "Cache fl1"
    assert g.graph["lifelines"] == ["App r1" if name == "refresh" else "App w1", worker, "Cache", "DB"]
    got = [(u[0], v[0], d["label"]) for u, v, d in messages(g)]
    if name == "refresh":  # the hit returns the aged entry; the refresh reloads it behind the read
        assert got == [
            ("App r1", "Cache", "1. get(k1) -> v0"),
            (worker, "DB", "2. get(k1) -> v0"),
            (worker, "Cache", "3. set(k1, v0)"),
        ]
    else:  # the write stores its value and returns; the flush takes it and puts it into the DB
        assert got == [
            ("App w1", "Cache", "1. set(k1, v1)"),
            (worker, "Cache", "2. get(k1) -> v1"),
            (worker, "DB", "3. put(k1, v1)"),
        ]


@pytest.mark.parametrize(("pattern", "name"), CASES + BACKGROUND)
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


# -- redis-py code: each step drawn as the command it sent ----------------------------------------


def exists_then_get(env):
    """redis-py cache-aside as teams write it (``EXISTS`` before ``GET``, ``SETEX``), whose write
    forgets to delete: a failure whose steps are each command type the tables and pictures show."""
    r = env.redis

    def read(key):
        if r.exists(f"user:{key}"):
            return r.get(f"user:{key}").decode()
        value = env.db.get(key)
        if value is not None:
            r.setex(f"user:{key}", 300, value)
        return value

    return cachepact.Adapter(read=read, write=lambda key, value: env.db.put(key, value))


REDIS_REPLAY = "seq/r:k1,r:k1,w:k1"  # a miss that fills, a hit, a write that leaves the entry stale


def redis_failure():
    result = cachepact.check(exists_then_get, "cache-aside", replay=REDIS_REPLAY, instances=1)
    assert result.finding is not None and result.finding.op == "w1", result.report()  # the write's to blame
    return result


@pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")  # SETEX is in real code
def test_a_redis_py_trace_is_drawn_with_each_command_as_sent_and_what_exists_answered():
    # Before: the label was the step's action plus the command cut at the length of ``cache.get``
    # ("getk1", "setr:k1 300 k1.v0"), and EXISTS showed the payload it read ("None", "b'k1.v0'").
    result = redis_failure()
    g = sequence_graph(Trace(steps=result.steps), culprit=result.finding.culprit)
    labels = [d["label"] for _, _, d in messages(g)]
    assert labels == [
        "1. EXISTS user:k1 -> 0",
        "2. get(k1) -> k1.v0",
        "3. SETEX user:k1 300 k1.v0",
        "4. returns k1.v0",
        "5. EXISTS user:k1 -> 1",
        "6. GET user:k1 -> b'k1.v0'",
        "7. returns k1.v0",
        "8. put(k1, k1.v1)",
        "9. returns",
    ]
    assert "    App_r1->>Cache: 3. SETEX user:k1 300 k1.v0\n" in to_mermaid(g)
    assert 'e1_5 -> e3_5 [label="5. EXISTS user:k1 -> 1", constraint=false];' in to_dot(g)


def _cache_step(command: str) -> Step:
    return Step(op="r1", actor=Actor.APP, target="cache", action="set", key="k1", value="k1.v0", command=command)


LONG = "pipeline: HSET products k1 k1.v0 source database-primary; EXPIRE products 300"


def test_long_labels_are_wrapped_in_dot_and_in_pictures_and_mermaid_stays_one_valid_line():
    short = Trace(steps=(_cache_step("SET k1 k1.v0"),) * 3)
    long = Trace(steps=(_cache_step(LONG),) * 3)
    dot = to_dot(sequence_graph(long))
    label = dot.split('e0_1 -> e1_1 [label="', 1)[1].split('", constraint', 1)[0]
    lines = label.split("\\n")
    assert " ".join(lines) == f"1. {LONG}" and len(lines) > 1 and all(len(line) <= 44 for line in lines)
    # Mermaid: one message a line, its ``;`` an entity (a bare one would end the statement there).
    mermaid = to_mermaid(sequence_graph(long))
    assert (
        "App->>Cache: 1. pipeline: HSET products k1 k1.v0 source database-primary#59; EXPIRE products 300\n" in mermaid
    )
    assert mermaid.count("\n") == 1 + 3 + 3  # the header, the lifelines, one line per message
    # Pictures: each row as tall as its label's lines, so wrapped lines never overlap the next arrow.
    heights = [struct.unpack(">II", render(sequence_graph(t), "png")[16:24])[1] for t in (short, long)]
    assert heights[1] > heights[0]
    assert ET.fromstring(render(sequence_graph(long), "svg")).tag.endswith("svg")


def test_a_lease_scripts_step_is_drawn_as_the_call_it_stands_for():
    step = Step(
        op="r1",
        actor=Actor.APP,
        target="cache",
        action="lease_get",
        key="k1",
        result=(None, "t1"),
        command="Leases.get(k1)",
    )
    ret = Step(op="r1", actor=Actor.APP, target=APP, action="read", key="k1", result=None)
    labels = [d["label"] for _, _, d in messages(sequence_graph(Trace(steps=(step, ret))))]
    assert labels == ["1. Leases.get(k1) -> (None, t1)", "2. returns None"]  # before: "lease_getk1) -> ..."


def test_an_exists_of_several_keys_names_the_key_each_row_counts():
    from cachepact.conformance.record.redis_hook import Sent

    def exists(key, found):
        sent = Sent((("EXISTS", "user:k1", "lease:k1"),), False, key, None)  # as redis-py sends it
        return Step(op="r1", actor=Actor.APP, target="cache", action="get", key=key, result=found, command=sent)

    steps = (exists("user:k1", b"k1.v0"), exists("lease:k1", None))
    assert [s.shown_result for s in steps] == ["user:k1: 1", "lease:k1: 0"]  # not "1" and "0": whose?
    labels = [d["label"] for _, _, d in messages(sequence_graph(Trace(steps=steps)))]
    assert labels == ["1. EXISTS user:k1 lease:k1 -> user:k1: 1", "2. EXISTS user:k1 lease:k1 -> lease:k1: 0"]


def test_the_clock_and_what_it_expired_are_drawn_as_the_table_says_them():
    from cachepact.diagrams._sequence import label

    moved = Step(op="-", actor=Actor.CACHE, target="clock", action="advance", key=None, value=11)
    gone = Step(op="-", actor=Actor.CACHE, target="cache", action="expire", key="lock:k1")
    assert (label(moved), label(gone)) == ("clock +11 s", "lock:k1 expired")


def test_a_failed_call_ends_in_a_cross_and_an_operation_that_raised_says_so():
    from cachepact.adapters.faults import FAULT_CATALOGUE

    def graph(name: str, replay: str):
        result = cachepact.check(FAULT_CATALOGUE[name].make, "cache-aside", replay=replay)
        return sequence_graph(result.outcome.counterexample, culprit=result.finding.culprit)

    swallowed = graph("swallows_failed_delete", "seq/r:k1,w:k1!2b")
    assert "App_w1-xCache: 6. delete(k1) -> CacheError (it failed before taking effect)" in to_mermaid(swallowed)
    assert "arrowhead=tee, style=dashed" in to_dot(swallowed)
    assert "raises DBError" in to_mermaid(graph("raises_before_invalidating", "seq/r:k1,w:k1!1l"))
