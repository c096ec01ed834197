"""`cnas sample`, `cnas generators`, `cnas export`: outputs, reproducibility, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

import concurrent_nas as cnas
from concurrent_nas import dag as dagmod
from concurrent_nas.cli.main import main
from concurrent_nas.graphjson import read_graph, to_node_link
from concurrent_nas.rundir import load_architectures, load_parquet, read_architectures


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "concurrent_nas.cli.main", *args], capture_output=True, text=True, timeout=120
    )


def test_sample_writes_manifest_and_table(small_dp_run):
    table = read_architectures(small_dp_run)
    manifest = json.loads((small_dp_run / "manifest.json").read_text())
    assert manifest["generator"] == "dp" and manifest["count"] == 12 and manifest["seed"] == 7
    assert manifest["params"] == {"p": 0.55, "alpha": 1.0, "beta": 1.0, "orientation": "dfs"}
    assert "cnas sample" in manifest["command"] and manifest["package_version"]
    assert list(table["arch_id"]) == list(range(12))
    assert set(table.columns) >= {
        "arch_id", "generator", "params", "seed", "vertices", "edges", "edge_list", "depth", "max_width",
    }
    assert (table["vertices"] == 22).all()
    assert (table["edges"] == table["edge_list"].map(len)).all()


def test_each_row_is_reproducible_on_its_own(small_dp_run):
    table = read_architectures(small_dp_run)
    row = table.iloc[5]
    again = cnas.generate("dp", 20, seed=7, index=5, **json.loads(row["params"]))
    assert [list(e) for e in dagmod.edge_list(again)] == [list(e) for e in row["edge_list"]]
    assert row["depth"] == dagmod.longest_path_vertices(again)
    assert row["max_width"] == dagmod.max_width(again)


def test_same_command_twice_gives_identical_tables(tmp_path):
    for name in ("a", "b"):
        assert main(["sample", "--gen", "fb", "--n", "5", "--seed", "3", "--out-dir", str(tmp_path / name)]) == 0
    a, b = (load_parquet(tmp_path / n / "architectures.parquet") for n in ("a", "b"))
    pd.testing.assert_frame_equal(a, b)
    assert (tmp_path / "a/architectures.parquet").read_bytes() == (tmp_path / "b/architectures.parquet").read_bytes()


def test_param_option_reaches_the_generator(tmp_path):
    out = tmp_path / "er"
    assert main(["sample", "--gen", "er", "--n", "3", "--param", "p=0.05", "--param", "orientation=index", "--out-dir", str(out)]) == 0
    table = read_architectures(out)
    assert json.loads(table["params"][0]) == {"p": 0.05, "orientation": "index"}
    assert all(u < v for u, v in table["edge_list"][0])


def test_export_round_trips_through_node_link_json(small_dp_run, tmp_path, capsys):
    assert main(["export", str(small_dp_run), "4", "--out", str(tmp_path / "g.json")]) == 0
    [(_, _, original)] = load_architectures(small_dp_run, [4])
    loaded = read_graph(tmp_path / "g.json")
    assert dagmod.edge_list(loaded) == dagmod.edge_list(original)
    # The `edges` key written by newer networkx is read too.
    data = to_node_link(original)
    data["edges"] = data.pop("links")
    (tmp_path / "edges.json").write_text(json.dumps(data))
    [(_, gen, dag)] = load_architectures(tmp_path / "edges.json")
    assert dagmod.edge_list(dag) == dagmod.edge_list(original) and gen == "dp"


def test_fb_stage_vertices_survive_the_table(tmp_path):
    out = tmp_path / "fb"
    assert main(["sample", "--gen", "fb", "--n", "2", "--out-dir", str(out)]) == 0
    [(_, _, dag)] = load_architectures(out, [1])
    fresh = cnas.generate("fb", 40, seed=0, index=1)
    assert sorted(v for v, s in dag.nodes(data="stage") if s) == sorted(
        v for v, s in fresh.nodes(data="stage") if s
    )


def test_generators_command_lists_parameters_and_defaults(capsys):
    assert main(["generators"]) == 0
    out = capsys.readouterr().out
    for name in cnas.list_generators():
        assert name in out
    assert "k=4, p=0.75" in out and "m=5" in out and "alpha=" in out


def test_no_progress_output_when_not_a_terminal(tmp_path):
    result = run_cli("sample", "--gen", "ws", "--n", "30", "--out-dir", str(tmp_path / "ws"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "30 ws architectures" in result.stdout


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--gen", "nope"], "unknown generator 'nope'"),
        (["--gen", "er", "--param", "p=2"], "must lie in [0, 1]"),
        (["--gen", "ws", "--param", "k=5"], "must be even"),
        (["--gen", "ws", "--nodes", "10", "--param", "k=10"], "below nodes"),
        (["--gen", "ba", "--nodes", "5", "--param", "m=5"], "1 <= m < nodes"),
        (["--gen", "dp", "--nodes", "3"], "at least 4"),
        (["--gen", "dp", "--n", "0"], "positive integer"),
        (["--gen", "dp", "--param", "zeta=1"], "has no parameter 'zeta'"),
        (["--gen", "dp", "--param", "novalue"], "KEY=VALUE"),
        (["--gen", "dp", "--n", "many"], "invalid int value"),
    ],
)
def test_bad_sample_input_is_one_line_exit_2(tmp_path, args, fragment):
    out = tmp_path / "runs" / "out"
    result = run_cli("sample", *args, "--out-dir", str(out))
    assert result.returncode == 2
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not out.parent.exists()  # not even an empty runs/ is left behind


def test_existing_out_needs_force_and_is_left_intact(small_dp_run, tmp_path):
    before = (small_dp_run / "architectures.parquet").read_bytes()
    result = run_cli("sample", "--gen", "er", "--n", "2", "--out-dir", str(small_dp_run))
    assert result.returncode == 2 and "--force" in result.stderr
    assert (small_dp_run / "architectures.parquet").read_bytes() == before
    copy = tmp_path / "copy"
    assert main(["sample", "--gen", "er", "--n", "2", "--out-dir", str(copy)]) == 0
    assert main(["sample", "--gen", "ba", "--n", "3", "--out-dir", str(copy), "--force"]) == 0
    assert len(read_architectures(copy)) == 3


def test_out_under_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("sample", "--gen", "dp", "--n", "2", "--out-dir", str(blocker / "run"))
    assert result.returncode == 2 and "lies under" in result.stderr and "which is a file" in result.stderr
    assert blocker.read_text() == "x"


def test_interrupted_sample_leaves_no_directory(tmp_path, monkeypatch):
    import concurrent_nas.sampling as sampling

    calls = {"n": 0}
    real = sampling.architecture_record

    def interrupt_half_way(dag):
        calls["n"] += 1
        if calls["n"] > 10:
            raise KeyboardInterrupt
        return real(dag)

    monkeypatch.setattr(sampling, "architecture_record", interrupt_half_way)
    out = tmp_path / "runs" / "half"
    assert main(["sample", "--gen", "dp", "--n", "50", "--out-dir", str(out)]) == 130
    assert not out.exists()
    assert list((tmp_path / "runs").iterdir()) == []


@pytest.mark.parametrize(
    "content,fragment",
    [
        ("{not json", "not valid JSON"),
        ('{"nodes": []}', "neither a 'links' nor an 'edges'"),
        ('[1, 2]', "not a networkx node-link graph"),
        (
            '{"directed": true, "nodes": [{"id": 0}, {"id": 1}, {"id": 2}], '
            '"links": [{"source": 0, "target": 1}, {"source": 1, "target": 2}, {"source": 2, "target": 1}]}',
            "cycle",
        ),
        (
            '{"directed": true, "nodes": [{"id": 0}, {"id": 1}, {"id": 2}], '
            '"links": [{"source": 0, "target": 2}, {"source": 1, "target": 2}]}',
            "2 source vertices",
        ),
        (
            '{"directed": true, "nodes": [{"id": 1}, {"id": "1"}], "links": [{"source": 1, "target": "1"}]}',
            "vertex ids 1 and '1' are the same once written as text; rename one",
        ),
        (
            '{"directed": true, "nodes": [{"id": 0}, {"id": 1}], '
            '"links": [{"source": 0, "target": 1}, {"source": 1, "target": 5}]}',
            "a link names vertex 5, which is not in 'nodes'",
        ),
    ],
)
def test_malformed_graph_json_is_a_clear_error(tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    path.write_text(content)
    from concurrent_nas.errors import CnasError

    with pytest.raises(CnasError) as info:
        load_architectures(path)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_export_unknown_id_and_missing_run(small_dp_run, tmp_path):
    result = run_cli("export", str(small_dp_run), "99")
    assert result.returncode == 2 and "no architecture 99" in result.stderr
    result = run_cli("export", str(tmp_path / "missing"), "0")
    assert result.returncode == 2 and "no such run directory" in result.stderr


def test_progress_bar_shows_on_a_terminal(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    # A real terminal has a size; tqdm draws nothing on a 0-column one.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "concurrent_nas.cli.main", "sample", "--gen", "dp", "--n", "200",
             "--out-dir", str(tmp_path / "tty")],
            stderr=slave, stdout=subprocess.PIPE, text=True, timeout=120,
        )
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert result.returncode == 0
    assert b"sample dp" in shown and b"arch" in shown


def test_write_run_is_what_the_command_does(tmp_path, small_dp_run):
    from concurrent_nas.sampling import write_run

    out = tmp_path / "dp20"
    table = write_run(out, "dp", 12, nodes=20, seed=7)
    assert (out / "architectures.parquet").read_bytes() == (small_dp_run / "architectures.parquet").read_bytes()
    pd.testing.assert_frame_equal(table, load_parquet(out / "architectures.parquet"))
    made = json.loads((out / "manifest.json").read_text())
    by_cli = json.loads((small_dp_run / "manifest.json").read_text())
    assert "command" not in made and "command" in by_cli
    assert {k: v for k, v in made.items() if k != "created"} == {
        k: v for k, v in by_cli.items() if k not in ("created", "command")
    }
    from concurrent_nas.errors import CnasError

    with pytest.raises(CnasError, match="already exists"):
        write_run(out, "dp", 2)
    with pytest.raises(CnasError, match=r"count \(--n\) must be an integer in 1\.\."):
        write_run(tmp_path / "none", "dp", 0)
    assert not (tmp_path / "none").exists()


def test_export_to_an_unwritable_place_is_one_line(small_dp_run, tmp_path, capsys):
    assert main(["export", str(small_dp_run), "0", "--out", str(tmp_path / "missing" / "g.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnas: error: cannot write graph") and err.count("\n") == 1
    assert main(["export", str(small_dp_run), "0", "--out", str(tmp_path / "g.json")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json"]
