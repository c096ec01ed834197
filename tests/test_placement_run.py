"""Placement with real unit processes: equal outputs, faults, clean-up, the CLI table."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest

import concurrent_nas as cnas
from concurrent_nas.cli.main import main
from concurrent_nas.errors import CnasError
from concurrent_nas.placement import build_plan, make_assignment
from concurrent_nas.placement.distributed import make_config, measure_placed
from concurrent_nas.placement.worker import FAULT_ENV
from concurrent_nas.shapes import CompileSettings
from concurrent_nas.rundir import load_parquet

SETTINGS = CompileSettings(image_size=16, stem_channels=8, channel_cap=16)
TINY = ["--image-size", "16", "--stem-channels", "8", "--channel-cap", "16"]


def unit_children() -> list[int]:
    """Pids of this process's children that are spawned multiprocessing workers."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        ppid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        if ppid == os.getpid() and "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            pids.append(int(entry.name))
    return pids


def two_unit_config(transport="gloo", **kwargs):
    dag = cnas.generate("dp", 10, seed=4)
    plan = build_plan(dag, make_assignment(dag, 2, "paper", settings=SETTINGS), 2)
    return plan, make_config(dag, SETTINGS, plan, transport=transport, repeats=3, warmup=1, **kwargs)


def test_shared_memory_units_match_the_single_process_output():
    plan, cfg = two_unit_config("shm")
    result = measure_placed(cfg)  # raises if any inference differs from net(image)
    assert len(result["latency_s"]) == 3
    assert result["max_abs_diff"] <= 1e-5
    sent = sum(u["messages"][0] for u in result["units"])
    assert sent == len(plan.transfers) > 0
    assert unit_children() == []


@pytest.mark.parametrize("kind, expected", [("die", r"unit 1 of 2 died"), ("hang", r"unit 1 of 2 hung")])
def test_a_dead_or_hung_unit_fails_the_run_naming_it_and_leaves_no_process(kind, expected, monkeypatch):
    from concurrent_nas.placement.failures import UnitFailed

    _, cfg = two_unit_config("gloo", timeout_s=4.0)
    monkeypatch.setenv(FAULT_ENV, f"1:{kind}:2")  # the spawned units inherit it
    start = time.monotonic()
    with pytest.raises(UnitFailed, match=expected) as failure:
        measure_placed(cfg)
    assert failure.value.unit == 1 and isinstance(failure.value, CnasError)
    assert time.monotonic() - start < 60
    assert unit_children() == []


def test_a_unit_with_other_weights_fails_the_run_as_an_output_mismatch(monkeypatch):
    from concurrent_nas.placement.failures import OutputMismatch

    plan, cfg = two_unit_config("shm")
    monkeypatch.setenv(FAULT_ENV, "1:corrupt:2")  # unit 1 changes its copy of the weights
    # Its first message to unit 0 is the earliest wrong value (plan order is topological).
    first = next(t for t in plan.transfers if t.src == 1)
    with pytest.raises(OutputMismatch, match=rf"^vertex {first.vertex} sent by unit 1 to unit {first.dst} differs "
                                             r"from the single-process output at inference 2 \(max abs difference "
                                             r".*\); all units stopped$") as failure:
        measure_placed(cfg)
    assert (failure.value.unit, failure.value.vertex) == (first.dst, first.vertex)
    assert unit_children() == []


def test_a_master_port_taken_meanwhile_is_retried_on_a_fresh_one():
    import socket

    from concurrent_nas.placement.failures import PortTaken

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        _, cfg = two_unit_config("gloo", timeout_s=10.0, master=f"127.0.0.1:{taken.getsockname()[1]}")
        with pytest.raises(PortTaken, match="unit 0 of 2 failed"):
            measure_placed(cfg, port_retries=1)
        assert len(measure_placed(cfg)["latency_s"]) == 3
    assert unit_children() == []


def test_calibration_runs_the_whole_network_alone_and_on_every_unit_between_placed_inferences():
    from concurrent_nas.placement.measure import calibration_s

    plan, cfg = two_unit_config("shm", calibrate=True)
    dag = cfg.dag
    result = measure_placed(cfg)  # unit 0 still checks every placed output against net(image)
    assert len(result["latency_s"]) == 3
    assert set(result["solo_vertex_s"]) == set(dag)
    assert all(len(s) == 3 for s in result["solo_vertex_s"].values())
    for unit in result["units"]:  # every unit ran the whole network in the contended pass
        assert set(unit["contended_vertex_s"]) == set(dag)
        assert all(len(s) == 3 for s in unit["contended_vertex_s"].values())
    # The calibration passes send nothing: every inference still moves exactly the plan's messages.
    assert [sum(u["messages"][i] for u in result["units"]) for i in range(3)] == [len(plan.transfers)] * 3
    solo, shared = calibration_s(result)
    assert set(solo) == set(shared) == set(dag) and min(solo.values()) > 0 and min(shared.values()) > 0
    plain = measure_placed(two_unit_config("shm")[1])
    assert plain["solo_vertex_s"] == {} and plain["units"][1]["contended_vertex_s"] == {}
    assert unit_children() == []


def test_measured_rows_are_kept_when_a_later_measurement_fails(monkeypatch):
    from concurrent_nas.placement import LatencyOptions
    from concurrent_nas.placement.measure import measure_architecture

    dag = cnas.generate("dp", 10, seed=4)
    rows = []
    options = LatencyOptions(units=(2,), placements=("paper",), repeats=2, warmup=0, timeout_s=4.0)
    # Unit 1 exists only in the placed run: the one-unit baselines before it are measured.
    monkeypatch.setenv(FAULT_ENV, "1:die:1")
    with pytest.raises(CnasError, match="unit 1 of 2 died"):
        measure_architecture(0, "dp", dag, SETTINGS, options, emit=rows.append)
    assert [(r["units"], r["placement"], r["threads"]) for r in rows] == [(1, "single", 1), (1, "single", 2)]
    assert unit_children() == []


def test_cnas_latency_writes_measured_and_simulated_rows_and_resumes(tmp_path, capsys):
    run = tmp_path / "dp"
    assert main(["sample", "--gen", "dp", "--n", "2", "--nodes", "10", "--seed", "1", "--out-dir", str(run)]) == 0
    args = ["latency", str(run), "--ids", "1", "--units", "1,2", "--placement", "kahypar,kahypar-time,threads",
            "--repeats", "3", "--warmup", "1", "--simulate-units", "4", *TINY]
    assert main(args) == 0
    table = load_parquet(run / "latency.parquet")
    assert {"arch_id", "generator", "nodes", "units", "placement", "image_size", "median_ms", "p10_ms",
            "p90_ms", "bytes_sent", "messages", "busy_ms", "single_unit_ms", "speedup", "baseline",
            "source"} <= set(table.columns)
    got = {(r.units, r.placement, r.source) for r in table.itertuples()}
    assert sorted(table[table.placement == "single"]["threads"]) == [1, 2]
    assert got == {(1, "single", "measured"), (2, "kahypar", "measured"),
                   (2, "kahypar-time", "measured"), (2, "threads", "measured"),
                   (4, "kahypar", "simulated"), (4, "kahypar-time", "simulated")}
    assert (table["arch_id"] == 1).all() and (table["generator"] == "dp").all()
    placed = table[(table.placement == "kahypar") & (table.units == 2)].iloc[0]
    assert placed["max_abs_diff"] <= 1e-5 and placed["messages"] >= 1 and len(placed["busy_ms"]) == 2
    assert "allclose" not in table.columns  # it was always true: a mismatch fails the run instead
    assert set(placed["assignment"]) == {0, 1} and len(placed["assignment"]) == placed["nodes"] + 2
    assert placed["speedup"] == pytest.approx(placed["single_unit_ms"] / placed["median_ms"])
    assert placed["simulated_ms"] > 0 and placed["sim_error"] == pytest.approx(
        placed["simulated_ms"] / placed["median_ms"] - 1)
    assert (table["p10_ms"] <= table["median_ms"]).all() and (table["median_ms"] <= table["p90_ms"]).all()
    capsys.readouterr()
    before = table.copy()
    assert main(args) == 0  # everything measured already: kept as it is
    pd.testing.assert_frame_equal(load_parquet(run / "latency.parquet"), before)


def test_no_calibrate_measures_without_simulator_error(tmp_path, capsys):
    run = tmp_path / "dp"
    assert main(["sample", "--gen", "dp", "--n", "1", "--nodes", "10", "--out-dir", str(run)]) == 0
    assert main(["latency", str(run), "--units", "2", "--placement", "paper", "--repeats", "2", "--warmup", "0",
                 "--no-calibrate", "--simulate-units", "4", *TINY]) == 0
    table = load_parquet(run / "latency.parquet")
    placed = table[(table.units == 2) & (table.placement == "paper")].iloc[0]
    assert placed["source"] == "measured" and placed["max_abs_diff"] <= 1e-5
    assert pd.isna(placed["sim_error"]) and pd.isna(placed["simulated_ms"])
    simulated = table[table.source == "simulated"]  # more units than the host: still simulated
    assert list(simulated["units"]) == [4] and simulated.iloc[0]["median_ms"] > 0


def test_cnas_latency_rejects_bad_options(tmp_path, capsys):
    run = tmp_path / "dp"
    assert main(["sample", "--gen", "dp", "--n", "1", "--nodes", "10", "--out-dir", str(run)]) == 0
    capsys.readouterr()
    assert main(["latency", str(run), "--placement", "magic"]) == 2
    assert "unknown placement 'magic'" in capsys.readouterr().err
    assert main(["latency", str(run), "--transport", "carrier-pigeon"]) == 2
    assert main(["latency", str(run), "--units", "0,2"]) == 2
    assert main(["latency", str(run), "--master", "127.0.0.1:1", "--unit-rank", "5", "--units", "2"]) == 2
    capsys.readouterr()
    assert main(["latency", str(run), "--repeats", "0"]) == 2
    assert "--repeats must be >= 1, got 0" in capsys.readouterr().err
    assert main(["latency", str(run), "--warmup", "-1"]) == 2
    assert "--warmup must be >= 0, got -1" in capsys.readouterr().err
    assert not (run / "latency.parquet").exists()
    (run / "latency.parquet").write_bytes(b"not parquet")
    assert main(["latency", str(run), "--units", "1"]) == 2
    err = capsys.readouterr().err
    assert "latency.parquet is corrupt" in err and "re-run `cnas latency`" in err and err.count("\n") == 1
    assert (run / "latency.parquet").read_bytes() == b"not parquet"  # left for the user to look at


def test_units_started_separately_with_master_and_rank_cooperate(tmp_path):
    import subprocess
    import sys

    from concurrent_nas.placement.distributed import free_port

    run = tmp_path / "dp"
    assert main(["sample", "--gen", "dp", "--n", "1", "--nodes", "10", "--out-dir", str(run)]) == 0
    master = f"127.0.0.1:{free_port()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "concurrent_nas.cli.main", "latency", str(run), "--units", "2",
             "--placement", "paper", "--repeats", "2", "--warmup", "1", "--master", master,
             "--unit-rank", str(rank), *TINY],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for rank in (0, 1)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "output equals single-process output" in outs[0][0]
    assert outs[1][0] == ""
    table = load_parquet(run / "latency.parquet")  # written by unit 0 only
    assert len(table) == 1 and table.iloc[0]["units"] == 2 and table.iloc[0]["master"] == master
