"""`cnas score` end to end: run tables, JSON graphs, crashes, interrupt/resume, Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import concurrent_nas as cnas
from concurrent_nas.cli.main import main
from concurrent_nas.graphjson import write_graph
from concurrent_nas.rundir import ARCHITECTURES, load_parquet, write_table
from concurrent_nas.sampling import sample_architectures
from concurrent_nas.scoring import (
    DIED,
    TIMED_OUT,
    ScoreConfig,
    architecture_records,
    run_scoring,
    score_records,
)

CRASH_ARCH = 3
HANG_ARCH = 4


def crash_on_one_architecture(records, config):
    """Worker function for the crash test: dies like kahypar does on a bad .ini."""
    if any(r["arch_id"] == CRASH_ARCH for r in records):
        os._exit(255)
    return score_records(records, config)


def hang_on_one_architecture(records, config):
    """Worker function for the timeout test: never returns on one architecture, like a hung call."""
    if any(r["arch_id"] == HANG_ARCH for r in records):
        time.sleep(3600)
    return score_records(records, config)


def hang_holding_the_gil(records, config):
    """Like :func:`hang_on_one_architecture`, but the way KaHyPar hangs: inside a C call
    that keeps the GIL, so no other thread of the worker runs meanwhile."""
    if any(r["arch_id"] == HANG_ARCH for r in records):
        import ctypes

        ctypes.PyDLL(None).sleep(3600)  # PyDLL: the GIL is not released around the call
    return score_records(records, config)


def slow_scores(records, config):
    """Worker function that takes its time, so a cluster can lose its workers meanwhile."""
    time.sleep(0.5)
    return score_records(records, config)


def make_run(path: Path, gen: str = "dp", n: int = 8, nodes: int = 20, seed: int = 0) -> Path:
    path.mkdir(parents=True)
    write_table(sample_architectures(gen, n, nodes=nodes, seed=seed), path / ARCHITECTURES)
    return path


def cli(*argv: str) -> subprocess.CompletedProcess:
    # No heartbeat: stderr here is a pipe, and on a loaded host a scheduler that takes
    # over 10 s to refuse would put a (correct) progress line before the error line.
    return subprocess.run(
        [sys.executable, "-m", "concurrent_nas.cli.main", *argv],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={**os.environ, "CNAS_HEARTBEAT": "0"},
    )


FAST = ["--units", "2,4", "--eps", "0.1,0.5"]


def test_score_writes_the_table_and_prints_a_summary(tmp_path, capsys):
    run = make_run(tmp_path / "r")
    assert main(["score", str(run), *FAST, "--processes", "2", "--chunk-size", "3"]) == 0
    out = capsys.readouterr().out
    assert "cs_median" in out and "U_c = 131072 B" in out
    table = load_parquet(run / "scores.parquet")
    assert len(table) == 8 * 2 * 2
    for col in ["arch_id", "generator", "nodes", "units", "eps", "delta_w", "comm_bytes", "comm_norm",
                "eta", "cs", "entropy", "part_weights", "parts", "best", "max_width", "longest_path"]:
        assert col in table.columns
    assert table.groupby(["arch_id", "units"])["best"].sum().eq(1).all()
    assert not (run / ".scores-partial").exists()  # checkpoints cleared once complete
    sidecar = json.loads((run / "scores.json").read_text())
    assert sidecar["settings"]["unit_bytes"] == 131072 and sidecar["failed"] == 0
    # The same command again: nothing to recompute; other settings need --force.
    assert main(["score", str(run), *FAST, "--chunk-size", "3"]) == 0
    assert "up to date" in capsys.readouterr().err
    assert main(["score", str(run), "--units", "4", "--eps", "0.1"]) == 2
    assert "pass --force" in capsys.readouterr().err
    # The package reads Parquet through pyarrow (see load_parquet): the same frames.
    for name in ["scores.parquet", "architectures.parquet"]:
        pd.testing.assert_frame_equal(load_parquet(run / name), pd.read_parquet(run / name))


def test_results_do_not_depend_on_workers_or_chunking(tmp_path):
    run = make_run(tmp_path / "r", gen="ws", n=6)
    records = architecture_records(load_parquet(run / ARCHITECTURES))
    config = ScoreConfig(units=(3, 5), eps=(0.03, 0.3), chunk=4)
    serial = score_records(records, config)
    parallel = run_scoring(records, config, workers=2).table
    pd.testing.assert_frame_equal(serial, parallel)


def test_a_json_graph_is_scored_and_printed_as_json(tmp_path):
    path = tmp_path / "mine.json"
    write_graph(cnas.generate("dp", 16, seed=2), path)
    done = cli("score", str(path), "--units", "3", "--eps", "0.1,0.3", "--summary", "json", "--out", str(tmp_path / "s.parquet"))
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert len(payload["scores"]) == 2 and payload["failures"] == []
    assert sum(payload["width_profile"]) == 18
    assert payload["summary"][0]["units"] == 3
    assert len(load_parquet(tmp_path / "s.parquet")) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["score", "{run}", "--units", "4,x"], "--units expects comma-separated integers"),
        (["score", "{run}", "--eps", "-0.1"], "eps must be a positive number"),
        (["score", "{run}", "--units", "500"], "cannot split"),
        (["score", "{run}", "--processes", "0"], "--processes must be at least 1"),
        (["score", "{run}", "--arch-timeout", "-1"], "--arch-timeout must be a number of seconds >= 0"),
        (["score", "{missing}"], "no such run directory"),
        (["score", "{run}", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_code_2(tmp_path, argv, message):
    run = make_run(tmp_path / "r", n=2)
    argv = [a.format(run=run, missing=tmp_path / "nope") for a in argv]
    done = cli(*argv)
    assert done.returncode == 2
    assert done.stderr.startswith("cnas: error:") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (run / "scores.parquet").exists()


def test_a_dying_worker_fails_only_its_architecture(tmp_path):
    run = make_run(tmp_path / "r", n=8)
    records = architecture_records(load_parquet(run / ARCHITECTURES))
    config = ScoreConfig(units=(2,), eps=(0.2,), costs="uniform", chunk=3)
    outcome = run_scoring(records, config, workers=2, worker_fn=crash_on_one_architecture)
    table = outcome.table
    assert outcome.died == [CRASH_ARCH]
    failed = table[table["error"].notna()]
    assert list(failed["arch_id"]) == [CRASH_ARCH] and failed["error"].iloc[0] == DIED
    good = table[table["error"].isna()]
    assert sorted(good["arch_id"]) == [i for i in range(8) if i != CRASH_ARCH]
    expected = score_records([r for r in records if r["arch_id"] != CRASH_ARCH], config)
    pd.testing.assert_frame_equal(good.reset_index(drop=True), expected)


@pytest.mark.parametrize("hang", [hang_on_one_architecture, hang_holding_the_gil])
def test_a_hung_architecture_is_stopped_after_the_timeout_and_the_rest_is_kept(tmp_path, hang):
    import psutil

    run = make_run(tmp_path / "r", n=8)
    records = architecture_records(load_parquet(run / ARCHITECTURES))
    config = ScoreConfig(units=(2,), eps=(0.2,), costs="uniform", chunk=3)
    # multiprocessing's resource tracker lives as long as this process: not a leftover.
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    started = time.monotonic()
    outcome = run_scoring(records, config, workers=2, worker_fn=hang, timeout=2)
    assert time.monotonic() - started < 60
    assert outcome.timed_out == [HANG_ARCH] and outcome.died == []
    table = outcome.table
    failed = table[table["error"].notna()]
    assert list(failed["arch_id"]) == [HANG_ARCH]
    assert failed["error"].iloc[0] == TIMED_OUT.format(timeout=2)
    good = table[table["error"].isna()]
    expected = score_records([r for r in records if r["arch_id"] != HANG_ARCH], config)
    pd.testing.assert_frame_equal(good.reset_index(drop=True), expected)
    # The hung worker was killed and the pool shut down: no process of ours is left.
    deadline = time.monotonic() + 10
    while {c.pid for c in psutil.Process().children(recursive=True)} - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not {c.pid for c in psutil.Process().children(recursive=True)} - before


def _partial_chunks(run: Path) -> list[Path]:
    return sorted(run.glob(".scores-partial/*/chunk-*.parquet"))


def test_a_worker_stuck_in_a_call_that_holds_the_gil_dies_with_a_killed_parent(tmp_path):
    import psutil

    run = make_run(tmp_path / "r", n=6)
    partial = tmp_path / "partial"
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import test_scoring_runner as t;"
        "from concurrent_nas.rundir import load_parquet;"
        "records = t.architecture_records(load_parquet(sys.argv[2]));"
        "config = t.ScoreConfig(units=(2,), eps=(0.1,), chunk=1);"
        "t.run_scoring(records, config, workers=2, worker_fn=t.hang_holding_the_gil,"
        " checkpoint_dir=sys.argv[3], timeout=0)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(Path(__file__).parent),
                             str(run / ARCHITECTURES), str(partial)], stdin=subprocess.DEVNULL)
    try:
        # Every architecture but the hung one finished: the hang is in progress.
        deadline = time.monotonic() + 120
        while len(list(partial.glob("chunk-*.parquet"))) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = [c for c in psutil.Process(proc.pid).children()
                   if "spawn_main" in " ".join(c.cmdline()) and "resource_tracker" not in " ".join(c.cmdline())]
        assert workers, "no worker process found"
    finally:
        proc.kill()
        proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=10)
    alive = [p for p in alive if _still_running(p)]  # a zombie waits on a PID 1 that may not reap
    assert not alive, f"workers outlived their killed parent: {[p.pid for p in alive]}"


def _still_running(proc) -> bool:
    import psutil

    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# `cnas score` in a child process that signals itself right after its second chunk is on
# disk: the interruption point is a hook in the run, not a race between a polling test and
# a run that may finish first on a loaded machine.
SIGNAL_AFTER_TWO_CHUNKS = """
import os, signal, sys
# A child inherits an ignored SIGINT (pytest-xdist workers may ignore it), and Python
# then raises no KeyboardInterrupt: restore Ctrl-C as a terminal gives it.
signal.signal(signal.SIGINT, signal.default_int_handler)
from concurrent_nas.cli.main import main
from concurrent_nas.scoring.checkpoints import Checkpoints

save, saved = Checkpoints.save, []

def save_then_signal(self, i, frame):
    save(self, i, frame)
    saved.append(i)
    if len(saved) == 2:
        os.kill(os.getpid(), int(sys.argv[1]))

Checkpoints.save = save_then_signal
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_score_resumes_to_the_uninterrupted_result(tmp_path, sig):
    run = make_run(tmp_path / "run", gen="ba", n=30, nodes=40)
    argv = ["score", str(run), "--units", "4,6,8,10", "--eps", "0.03,0.3", "--processes", "1", "--chunk-size", "1"]
    proc = subprocess.run(
        [sys.executable, "-c", SIGNAL_AFTER_TWO_CHUNKS, str(int(sig)), *argv],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # returning at all proves no orphaned worker holds the pipes
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "run the same command to resume" in proc.stderr
    else:
        assert proc.returncode == -signal.SIGKILL
    assert len(_partial_chunks(run)) == 2
    assert not (run / "scores.parquet").exists()

    resumed = cli(*argv)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "scores.json").read_text())["chunks_resumed"] == 2
    # The uninterrupted result, computed in this process and stored the same way.
    records = architecture_records(load_parquet(run / ARCHITECTURES))
    config = ScoreConfig(units=(4, 6, 8, 10), eps=(0.03, 0.3), chunk=1)
    write_table(score_records(records, config).drop(columns=["error"]), tmp_path / "whole.parquet")
    pd.testing.assert_frame_equal(load_parquet(run / "scores.parquet"), load_parquet(tmp_path / "whole.parquet"))


def test_dask_cluster_gives_the_same_scores_and_isolates_a_crash_and_a_hang(tmp_path):
    import distributed
    import cloudpickle
    import dask

    run = make_run(tmp_path / "r", n=6)
    records = architecture_records(load_parquet(run / ARCHITECTURES))
    config = ScoreConfig(units=(2, 4), eps=(0.1,), chunk=2)
    local = run_scoring(records, config, workers=1).table
    # A worker that dies is given up on at once instead of retried three times.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:
            on_dask = run_scoring(records, config, scheduler=cluster.scheduler_address).table
            pd.testing.assert_frame_equal(local, on_dask)
            cloudpickle.register_pickle_by_value(sys.modules[__name__])
            try:
                crashed = run_scoring(records, config, scheduler=cluster.scheduler_address,
                                      worker_fn=crash_on_one_architecture)
                started = time.monotonic()
                hung = run_scoring(records, config, scheduler=cluster.scheduler_address,
                                   worker_fn=hang_holding_the_gil, timeout=3)
                assert time.monotonic() - started < 120
            finally:
                cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert crashed.died == [CRASH_ARCH]
    good = crashed.table[crashed.table["error"].isna()]
    pd.testing.assert_frame_equal(good.reset_index(drop=True),
                                  local[local["arch_id"] != CRASH_ARCH].reset_index(drop=True))
    assert hung.timed_out == [HANG_ARCH] and hung.died == []
    failed = hung.table[hung.table["error"].notna()]
    assert list(failed["arch_id"]) == [HANG_ARCH] and failed["error"].iloc[0] == TIMED_OUT.format(timeout=3)
    good = hung.table[hung.table["error"].isna()]
    pd.testing.assert_frame_equal(good.reset_index(drop=True),
                                  local[local["arch_id"] != HANG_ARCH].reset_index(drop=True))


def test_a_dask_cluster_that_loses_every_worker_ends_the_run_and_keeps_what_finished(tmp_path, monkeypatch):
    import threading

    import cloudpickle
    import distributed

    import concurrent_nas.scoring.backends as backends

    monkeypatch.setattr(backends, "LOST_WORKERS_S", 2)
    run = make_run(tmp_path / "r", n=8)
    records = architecture_records(load_parquet(run / ARCHITECTURES))
    config = ScoreConfig(units=(2,), eps=(0.1,), chunk=1)
    checkpoints = tmp_path / "partial"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:
            def lose_the_workers():
                deadline = time.monotonic() + 60
                while len(list(checkpoints.glob("chunk-*.parquet"))) < 2 and time.monotonic() < deadline:
                    time.sleep(0.05)
                cluster.scale(0)

            thread = threading.Thread(target=lose_the_workers)
            thread.start()
            try:
                with pytest.raises(cnas.CnasError, match="has had no workers for 2 s.*run the same command to resume"):
                    run_scoring(records, config, scheduler=cluster.scheduler_address,
                                checkpoint_dir=checkpoints, worker_fn=slow_scores, timeout=0)
            finally:
                thread.join()
        kept = len(list(checkpoints.glob("chunk-*.parquet")))
        assert 2 <= kept < len(records)
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:
            resumed = run_scoring(records, config, scheduler=cluster.scheduler_address,
                                  checkpoint_dir=checkpoints, timeout=0)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert resumed.chunks_resumed == kept
    pd.testing.assert_frame_equal(resumed.table, run_scoring(records, config, workers=1).table)
