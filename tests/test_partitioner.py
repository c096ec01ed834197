"""--partitioner kahypar|mtkahypar: the same hypergraph and metrics from either library."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import concurrent_nas as cnas
from concurrent_nas.cli.main import main
from concurrent_nas.errors import CnasError
from concurrent_nas.scoring import ScoreConfig, build_hypergraph, score_architecture
from concurrent_nas.scoring.metrics import communication, part_weights
from concurrent_nas.scoring.partition import (
    KahyparInput, block_limits, check_partitioner, mtkahypar_parts, partition_hypergraph,
)


@pytest.fixture(scope="module")
def hypergraph():
    return build_hypergraph(cnas.generate("dp", nodes=30, seed=2))


@pytest.mark.parametrize("units,eps", [(2, 0.03), (4, 0.1), (8, 0.3)])
def test_mtkahypar_is_deterministic_and_within_the_bound(hypergraph, units, eps):
    first = partition_hypergraph(hypergraph, units, eps, seed=5, partitioner="mtkahypar")
    assert partition_hypergraph(hypergraph, units, eps, seed=5, partitioner="mtkahypar") == first
    assert len(first) == hypergraph.num_vertices and set(first) <= set(range(units))
    weights = KahyparInput.of(hypergraph).vertex_weights
    limit = block_limits(weights, units, eps)[0]
    assert max(part_weights(weights, first, units)) <= limit


def test_one_unit_and_bad_preset_need_no_library(hypergraph):
    assert mtkahypar_parts(hypergraph, 1, 0.1) == [0] * hypergraph.num_vertices
    with pytest.raises(CnasError, match="preset must be one of fast, quality"):
        mtkahypar_parts(hypergraph, 2, 0.1, preset="slow")


def test_scores_use_the_same_metrics_whichever_library(hypergraph):
    dag = cnas.generate("dp", nodes=30, seed=2)
    frames = {p: score_architecture(dag, units=[4], eps=[0.1, 0.3], partitioner=p) for p in ("kahypar", "mtkahypar")}
    for frame in frames.values():
        for row in frame.itertuples():
            # Lambda of the stored partition, recomputed from the one hypergraph both were given.
            assert row.comm_bytes == communication(hypergraph.hyperedges, hypergraph.costs, row.parts)
    assert list(frames["kahypar"].columns) == list(frames["mtkahypar"].columns)


def test_config_checks_the_partitioner_and_fingerprints_it_only_when_not_the_default():
    assert "partitioner" not in ScoreConfig().describe()  # scores made before the option still match
    assert ScoreConfig(partitioner="mtkahypar").describe()["partitioner"] == "mtkahypar"
    with pytest.raises(CnasError, match="--partitioner must be one of kahypar, mtkahypar, got 'metis'"):
        ScoreConfig(partitioner="metis")


def test_missing_mtkahypar_is_one_line():
    # The interpreter refuses `import mtkahypar` when sys.modules holds None for it, as
    # for a package that is not installed.
    code = ("import sys; sys.modules['mtkahypar'] = None\n"
            "from concurrent_nas.scoring.partition import check_partitioner\n"
            "from concurrent_nas.errors import CnasError\n"
            "try:\n    check_partitioner('mtkahypar')\nexcept CnasError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == ("--partitioner mtkahypar needs the mtkahypar package: "
                           "pip install 'concurrent-nas[mtkahypar]'")
    assert check_partitioner("kahypar") == "kahypar"


def test_cli_scores_with_mtkahypar_and_records_it(tmp_path):
    run = tmp_path / "run"
    assert main(["sample", "--gen", "dp", "--n", "3", "--nodes", "16", "--out-dir", str(run)]) == 0
    assert main(["score", str(run), "--units", "4", "--eps", "0.1", "--partitioner", "mtkahypar", "--processes", "1"]) == 0
    settings = json.loads((run / "scores.json").read_text())["settings"]
    assert settings["partitioner"] == "mtkahypar"
    scores = cnas.Run(run).scores
    for row in scores.itertuples():
        dag = cnas.Run(run).dag(row.arch_id)
        again = score_architecture(dag, units=[4], eps=[0.1], partitioner="mtkahypar")
        assert list(again["parts"].iloc[0]) == list(row.parts)
