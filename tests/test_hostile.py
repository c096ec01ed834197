"""Hostile input on every subcommand: one line, exit code 2, nothing written or overwritten."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from concurrent_nas import rundir
from concurrent_nas.cli.main import main as cnas

SAMPLE = ["sample", "--gen", "dp", "--n", "3", "--nodes", "6"]


def snapshot(path) -> dict:
    """Every file under ``path`` with its bytes (what must not change)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def one_error_line(capsys, expected: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("cnas: error:") and err.count("\n") == 1, err
    assert expected in err, err
    return err


def chain_run(tmp_path, n: int = 1, nodes: int = 4):
    run = tmp_path / "run"
    assert cnas(["sample", "--gen", "chain", "--n", str(n), "--nodes", str(nodes), "--out-dir", str(run)]) == 0
    return run


def refused_and_unchanged(where, capsys, argv: list[str], message: str, *, only_line: bool = True) -> None:
    """``cnas argv`` exits 2, its error line holds ``message``, and nothing under ``where`` changed.

    ``only_line=False`` allows progress lines before the error (train names its data set).
    """
    before = snapshot(where)
    capsys.readouterr()
    assert cnas(argv) == 2
    if only_line:
        one_error_line(capsys, message)
    else:
        err = capsys.readouterr().err
        assert err.splitlines()[-1].startswith("cnas: error:") and message in err.splitlines()[-1], err
        assert "Traceback" not in err
    assert snapshot(where) == before


@pytest.fixture
def scored(tmp_path):
    run = tmp_path / "run"
    assert cnas([*SAMPLE, "--out-dir", str(run)]) == 0
    assert cnas(["score", str(run), "--units", "2", "--processes", "1"]) == 0
    return run


# -- cnas sample on an existing run (#20 item 4) ------------------------------------------


def test_same_sample_command_again_is_a_no_op_that_says_so(tmp_path, capsys):
    run = tmp_path / "run"
    assert cnas([*SAMPLE, "--out-dir", str(run)]) == 0
    before = snapshot(run)
    capsys.readouterr()
    assert cnas([*SAMPLE, "--out-dir", str(run)]) == 0
    assert "already holds this sample" in capsys.readouterr().err
    assert snapshot(run) == before
    assert cnas([*SAMPLE[:-1], "7", "--out-dir", str(run)]) == 2
    one_error_line(capsys, "already exists, sampled with nodes 6 (not 7); pass --force")
    assert snapshot(run) == before


def test_force_refuses_to_delete_results_unless_told_to_discard_them(scored, capsys):
    before = snapshot(scored)
    capsys.readouterr()
    assert cnas([*SAMPLE, "--out-dir", str(scored), "--force"]) == 2
    one_error_line(capsys, "holds results of later commands (scores.json, scores.parquet)")
    assert snapshot(scored) == before
    assert cnas([*SAMPLE, "--out-dir", str(scored), "--discard-results"]) == 2
    one_error_line(capsys, "--discard-results only applies with --force")
    assert cnas([*SAMPLE, "--out-dir", str(scored), "--force", "--discard-results"]) == 0
    assert sorted(os.listdir(scored)) == ["architectures.parquet", "manifest.json"]


def test_ctrl_c_during_sample_says_nothing_was_written(tmp_path):
    # A real SIGINT to a child that is sampling (it signals itself after 5 architectures).
    # The child restores Python's own SIGINT handler: it inherits an ignored SIGINT from
    # a pytest-xdist worker, and Python then keeps ignoring it (a terminal's cnas does not).
    out = tmp_path / "big"
    child = (
        "import os, signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from concurrent_nas import sampling\n"
        "record = sampling.architecture_record\n"
        "made = []\n"
        "def then_interrupt(dag):\n"
        "    made.append(1)\n"
        "    if len(made) == 5:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return record(dag)\n"
        "sampling.architecture_record = then_interrupt\n"
        "from concurrent_nas.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", child, "sample", "--gen", "dp", "--n", "500", "--nodes", "10",
                           "--out-dir", str(out)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 130
    assert proc.stderr == f"cnas: interrupted; nothing was written to {out}\n"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("manifest", ["[1, 2]", "{broken", b"\xff\xfe"])
def test_manifest_that_is_not_an_object_is_named(tmp_path, capsys, manifest):
    run = tmp_path / "run"
    assert cnas([*SAMPLE, "--out-dir", str(run)]) == 0
    path = run / rundir.MANIFEST
    path.write_bytes(manifest if isinstance(manifest, bytes) else manifest.encode())
    capsys.readouterr()
    assert cnas([*SAMPLE, "--out-dir", str(run)]) == 2
    one_error_line(capsys, "corrupt manifest")


def test_non_finite_generator_parameter_is_refused_before_writing(tmp_path, capsys):
    assert cnas(["sample", "--gen", "dp", "--n", "2", "--nodes", "6", "--param", "alpha=nan",
                 "--out-dir", str(tmp_path / "r")]) == 2  # fmt: skip
    one_error_line(capsys, "not a finite number")
    assert os.listdir(tmp_path) == []


# -- output files: one check (rundir.check_output) for every --out ----------------------


def bad_outputs(tmp_path) -> dict:
    """Output paths no command may write: name -> (path, message)."""
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "file.csv").write_text("keep")
    (tmp_path / "loop.csv").symlink_to(tmp_path / "loop.csv")
    return {
        "directory": (tmp_path / "dir.csv", "is a directory"),
        "under a file": (tmp_path / "file.csv" / "x.csv", "which is a file"),
        "symlink loop": (tmp_path / "loop.csv", "symlink loop"),
        "existing": (tmp_path / "file.csv", "already exists; pass --force"),
    }


@pytest.mark.parametrize("case", ["directory", "under a file", "symlink loop", "existing"])
@pytest.mark.parametrize("command", ["export", "score-graph", "params"])
def test_bad_out_path_is_refused_before_any_work(small_dp_run, tmp_path, capsys, case, command):
    path, message = bad_outputs(tmp_path)[case]
    graph = tmp_path / "g.json"
    assert cnas(["export", str(small_dp_run), "0", "--out", str(graph)]) == 0
    argv = {
        "export": ["export", str(small_dp_run), "1", "--out", str(path)],
        "score-graph": ["score", str(graph), "--units", "2", "--out", str(path)],
        "params": ["params", str(small_dp_run), "--out", str(path)],
    }[command]
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert cnas(argv) == 2
    one_error_line(capsys, message)
    assert snapshot(tmp_path) == before and (tmp_path / "file.csv").read_text() == "keep"


def test_force_overwrites_an_output_file_and_xlsx_is_refused(small_dp_run, tmp_path, capsys):
    out = tmp_path / "g.json"
    out.write_text("old")
    assert cnas(["export", str(small_dp_run), "2", "--out", str(out), "--force"]) == 0
    assert json.loads(out.read_text())["graph"]["index"] == 2
    assert cnas(["params", str(small_dp_run), "--out", str(tmp_path / "t.xlsx")]) == 2
    one_error_line(capsys, "unsupported extension '.xlsx'; use one of .csv, .json, .md")
    assert not (tmp_path / "t.xlsx").exists()


# -- latency and train: refused before anything is measured or trained ----------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--units", "1,100"], "architecture 0 has 8 vertices, too few for 100 units"),
        (["--simulate-units", "0"], "--simulate-units must be positive, got 0"),
        (["--units", "2", "--simulate-units", "4,50"], "too few for 50 units"),
    ],
)
def test_latency_unit_counts_are_checked_before_measuring(tmp_path, capsys, extra, message):
    run = chain_run(tmp_path, n=2, nodes=6)
    refused_and_unchanged(run, capsys, ["latency", str(run), "--repeats", "1", "--warmup", "0", *extra], message)


@pytest.mark.parametrize("command", [["latency", "--units", "1", "--repeats", "1"], ["score", "--units", "2"],
                                     ["train", "--dataset", "digits", "--epochs", "1"]])  # fmt: skip
def test_read_only_run_is_refused_before_any_work(tmp_path, capsys, monkeypatch, command):
    # Tests run as root, where chmod does not stop writes: the read-only file system is
    # injected as the OSError creating any file in the run directory raises.
    import errno
    import tempfile

    run = chain_run(tmp_path)
    mkstemp = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and os.path.samefile(dir, run):
            raise OSError(errno.EROFS, "Read-only file system")
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    refused_and_unchanged(run, capsys, [command[0], str(run), *command[1:]],
                          f"cannot write to {run}: Read-only file system (nothing", only_line=False)


# -- graph types: every entry point goes through dag.validate ------------------------------


@pytest.mark.parametrize("kind, message", [("MultiDiGraph", "is a MultiDiGraph; pass a networkx.DiGraph"),
                                           ("Graph", "undirected networkx.Graph; pass a networkx.DiGraph"),
                                           ("MultiGraph", "undirected networkx.MultiGraph; pass a networkx.DiGraph")])
@pytest.mark.parametrize("entry", ["shape_pass", "build_network", "score_architecture", "write_graph"])
def test_unsupported_graph_types_are_refused_naming_what_to_pass(tmp_path, kind, message, entry):
    import networkx as nx

    import concurrent_nas as cn

    graph = getattr(nx, kind)(cn.generate("dp", 8, 0))
    call = {
        "shape_pass": lambda: cn.shape_pass(graph),
        "build_network": lambda: cn.build_network(graph),
        "score_architecture": lambda: cn.score_architecture(graph, units=(2,), eps=(0.1,)),
        "write_graph": lambda: cn.write_graph(graph, tmp_path / "g.json"),
    }[entry]
    with pytest.raises(cn.CnasError, match=message):
        call()
    assert os.listdir(tmp_path) == []


# -- numbers out of range for their type: one check (errors.check_integer) -----------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "--gen", "dp", "--seed", str(2**70)], "seed (--seed) must be an integer in 0..9223372036854775807"),
        (["sample", "--gen", "dp", "--nodes", str(10**6)], "nodes (--nodes) must be an integer in 1..4000"),
        (["sample", "--gen", "dp", "--n", str(10**9), "--nodes", "40"], "need about"),
        (["latency", "{run}", "--units", "2", "--master", "127.0.0.1:70000", "--unit-rank", "1"],
         "--master's port must be an integer in 1..65535, got 70000"),
    ],
)
def test_numbers_out_of_range_are_one_line(tmp_path, capsys, argv, message):
    run = chain_run(tmp_path)
    argv = [a.format(run=run) for a in argv]
    refused_and_unchanged(tmp_path, capsys, [*argv, *(["--out-dir", str(tmp_path / "new")] if argv[0] == "sample" else [])],
                          message)


def test_api_seed_must_be_whole(tmp_path):
    import concurrent_nas as cn

    with pytest.raises(cn.CnasError, match=r"seed \(--seed\) must be an integer in 0\.\..*got 1\.5"):
        cn.write_run(tmp_path / "r", "dp", 2, seed=1.5)
    with pytest.raises(cn.CnasError, match="vertex ids must be integers in 0..9223372036854775807"):
        cn.shape_pass(__import__("networkx").DiGraph([(-1, 0), (0, 1)]))
    assert os.listdir(tmp_path) == []


# -- damaged tables: one schema check (rundir.schema_problem) behind every reader ----------


def damage(frame, how: str):
    import pandas as pd

    if how == "missing column":
        return frame.drop(columns=["edge_list"])
    if how == "empty":
        return frame.iloc[0:0]
    if how == "duplicate ids":
        return pd.concat([frame, frame.iloc[:1]], ignore_index=True)
    if how == "ids as text":
        return frame.assign(arch_id=frame["arch_id"].astype(str))
    if how == "params not JSON":
        return frame.assign(params="{oops")
    raise AssertionError(how)


@pytest.mark.parametrize("how, message", [
    ("missing column", "lacks column(s) edge_list"),
    ("empty", "no architectures"),
    ("duplicate ids", "arch_id 0 appears more than once"),
    ("ids as text", "arch_id holds object values, not integers"),
    ("params not JSON", "params of architecture 0 is not a JSON object"),
])  # fmt: skip
@pytest.mark.parametrize("command", [["score", "--units", "2"], ["export", "0"], ["params"],
                                     ["latency", "--units", "1"], ["train", "--dataset", "digits"]])  # fmt: skip
def test_damaged_architectures_table_is_named_by_every_command(tmp_path, capsys, how, message, command):
    from concurrent_nas.rundir import load_parquet, write_table

    run = chain_run(tmp_path, n=2)
    path = run / rundir.ARCHITECTURES
    write_table(damage(load_parquet(path), how), path)
    refused_and_unchanged(run, capsys, [command[0], str(run), *command[1:]], message, only_line=False)


@pytest.mark.parametrize("extra, message", [
    (["--weight-decay", "nan"], "--weight-decay must be a finite number >= 0, got nan"),
    (["--weight-decay", "inf"], "--weight-decay must be a finite number >= 0, got inf"),
    (["--model-seed", str(2**64)], "--model-seed must be an integer in 0..9223372036854775807"),
])  # fmt: skip
def test_train_settings_out_of_range_are_named_before_training(tmp_path, capsys, extra, message):
    run = chain_run(tmp_path)
    refused_and_unchanged(run, capsys, ["train", str(run), "--dataset", "digits", "--epochs", "1", *extra], message)


# -- graph JSON in malformed forms --------------------------------------------------------

GOOD = {"directed": True, "multigraph": False, "graph": {},
        "nodes": [{"id": 0}, {"id": 1}, {"id": 2}], "links": [{"source": 0, "target": 1}, {"source": 1, "target": 2}]}  # fmt: skip


@pytest.mark.parametrize("text, message", [
    (json.dumps({**GOOD, "nodes": {"a": 1}}), "'nodes' must be a list of objects, each with an 'id'"),
    (json.dumps({**GOOD, "nodes": [0, 1, 2]}), "'nodes' must be a list of objects, each with an 'id'"),
    (json.dumps({**GOOD, "links": [{"source": 0}]}), "'links' must be a list of objects, each with a 'source'"),
    (json.dumps({**GOOD, "directed": False}), "'directed' is false; an architecture is a directed graph"),
    (json.dumps({**GOOD, "multigraph": True}), "set \"multigraph\": false"),
    (json.dumps({**GOOD, "graph": [1, 2]}), "'graph' must be an object of graph attributes"),
    (json.dumps({**GOOD, "nodes": GOOD["nodes"] + [{"id": 0}]}), "vertex 0 is listed twice under 'nodes'"),
    (json.dumps({**GOOD, "nodes": [{"id": 0, "stage": "yes"}, {"id": 1}, {"id": 2}]}), "'stage' of vertex 0 must be true or false"),
    (json.dumps({"graph": GOOD}), "not a networkx node-link graph"),
    ("[" * 100000 + "]" * 100000, "JSON nested too deeply"),
    (b'{"nodes": ["\xe9"]}', "not UTF-8 text (byte 12)"),
    ("{oops", "not valid JSON"),
])  # fmt: skip
def test_malformed_graph_json_is_one_line(tmp_path, capsys, text, message):
    path = tmp_path / "g.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert cnas(["score", str(path), "--units", "2"]) == 2
    one_error_line(capsys, message)
    assert os.listdir(tmp_path) == ["g.json"]


def test_graph_json_with_a_byte_order_mark_is_read(tmp_path):
    from concurrent_nas import read_graph

    path = tmp_path / "g.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    assert sorted(read_graph(path).edges) == [(0, 1), (1, 2)]


def test_manifest_node_count_agrees_with_the_rows(tmp_path):
    from concurrent_nas.rundir import load_parquet

    run = tmp_path / "r50"
    assert cnas(["sample", "--gen", "resnet50", "--n", "1", "--nodes", "40", "--out-dir", str(run)]) == 0
    manifest = json.loads((run / rundir.MANIFEST).read_text())
    assert manifest["nodes"] == int(load_parquet(run / rundir.ARCHITECTURES)["nodes"].iloc[0]) == 68


# -- your own DAG with named vertices (#17 item 8) ----------------------------------------

NAMED = {"directed": True, "multigraph": False, "graph": {},
         "nodes": [{"id": "in"}, {"id": "conv1"}, {"id": "conv2"}, {"id": "add"}, {"id": "out"}],
         "links": [{"source": "in", "target": "conv1"}, {"source": "in", "target": "conv2"},
                   {"source": "conv1", "target": "add"}, {"source": "conv2", "target": "add"},
                   {"source": "add", "target": "out"}]}  # fmt: skip


def test_named_vertices_are_scored_and_keep_their_names(tmp_path, capsys):
    import concurrent_nas as cn
    from concurrent_nas.rundir import load_parquet

    path = tmp_path / "named.json"
    path.write_text(json.dumps(NAMED))
    dag = cn.read_graph(path)
    assert sorted(dag.edges) == [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)]
    assert cn.shape_pass(dag).shape[0] == 5
    assert cnas(["score", str(path), "--units", "2", "--eps", "0.5", "--out", str(tmp_path / "s.parquet")]) == 0
    table = load_parquet(tmp_path / "s.parquet")
    assert [list(n) for n in table["vertex_names"]] == [["in", "conv1", "conv2", "add", "out"]]
    assert len(table["parts"].iloc[0]) == 5
    # Written back, the file has the user's ids again, and reads to the same graph.
    cn.write_graph(dag, tmp_path / "again.json")
    again = json.loads((tmp_path / "again.json").read_text())
    assert [n["id"] for n in again["nodes"]] == ["in", "conv1", "conv2", "add", "out"]
    assert sorted(cn.read_graph(tmp_path / "again.json").edges) == sorted(dag.edges)


@pytest.mark.parametrize("ids", [(-3, 0, 5), (2**64, 1, 2), (0.5, 1.5, 2.5)])
def test_json_ids_out_of_integer_range_are_renumbered_not_refused(tmp_path, ids):
    import concurrent_nas as cn

    a, b, c = ids
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"nodes": [{"id": a}, {"id": b}, {"id": c}],
                                "links": [{"source": a, "target": b}, {"source": b, "target": c}]}))  # fmt: skip
    dag = cn.read_graph(path)
    assert sorted(dag.edges) == [(0, 1), (1, 2)] and [dag.nodes[v]["user_id"] for v in dag] == list(ids)


def test_colliding_json_ids_are_one_line(tmp_path, capsys):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"nodes": [{"id": 1}, {"id": "1"}, {"id": "x"}],
                                "links": [{"source": 1, "target": "1"}, {"source": "1", "target": "x"}]}))  # fmt: skip
    assert cnas(["score", str(path), "--units", "2"]) == 2
    one_error_line(capsys, "vertex ids 1 and '1' are the same once written as text; rename one")


def test_forward_pass_too_large_for_memory_is_refused_before_allocating(tmp_path, capsys):
    # 3 x 100000^2 float32 input alone is 112 GiB: more than any test host has free.
    path = tmp_path / "g.json"
    path.write_text(json.dumps(NAMED))
    assert cnas(["compile", str(path), "--check", "--image-size", "100000"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "forward pass at image size 100000 need about" in captured.err and "GiB is available" in captured.err


@pytest.mark.parametrize("case", ["under a file", "symlink loop"])
def test_sample_out_that_cannot_be_a_directory_is_one_line(tmp_path, capsys, case):
    (tmp_path / "file").write_text("keep")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    out, message = {"under a file": (tmp_path / "file" / "run", "which is a file"),
                    "symlink loop": (tmp_path / "loop" / "run", "symlink loop")}[case]  # fmt: skip
    before = snapshot(tmp_path)
    assert cnas([*SAMPLE, "--out-dir", str(out)]) == 2
    one_error_line(capsys, message)
    assert snapshot(tmp_path) == before
