"""The library side of `cnas score`: score_run / score_graph in one call, ScoreConfig checks."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import concurrent_nas as cnas
from concurrent_nas.cli.main import main
from concurrent_nas.graphjson import write_graph
from concurrent_nas.rundir import (
    ARCHITECTURES,
    SCORE_FAILURES,
    SCORES,
    SCORES_PARTIAL,
    SCORES_SIDECAR,
    Run,
    load_parquet,
    write_table,
)
from concurrent_nas.sampling import sample_architectures
from concurrent_nas.scoring import (
    DEFAULT_EPS,
    ScoreConfig,
    architecture_records,
    dag_record,
    score_graph,
    score_records,
    score_run,
    summarize,
)

SMALL = ScoreConfig(units=(2, 4), eps=(0.1, 0.5), chunk=3)


def make_run(path: Path, n: int = 6) -> Path:
    path.mkdir(parents=True)
    write_table(sample_architectures("dp", n, nodes=20, seed=0), path / ARCHITECTURES)
    return path


def test_score_run_does_what_the_cli_does_in_one_call(tmp_path, capsys):
    by_api = make_run(tmp_path / "api")
    by_cli = make_run(tmp_path / "cli")
    result = score_run(by_api, SMALL, workers=2)
    assert main(["score", str(by_cli), "--units", "2,4", "--eps", "0.1,0.5", "--chunk-size", "3", "--processes", "2"]) == 0
    capsys.readouterr()
    pd.testing.assert_frame_equal(load_parquet(by_api / SCORES), load_parquet(by_cli / SCORES))
    pd.testing.assert_frame_equal(result.table, load_parquet(by_api / SCORES))
    assert result.path == by_api / SCORES and not result.cached and result.failures.empty
    assert (result.chunks_total, result.chunks_resumed) == (2, 0)
    sidecar = json.loads((by_api / SCORES_SIDECAR).read_text())
    assert sidecar["fingerprint"] == json.loads((by_cli / SCORES_SIDECAR).read_text())["fingerprint"]
    assert not (by_api / SCORES_PARTIAL).exists()
    pd.testing.assert_frame_equal(result.summary(), summarize(result.table))

    again = score_run(Run(by_api), SMALL)
    assert again.cached and again.seconds == 0.0
    pd.testing.assert_frame_equal(again.table, result.table)
    with pytest.raises(cnas.CnasError, match="pass --force"):
        score_run(by_api, ScoreConfig(units=(2,), eps=(0.1,)))
    forced = score_run(by_api, ScoreConfig(units=(2,), eps=(0.1,)), force=True, workers=1)
    assert len(forced.table) == 6 and set(forced.table["units"]) == {2}


def test_score_run_lists_failures_in_their_own_table(tmp_path):
    run = make_run(tmp_path / "r", n=4)
    table = load_parquet(run / ARCHITECTURES)
    table.at[1, "edge_list"] = [[0, 1], [1, 0]]  # a cycle: that architecture cannot be scored
    write_table(table, run / ARCHITECTURES)
    result = score_run(run, ScoreConfig(units=(2,), eps=(0.1,), costs="uniform"), workers=1)
    assert list(result.failures["arch_id"]) == [1]
    assert list(result.failures.columns) == ["arch_id", "generator", "nodes", "error"]
    pd.testing.assert_frame_equal(load_parquet(run / SCORE_FAILURES), result.failures)
    assert sorted(result.table["arch_id"].unique()) == [0, 2, 3]
    assert "error" not in result.table.columns


def test_score_graph_scores_one_json_dag(tmp_path):
    path = tmp_path / "g.json"
    dag = cnas.generate("dp", 16, seed=2)
    write_graph(dag, path)
    result = score_graph(path, ScoreConfig(units=(3,), eps=(0.1, 0.3)), out=tmp_path / "s.parquet")
    assert len(result.table) == 2 and result.failures.empty
    assert sum(result.width_profile) == 18
    expected = score_records([dag_record(0, dag.graph.get("generator", "custom"), dag)], result.config)
    pd.testing.assert_frame_equal(result.table, expected.drop(columns=["error"]))
    pd.testing.assert_frame_equal(load_parquet(tmp_path / "s.parquet"), result.table)


def test_dag_record_matches_the_table_record(tmp_path):
    table = sample_architectures("fb", 2, nodes=20, seed=1)
    from concurrent_nas.rundir import row_to_dag

    for rec, row in zip(architecture_records(table), table.itertuples(index=False)):
        assert dag_record(row.arch_id, row.generator, row_to_dag(row)) == rec


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": (0,)}, "--units: units must be a positive integer"),
        ({"units": ()}, "--units needs at least one value"),
        ({"eps": (-0.1,)}, "--eps: eps must be a positive number"),
        ({"eps": (0.1, 0.1)}, "--eps has a repeated value"),
        ({"costs": "bytes"}, "--costs must be one of"),
        ({"preset": "turbo"}, "--preset must be one of"),
        ({"chunk": 0}, "--chunk-size must be at least 1"),
        ({"b": math.inf}, "--b: exponent b must be a finite number"),
        ({"a": math.nan}, "--a: exponent a must be a finite number"),
        ({"unit_bytes": 0}, "--unit-bytes must be a positive number of bytes"),
        ({"unit_bytes": -5.0}, "--unit-bytes must be a positive number of bytes"),
    ],
)
def test_score_config_refuses_bad_values_naming_the_flag(kwargs, message):
    with pytest.raises(cnas.CnasError, match=message) as info:
        ScoreConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_score_config_accepts_lists_and_defaults_to_the_one_eps_constant():
    assert ScoreConfig(units=[4, 6], eps=[0.1]).units == (4, 6)
    assert ScoreConfig().eps == DEFAULT_EPS == (0.03, 0.1, 0.2, 0.3, 0.5)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--unit-bytes", "0"], "--unit-bytes must be a positive number of bytes"),
        (["--chunk-size", "0"], "--chunk-size must be at least 1"),
        (["--b", "inf"], "exponent b must be a finite number"),
        (["--eps", "0.1,0.1"], "--eps has a repeated value"),
        (["--costs", "uniform", "--staging", "greedy"], "only apply with --costs flops"),
    ],
)
def test_bad_settings_stop_the_cli_before_any_file_is_written(tmp_path, flags, message):
    run = make_run(tmp_path / "r", n=2)
    done = subprocess.run([sys.executable, "-m", "concurrent_nas.cli.main", "score", str(run), *flags],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and done.stderr.startswith("cnas: error:") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in run.iterdir()) == [ARCHITECTURES]


def test_score_run_checks_sizes_before_writing(tmp_path):
    run = make_run(tmp_path / "r", n=2)
    with pytest.raises(cnas.CnasError, match="cannot split"):
        score_run(run, ScoreConfig(units=(500,), eps=(0.1,)))
    with pytest.raises(cnas.CnasError, match="--workers must be at least 1"):
        score_run(run, SMALL, workers=0)
    with pytest.raises(cnas.CnasError, match="--timeout must be a number of seconds >= 0"):
        score_run(run, SMALL, timeout=-1)
    assert sorted(p.name for p in run.iterdir()) == [ARCHITECTURES]


def test_cli_defaults_come_from_score_config(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default {','.join(map(str, DEFAULT_EPS))})" in help_text
    assert "(default 4,6,8,10)" in help_text and "(default 20)" in help_text and "(default 300" in help_text
