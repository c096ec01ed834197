"""`cnas latency` over a run: the partition it takes from `cnas score`, and resuming a partial run."""

from __future__ import annotations

import pandas as pd
import pytest

from concurrent_nas.cli.main import main
from concurrent_nas.errors import CnasError
from concurrent_nas.placement import LatencyOptions, latency_run, make_assignment, normalize_assignment
from concurrent_nas.placement import measure
from concurrent_nas.rundir import Run, load_parquet
from concurrent_nas.shapes import CompileSettings

SETTINGS = CompileSettings(image_size=16, stem_channels=8, channel_cap=16)
TINY = ["--image-size", "16", "--stem-channels", "8", "--channel-cap", "16"]


def test_kahypar_placement_is_the_lowest_cs_partition_of_the_scored_run(tmp_path, capsys):
    run = tmp_path / "dp"
    assert main(["sample", "--gen", "dp", "--n", "2", "--nodes", "10", "--seed", "1", "--out-dir", str(run)]) == 0
    # Another KaHyPar seed than the latency run's own (0), so that using the scores shows.
    assert main(["score", str(run), "--units", "2", "--partition-seed", "5"]) == 0
    scores = load_parquet(run / "scores.parquet")
    mine = scores[(scores.arch_id == 1) & (scores.units == 2)]
    lowest = mine.loc[mine["cs"].idxmin()]
    assert (mine["cs"] > lowest["cs"]).sum() == len(mine) - 1  # one lowest option, several eps
    dag = Run(run).dag(1)
    vertices = sorted(dag)
    scored = normalize_assignment(dag, dict(zip(vertices, (int(p) for p in lowest["parts"]))), 2)
    own = normalize_assignment(dag, make_assignment(dag, 2, "kahypar", settings=SETTINGS, seed=0), 2)
    assert scored != own  # KaHyPar run by the latency command itself would place it otherwise

    assert main(["latency", str(run), "--ids", "1", "--units", "2", "--placement", "kahypar", "--repeats", "2",
                 "--warmup", "0", "--no-calibrate", *TINY]) == 0
    table = load_parquet(run / "latency.parquet")
    placed = table[(table.placement == "kahypar") & (table.units == 2)]
    assert len(placed) == 1
    assert list(placed.iloc[0]["assignment"]) == [scored[v] for v in vertices]


def test_a_partial_run_resumes_measuring_only_the_missing_rows_with_the_same_baselines(tmp_path, monkeypatch):
    run = tmp_path / "dp"
    assert main(["sample", "--gen", "dp", "--n", "1", "--nodes", "10", "--out-dir", str(run)]) == 0
    options = LatencyOptions(units=(1, 2), placements=("paper", "kahypar"), repeats=2, warmup=0, calibrate=False)
    measured = []
    real = measure.measure_placed

    def stop_after(n):
        def measure_placed(cfg):
            if len(measured) == n:  # the seam: the run stops here, as if killed
                raise CnasError("stopped by the test")
            measured.append((cfg.mode, cfg.plan.units, cfg.threads))
            return real(cfg)
        return measure_placed

    # Run 1: one unit (1 and 2 threads), paper on 2 units, then stops before kahypar.
    monkeypatch.setattr(measure, "measure_placed", stop_after(3))
    with pytest.raises(CnasError, match="stopped by the test"):
        latency_run(run, options, SETTINGS)
    first = load_parquet(run / "latency.parquet")
    assert [(r.units, r.placement, r.threads) for r in first.itertuples()] == [
        (1, "single", 1), (1, "single", 2), (2, "paper", 1)]

    # Run 2 measures only the kahypar row, and compares it with run 1's baselines.
    measured.clear()
    monkeypatch.setattr(measure, "measure_placed", stop_after(99))
    result = latency_run(run, options, SETTINGS)
    assert measured == [("placed", 2, 1)]
    table = load_parquet(run / "latency.parquet")
    pd.testing.assert_frame_equal(table.iloc[:3][first.columns].reset_index(drop=True), first)
    new = table.iloc[3]
    assert (new["units"], new["placement"]) == (2, "kahypar") and len(table) == len(result.table) == 4
    one_thread = first[(first.placement == "single") & (first.threads == 1)].iloc[0]
    two_threads = first[(first.placement == "single") & (first.threads == 2)].iloc[0]
    assert new["single_unit_ms"] == one_thread["median_ms"] and new["same_cores_ms"] == two_threads["median_ms"]
    assert new["speedup"] == pytest.approx(one_thread["median_ms"] / new["median_ms"])
