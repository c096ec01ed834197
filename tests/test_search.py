"""`cnas search`: the space, the front, resuming after a kill, two processes on one study, bad input.

Searches here are tiny (12-20 blocks, a handful of trials) and use the cheap objectives
(predicted latency, params); one test runs the accuracy estimate on two trials.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

import concurrent_nas as cnas
from concurrent_nas.cli.main import main
from concurrent_nas.errors import CnasError
from concurrent_nas.rundir import load_architectures
from concurrent_nas.search import (
    Choice,
    FloatRange,
    IntRange,
    SearchConfig,
    SearchSpace,
    hypervolume,
    pareto_mask,
    parse_domain,
)
from concurrent_nas.predict import predict_latency
from concurrent_nas.search.space import space_from_settings
from concurrent_nas.shapes import count_params
from concurrent_nas.training.estimate import EstimateConfig, estimate_accuracy

# A small, fast space: 12-20 blocks, narrow widths.
SMALL = ["--set", "nodes=12:20:4", "--set", "stem_channels=8", "--set", "channel_cap=32", "--image-size", "16"]
CHEAP = ["--objectives", "latency,params", "--units", "4", "--population", "4"]


def small_space(**dims) -> SearchSpace:
    return space_from_settings(["nodes=12:20:4", "stem_channels=8", "channel_cap=32"],
                               cnas.CompileSettings(image_size=16)).replace(**dims)


# -- Pareto front and hypervolume, hand-computed -------------------------------------------


def test_pareto_mask_keeps_the_non_dominated_rows():
    points = [[1, 5], [2, 2], [3, 3], [4, 1], [2, 2]]
    assert pareto_mask(points, ["minimize", "minimize"]).tolist() == [True, True, False, True, True]
    # Maximising the second objective turns the order around: (4, 1) is dominated by none,
    # (1, 5) is best on both.
    assert pareto_mask(points, ["minimize", "maximize"]).tolist() == [True, False, False, False, False]


def test_hypervolume_of_a_two_point_front():
    # Rectangles from the reference (4, 4): (1,3) adds 3 x 1, (2,1) adds 2 x 2 -> 7.
    assert hypervolume([[1, 3], [2, 1]], [4, 4], ["minimize", "minimize"]) == 7.0
    # A dominated point and one beyond the reference change nothing.
    assert hypervolume([[1, 3], [2, 1], [3, 3], [5, 0]], [4, 4], ["minimize", "minimize"]) == 7.0
    # Maximised accuracy: (latency 1, acc 90), (2, 95) against (4, 80): 3 x 10 + 2 x 5 = 40.
    assert hypervolume([[1, 90], [2, 95]], [4, 80], ["minimize", "maximize"]) == 40.0


# -- the space ----------------------------------------------------------------------------------


def test_parse_domain_reads_choices_and_ranges():
    assert parse_domain("nodes", "12:20:4") == IntRange(12, 20, 4)
    assert parse_domain("dp.p", "0.2:0.4") == FloatRange(0.2, 0.4)
    assert parse_domain("dp.p", "0.3", FloatRange(0.1, 0.9)) == Choice((0.3,))
    assert parse_domain("generator", "dp,ws") == Choice(("dp", "ws"))
    with pytest.raises(CnasError, match="LOW <= HIGH"):
        parse_domain("nodes", "20:12")


def test_space_keeps_only_the_parameters_of_its_families():
    space = small_space(generator=Choice(("dp", "ws")))
    assert {"dp.p", "dp.alpha", "dp.beta", "ws.k", "ws.p"} <= set(space.dims)
    assert not any(name.startswith(("er.", "ba.", "fb.")) for name in space.dims)
    with pytest.raises(CnasError, match="unknown search dimension 'dp.q'"):
        space_from_settings(["dp.q=0.1:0.2"])
    with pytest.raises(CnasError, match="'chain' is not a random generator family"):
        space_from_settings(["generator=chain"])


def test_a_candidate_is_the_same_network_from_its_values():
    space = small_space()
    values = {"generator": "dp", "nodes": 16, "seed": 5, "dp.p": 0.4, "dp.alpha": 0.8, "dp.beta": 1.0,
              "orientation": "index", "staging": "greedy", "staging_prob": 0.5, "merge": "sum",
              "stem_channels": 8, "channel_cap": 32}
    candidate = space.candidate(values)
    assert candidate.settings.staging == "greedy" and candidate.settings.image_size == 16
    expected = cnas.generate("dp", 16, 5, p=0.4, alpha=0.8, beta=1.0, orientation="index")
    assert sorted(candidate.dag().edges) == sorted(expected.edges)
    assert candidate.key() == space.candidate(dict(values)).key()


def test_choices_that_build_the_same_network_share_its_key():
    space = small_space()
    values = {"generator": "fb", "nodes": 16, "seed": 2, "fb.stages": 2, "orientation": "dfs", "staging": "uniform",
              "staging_prob": 0.5, "merge": "sum", "stem_channels": 8, "channel_cap": 32}
    fb = space.candidate(values)
    # FB stages where its generator says, in every mode: the same network.
    assert space.candidate({**values, "staging": "greedy"}).network_key() == fb.network_key()
    assert space.candidate({**values, "merge": "sigmoid-weights"}).network_key() != fb.network_key()
    dp = {**values, "generator": "dp", "dp.p": 0.5, "dp.alpha": 1.0, "dp.beta": 1.0}
    assert (space.candidate({**dp, "staging": "greedy"}).network_key()
            != space.candidate({**dp, "staging": "uniform"}).network_key())


def test_space_flag_prints_every_dimension(capsys):
    assert main(["search", "--space", "--set", "generator=dp", "--set", "nodes=40"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines() if not line.startswith("fixed"))
    assert lines["generator"] == "dp" and lines["nodes"] == "40" and lines["dp.p"] == "0.1:0.9"
    assert "ws.k" not in lines and lines["merge"] == "sigmoid-inputs,sigmoid-weights,sum"


# -- a small search end to end ------------------------------------------------------------------


def test_search_writes_the_front_and_every_output(tmp_path):
    result = cnas.search(small_space(), ("latency", "params"), 10, out=tmp_path / "s", units=4, population=4)
    trials, front = result.trials, result.pareto
    assert len(trials) == 10 and set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    for name in ("trials.parquet", "pareto.parquet", "pareto.png", "summary.md", "front/manifest.json"):
        assert (tmp_path / "s" / name).exists(), name
    feasible = trials[trials["feasible"]]
    # The front: non-dominated among the feasible trials, and every such trial is on it.
    mask = pareto_mask(feasible[["latency", "params"]].to_numpy(), ["minimize", "minimize"])
    # One row per network: trials that chose the same architecture and got the same values
    # (settings that change nothing for it) are one front entry.
    network = ["generator", "nodes", "seed", "latency", "params"]
    assert set(map(tuple, front[network].to_numpy())) == set(map(tuple, feasible[mask][network].to_numpy()))
    assert len(front) == len(front.drop_duplicates(network)) and set(front["trial"]) <= set(feasible[mask]["trial"])
    # The front is an ordinary run: the pipeline's reader rebuilds every DAG, and each
    # row's generator, params, nodes and seed regenerate it.
    archs = load_architectures(result.front_run)
    assert sorted(a for a, _, _ in archs) == sorted(front["trial"])
    table = pd.read_parquet(result.front_run / "architectures.parquet")
    for row, (_, _, dag) in zip(table.itertuples(), archs):
        again = cnas.generate(row.generator, row.nodes, row.seed, **json.loads(row.params))
        assert sorted(again.edges) == sorted(dag.edges)
    # params objective = the shape pass's count for the trial's settings.
    first = front.iloc[0]
    settings = json.loads(table.set_index("arch_id").loc[first["trial"], "compile_settings"])
    dag = dict((a, d) for a, _, d in archs)[int(first["trial"])]
    assert first["params"] == count_params(dag, cnas.CompileSettings(**settings))
    # Latency: predict_latency of the same network on 4 units of the default profile, recomputed.
    predicted = predict_latency(dag, 4, "multicore", settings=cnas.CompileSettings(**settings))
    assert first["latency"] == pytest.approx(predicted.pred_latency_ms)
    assert first["cp_bound"] == pytest.approx(predicted.cp_bound)


def test_same_seed_same_trials(tmp_path):
    runs = [cnas.search(small_space(), ("latency", "params"), 6, out=tmp_path / f"s{i}", units=4, population=4,
                        seed=3).trials for i in range(2)]
    columns = ["generator", "nodes", "seed", "latency", "params"]
    pd.testing.assert_frame_equal(runs[0][columns], runs[1][columns])


def test_more_trials_resume_the_study(tmp_path):
    out = tmp_path / "s"
    first = cnas.search(small_space(), ("latency", "params"), 4, out=out, units=4, population=4).trials
    again = cnas.search(small_space(), ("latency", "params"), 4, out=out, units=4, population=4)
    assert again.ran == 0 and len(again.trials) == 4
    more = cnas.search(small_space(), ("latency", "params"), 7, out=out, units=4, population=4)
    assert more.ran == 3 and len(more.trials) == 7
    pd.testing.assert_frame_equal(more.trials.iloc[:4][["key", "latency"]], first[["key", "latency"]])
    # The resumed sampler does not propose the first trials again.
    assert not set(more.trials["key"].iloc[4:]) & set(first["key"])


def test_accuracy_objective_runs_the_estimate(tmp_path):
    space = small_space(generator="dp", nodes=8)
    result = cnas.search(space, ("accuracy", "latency"), 2, out=tmp_path / "s", units=2, sampler="random")
    trials = result.trials
    assert trials["accuracy"].notna().all() and (trials["seconds_accuracy"] > 0).all()
    row = trials.iloc[0]
    candidate = space.candidate({name: row[name] for name in space.dims})
    expected = estimate_accuracy(candidate.dag(), "jacob-cov", candidate.settings,
                                 config=EstimateConfig(image_size=16, epochs=1, seed=0))
    assert row["accuracy"] == pytest.approx(expected)


# -- bad input: one line, exit 2, the study as it was ----------------------------------------------


@pytest.fixture
def searched(tmp_path):
    """A 4-trial search directory made with the CLI."""
    out = tmp_path / "s"
    assert main(["search", "--out-dir", str(out), "--trials", "4", *SMALL, *CHEAP]) == 0
    return out


def snapshot(out):
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.mark.parametrize("args, message", [
    (["--objectives", "latency,speed"], "unknown objective 'speed'"),
    (["--trials", "0"], "--trials must be a positive integer"),
    (["--units", "4", "--objectives", "latency,accuracy"], "other settings (objectives: latency,params -> latency,accuracy)"),
    (["--set", "nodes=12:24:4"], "other settings (space nodes: 12:20:4 -> 12:24:4)"),
    (["--max-params", "5e4"], "max_params: 0.0 -> 50000.0"),
    (["--profile", "edge"], "profile: multicore -> edge"),
    (["--units", "11"], "11"),
])
def test_bad_input_is_one_line_and_leaves_the_study(searched, capsys, args, message):
    before = snapshot(searched)
    argv = ["search", "--out-dir", str(searched), "--trials", "4", *SMALL, *CHEAP, *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert snapshot(searched) == before


def test_unknown_sampler_is_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["search", "--out-dir", str(tmp_path / "s"), "--sampler", "cmaes"])
    assert stop.value.code == 2 and "invalid choice: 'cmaes'" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    with pytest.raises(CnasError, match="unknown sampler 'cmaes'"):
        SearchConfig(sampler="cmaes")


def test_unreachable_storage_is_one_line(tmp_path, capsys):
    out = tmp_path / "s"
    argv = ["search", "--out-dir", str(out), "--storage", f"sqlite:///{tmp_path}/missing/dir/study.db", *CHEAP]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnas: error: cannot open --storage sqlite:///") and err.count("\n") == 1
    assert not out.exists()


def test_an_infeasible_constraint_stops_after_n_trials(tmp_path, capsys):
    out = tmp_path / "s"
    argv = ["search", "--out-dir", str(out), "--trials", "50", "--max-params", "100", "--infeasible-after", "3",
            *SMALL, *CHEAP]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no feasible architecture in 3 trials under --max-params 100; the smallest had" in err
    # The trials it ran are kept in the study.
    again = cnas.search(small_space(), ("latency", "params"), 3, out=out, units=4, population=4, max_params=100)
    assert again.ran == 0 and list(again.trials["state"]) == ["PRUNED"] * 3


# -- a killed search resumes; two processes share one study -------------------------------------

# The child runs the real CLI and SIGKILLs itself in the middle of its fourth evaluation,
# so the kill always lands inside a trial, after exactly three finished ones.
KILLED_CHILD = textwrap.dedent("""
    import os, signal, sys
    import concurrent_nas.search.objectives as objectives
    from concurrent_nas.cli.main import main
    real, calls = objectives.evaluate, []
    def evaluate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    objectives.evaluate = evaluate
    sys.exit(main(sys.argv[1:]))
""")


def test_a_killed_search_resumes_with_the_same_command(tmp_path):
    out = tmp_path / "s"
    argv = ["search", "--out-dir", str(out), "--trials", "6", *SMALL, *CHEAP]
    killed = subprocess.run([sys.executable, "-c", KILLED_CHILD, *argv], capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert main(argv) == 0
    trials = pd.read_parquet(out / "trials.parquet")
    finished = trials[trials["state"].isin(["COMPLETE", "PRUNED"])]
    assert len(finished) == 6
    # Trials 0-2 finished before the kill and are kept; trial 3 was cut off and never finished.
    assert list(finished["trial"][:3]) == [0, 1, 2]
    assert trials.set_index("trial").loc[3, "state"] == "RUNNING"
    assert finished["worker"].nunique() == 2


# Both children wait for a go file, so they search at the same time.
WAITING_CHILD = textwrap.dedent("""
    import os, sys, time
    from concurrent_nas.cli.main import main
    ready, go = sys.argv[1], sys.argv[2]
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.05)
    sys.exit(main(sys.argv[3:]))
""")


def test_two_processes_share_one_study(tmp_path):
    storage = f"journal:{tmp_path / 'shared.journal'}"
    procs = []
    for i in range(2):
        argv = ["search", "--out-dir", str(tmp_path / f"p{i}"), "--storage", storage, "--trials", "24",
                "--sampler-seed", str(i), "--sampler", "random", *SMALL, *CHEAP]
        procs.append(subprocess.Popen([sys.executable, "-c", WAITING_CHILD, str(tmp_path / f"ready{i}"),
                                       str(tmp_path / "go"), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "go").touch()
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()
    # Each process wrote the whole study; the last to finish saw every trial.
    tables = [pd.read_parquet(tmp_path / f"p{i}" / "trials.parquet") for i in range(2)]
    trials = max(tables, key=len)
    finished = trials[trials["state"].isin(["COMPLETE", "PRUNED"])]
    # Each stops once the study holds 24; the other may be finishing one trial then.
    assert 24 <= len(finished) <= 25
    by_worker = finished.groupby("worker")["trial"].apply(set)
    assert len(by_worker) == 2, "both processes ran trials"
    first, second = by_worker.iloc[0], by_worker.iloc[1]
    assert not first & second and len(first) + len(second) == len(finished)
    assert sorted(first | second) == sorted(finished["trial"])


def test_report_draws_the_search_of_a_front(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["search", "--out-dir", str(out), "--trials", "5", *SMALL, *CHEAP]) == 0
    # Off a terminal: heartbeat lines with the best values, the last one at the end.
    assert capsys.readouterr().err.splitlines()[-1].startswith("search: 5/5 trials; best latency ")
    assert main(["score", str(out / "front"), "--units", "2"]) == 0
    # The front's arch_ids are trial numbers; Fig. 11 draws the first of them by default.
    first = int(pd.read_parquet(out / "front" / "architectures.parquet")["arch_id"].min())
    assert main(["report", str(out / "front"), "--out-dir", str(tmp_path / "report"), "--figure-formats", "png"]) == 0
    assert (tmp_path / "report" / "search_pareto.png").is_file()
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "Search: the Pareto front over all trials" in summary and f"Architecture {first} (" in summary


def test_a_network_the_accuracy_estimate_cannot_build_is_infeasible(tmp_path):
    # Greedy staging from 8 to 256 channels halves the image 5 times: fine for the 64 px
    # network of the latency objective, too many for the estimate's 16 px digits.
    space = small_space(generator="dp", nodes=12, staging="greedy", channel_cap=256)
    space = SearchSpace(space.dims, cnas.CompileSettings(image_size=64))
    with pytest.raises(CnasError, match="no feasible architecture in 1 trials under the space"):
        cnas.search(space, ("latency", "accuracy"), 3, out=tmp_path / "s", units=2, infeasible_after=1)
    # The pruned trial is in the study, with the estimate's reason.
    kept = cnas.search(space, ("latency", "accuracy"), 1, out=tmp_path / "s", units=2, infeasible_after=1)
    assert kept.ran == 0 and list(kept.trials["state"]) == ["PRUNED"]
    assert kept.trials["infeasible"][0].startswith("accuracy: image_size 16 is too small")
