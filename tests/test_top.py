"""cnas top, --rank on compile/export, the best-architectures table; CLI-wide hints and broken pipes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from concurrent_nas.analysis import tables
from concurrent_nas.analysis.ranking import architecture_at_rank, top_architectures
from concurrent_nas.cli.main import main
from concurrent_nas.errors import CnasError
from concurrent_nas.rundir import LATENCY, load_parquet, write_table


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "concurrent_nas.cli.main", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def scored_run(small_dp_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("top") / "dp20"
    shutil.copytree(small_dp_run, run)
    assert main(["score", str(run), "--units", "2,4", "--eps", "0.1,0.3", "--processes", "1"]) == 0
    return run


def hand_tables() -> dict[str, pd.DataFrame]:
    scores = pd.DataFrame({"arch_id": [0, 1, 2, 0, 1, 2], "generator": "dp", "nodes": 20,
                           "units": [2, 2, 2, 4, 4, 4], "cs": [0.9, 0.5, 0.7, 1.2, 1.4, 1.1]})
    accuracy = pd.DataFrame({"arch_id": [0, 1, 2, -1], "generator": ["dp", "dp", "dp", "baseline-cifarnet"],
                             "nodes": 20, "dataset": "digits", "top1": [97.0, 98.5, 96.0, 99.9]})
    latency = pd.DataFrame({"arch_id": [0, 0, 1, 1], "generator": "dp", "nodes": 20, "units": 2,
                            "placement": ["kahypar", "paper", "kahypar", "paper"],
                            "median_ms": [5.0, 3.0, 4.0, 6.0]})
    return {"scores.parquet": scores, "latency.parquet": latency, "accuracy.parquet": accuracy}


def test_rank_by_a_score_column_low_first():
    ranked = tables.rank_architectures(hand_tables(), "cs@2", k=2)
    assert list(ranked["rank"]) == [1, 2]
    assert list(ranked["arch_id"]) == [1, 2] and list(ranked["cs@2"]) == [0.5, 0.7]


@pytest.mark.parametrize("column,high", [("top1", True), ("best_top1", True), ("acc_per_mparam", True),
                                         ("pred_speedup", True), ("speedup_same_cores", True), ("entropy", True),
                                         ("cs", False), ("pred_latency_ms", False), ("comm_bytes", False),
                                         ("train_loss", False)])
def test_direction_follows_the_column_name(column, high):
    assert tables.higher_is_better(column) is high


def test_accuracy_ranks_high_first_and_leaves_baselines_out():
    ranked = tables.rank_architectures(hand_tables(), "top1", k=None)
    assert list(ranked["arch_id"]) == [1, 0, 2]  # the baseline's 99.9 has arch_id -1


def test_several_rows_count_with_the_best_unless_filtered():
    both = tables.rank_architectures(hand_tables(), "median_ms@2")
    assert list(both["arch_id"]) == [0, 1] and list(both["median_ms@2"]) == [3.0, 4.0]
    assert list(both["rows"]) == [2, 2]
    kahypar = tables.rank_architectures(hand_tables(), "median_ms@2", where={"placement": "kahypar"})
    assert list(kahypar["arch_id"]) == [1, 0] and list(kahypar["median_ms@2"]) == [4.0, 5.0]
    flipped = tables.rank_architectures(hand_tables(), "cs@4", best="high")
    assert list(flipped["arch_id"]) == [1, 0, 2]


@pytest.mark.parametrize("by,fragment", [
    ("nope", "choose from cs@2, cs@4, median_ms@2, top1"),
    ("cs", "say which, e.g. cs@2, cs@4"),
    ("cs@3", "no rows for 3 units"),
    ("cs@x", "must be an integer"),
    ("top1@2", "has no units column; use --by top1"),
])
def test_bad_by_names_what_the_tables_offer(by, fragment):
    with pytest.raises(CnasError, match=None) as info:
        tables.rank_architectures(hand_tables(), by)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_top_on_a_real_run_matches_the_scores_table(scored_run):
    scores = load_parquet(scored_run / "scores.parquet")
    best = scores[scores["best"] & (scores["units"] == 4)].sort_values(["cs", "arch_id"])
    ranked = top_architectures(scored_run, "cs@4", k=5)
    assert list(ranked["arch_id"]) == list(best["arch_id"][:5])
    assert architecture_at_rank(scored_run, 2, "cs@4") == int(best["arch_id"].iloc[1])
    result = cli("top", str(scored_run), "--by", "cs@4", "-k", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("| rank | arch_id") and len(lines) == 2 + 3
    assert lines[2].split("|")[2].strip() == str(int(best["arch_id"].iloc[0]))


def test_top_ranks_any_table_the_run_gains(scored_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(scored_run, run)
    write_table(pd.DataFrame({"arch_id": [3, 5], "generator": "dp", "nodes": 20, "units": 2,
                              "median_ms": [7.0, 2.0]}), run / LATENCY)
    assert list(top_architectures(run, "median_ms@2")["arch_id"]) == [5, 3]


def test_export_and_compile_take_a_rank(scored_run, tmp_path):
    first = architecture_at_rank(scored_run, 1, "cs@2")
    by_rank = cli("export", str(scored_run), "--rank", "1", "--by", "cs@2")
    by_id = cli("export", str(scored_run), str(first))
    assert by_rank.returncode == 0 and by_rank.stdout == by_id.stdout
    assert json.loads(by_rank.stdout)["graph"]["index"] == first
    compiled = cli("compile", str(scored_run), "--rank", "1", "--by", "cs@2")
    assert compiled.returncode == 0 and compiled.stdout.startswith(f"architecture {first} ")


@pytest.mark.parametrize("args,fragment", [
    (["export", "{run}"], "give an architecture id or a rank"),
    (["export", "{run}", "1", "--rank", "1"], "not both"),
    (["export", "{run}", "--rank", "0"], "--rank must be at least 1"),
    (["export", "{run}", "--rank", "99"], "only 12 architectures"),
    (["top", "{run}", "-k", "0"], "-k must be at least 1"),
    (["top", "{run}", "--where", "placement"], "COLUMN=VALUE"),
    (["top", "{run}", "--where", "placement=x"], "has no column 'placement'"),
])
def test_bad_rank_input_is_one_line_exit_2(scored_run, args, fragment, tmp_path, capsys):
    out = tmp_path / "g.json"
    code = main([*[a.format(run=scored_run) for a in args], *(["--out", str(out)] if args[0] == "export" else [])])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_summary_lists_the_best_architectures(scored_run, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(scored_run), "--out-dir", str(out), "--draw-units", "2", "--figure-formats", "svg"]) == 0
    summary = (out / "summary.md").read_text()
    section = summary.split("## Best architectures", 1)[1].split("## Figures", 1)[0]
    best = top_architectures(scored_run, "cs@4", k=3)
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| dp20 | 4 |")]
    assert [int(r[4]) for r in rows] == list(best["arch_id"])
    assert (out / "tables" / "best_architectures.csv").exists()


@pytest.mark.parametrize("args,hint", [
    (["scor", "x"], "did you mean 'score'?"),
    (["score", "x", "--unitz", "4"], "did you mean '--units'?"),
    (["score", "x", "--preset", "fats"], "did you mean 'fast'?"),
    (["sample", "--gen", "dpp", "--out-dir", "x"], "did you mean 'dp'?"),
])
def test_unknown_names_get_a_suggestion(args, hint, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as stop:  # argparse's own errors exit from the parser
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and hint in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_reader_that_goes_away_ends_quietly(scored_run):
    # The read end is closed before the child writes: its first write meets EPIPE.
    proc = subprocess.Popen([sys.executable, "-m", "concurrent_nas.cli.main", "export", str(scored_run), "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert stderr == ""


def test_trained_run_names_baselines_and_ranks_by_accuracy(tmp_path):
    run = tmp_path / "run"
    assert main(["sample", "--gen", "dp", "--n", "1", "--nodes", "12", "--out-dir", str(run)]) == 0
    assert main(["train", str(run), "--dataset", "digits", "--epochs", "1", "--image-size", "8",
                 "--baseline", "cifarnet", "--torch-threads", "1"]) == 0
    history = load_parquet(run / "history.parquet")
    names = dict(zip(history["arch_id"], history["name"]))
    assert names == {-1: "baseline-cifarnet", 0: "arch-00000"}
    accuracy = load_parquet(run / "accuracy.parquet")
    trained = accuracy[accuracy["arch_id"] >= 0].sort_values(["top1", "arch_id"], ascending=[False, True])
    ranked = top_architectures(run, "top1")
    assert list(ranked["arch_id"]) == list(trained["arch_id"])  # the baseline is not ranked
