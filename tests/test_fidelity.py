"""Paper-fidelity options (issue #17): the paper's U_c, RandWire's FB, the figures' labels."""

from __future__ import annotations

import subprocess
import sys

import pytest

import concurrent_nas as cnas
from concurrent_nas.analysis.figures import entropy_figure, partition_figure, whisker_text
from concurrent_nas.errors import CnasError
from concurrent_nas.graphjson import write_graph
from concurrent_nas.scoring import (
    CommHypergraph,
    ScoreConfig,
    build_hypergraph,
    score_architecture,
    smallest_edge_cost,
)
from concurrent_nas.shapes import CompileSettings, plan_network

GREEDY = CompileSettings(staging="greedy")


def test_paper_uc_is_the_cheapest_edge_and_rescales_cs_by_its_ratio():
    # A chain of 4 blocks staging greedily from the 32x32x32 stem: outputs of
    # 64x16x16, 128x8x8, 256x4x4 (the cap) and 256x4x4 float32 values; the cheapest
    # edge is 256*4*4*4 = 16384 B, the global U_c the stem map 32*32*32*4 = 131072 B.
    dag = cnas.generate("chain", nodes=4)
    assert smallest_edge_cost(build_hypergraph(dag, settings=GREEDY)) == 16384
    glob = score_architecture(dag, units=[2], eps=[0.1], settings=GREEDY)
    paper = score_architecture(dag, units=[2], eps=[0.1], settings=GREEDY, uc="generator")
    assert list(glob["unit_bytes"]) == [131072] and list(paper["unit_bytes"]) == [16384]
    assert paper["comm_bytes"].tolist() == glob["comm_bytes"].tolist()
    assert paper["comm_norm"].iloc[0] == pytest.approx(glob["comm_norm"].iloc[0] * 8)
    # CS carries Lambda' ** (1.5 / 3): a U_c 8x smaller multiplies it by sqrt(8).
    assert paper["cs"].iloc[0] == pytest.approx(glob["cs"].iloc[0] * 8**0.5)


def test_smallest_edge_of_a_graph_without_edges_is_one():
    empty = CommHypergraph(vertices=(0,), weights=(5,), hyperedges=(), costs=(), sources=(), kind="flops")
    assert smallest_edge_cost(empty) == 1


def test_uc_enters_the_fingerprint_and_bad_values_are_one_line():
    assert ScoreConfig().describe()["uc"] == "global"
    paper = ScoreConfig(uc="generator").describe()
    assert paper["uc"] == "generator" and paper["unit_bytes"] is None
    assert paper != ScoreConfig().describe()
    with pytest.raises(CnasError, match=r"^--uc must be one of global, generator, got 'edge'$"):
        ScoreConfig(uc="edge")
    with pytest.raises(CnasError, match=r"^--unit-bytes sets a global U_c"):
        ScoreConfig(uc="generator", unit_bytes=4096)


def test_cli_refuses_an_unknown_uc_with_one_line_and_writes_nothing(tmp_path):
    graph = tmp_path / "g.json"
    write_graph(cnas.generate("dp", nodes=8), graph)
    out = tmp_path / "scores.parquet"
    proc = subprocess.run([sys.executable, "-m", "concurrent_nas.cli.main", "score", str(graph), "--uc", "edge",
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["cnas: error: --uc must be one of global, generator, got 'edge'"]
    assert not out.exists()


def test_fb_randwire_has_n_vertices_per_stage_at_doubling_widths():
    n = 5
    # scaling="prescribed": only the merges stage (tests/test_fb_scaling.py: the default)
    dag = cnas.generate("fb-randwire", nodes=n, seed=3, scaling="prescribed")
    assert cnas.dag.block_count(dag) == 3 * (n + 1)
    merges = sorted(v for v, stage in dag.nodes(data="stage") if stage)
    assert merges == [1, n + 2, 2 * n + 3]  # before stage 0, 1 and 2
    widths = {p.vertex: p.out_channels for p in plan_network(dag, CompileSettings()) if p.role == "block"}
    # The stem's 32 channels double at every merge: stages at 64, 128, 256.
    for stage, first in enumerate(merges):
        members = [v for v in range(first, first + n + 1)]
        assert {widths[v] for v in members} == {64 * 2**stage}
    assert dag.graph["params"]["orientation"] == "index"


def test_box_plots_and_partition_drawing_say_what_they_show():
    assert whisker_text((1, 99)) == "box 25-75 %, line median, whiskers 1-99 %, dots beyond"
    assert whisker_text(1.5) == "box 25-75 %, line median, whiskers last point within 1.5 IQR, dots beyond"
    import pandas as pd

    frame = pd.DataFrame({"generator": ["dp"] * 4, "nodes": [40] * 4, "units": [2, 2, 4, 4],
                          "entropy": [0.9, 1.0, 0.8, 0.95]})
    fig = entropy_figure(frame, title="paper placement")
    assert fig._suptitle.get_text() == "paper placement\nbox 25-75 %, line median, whiskers 1-99 %, dots beyond"
    dag = cnas.generate("chain", nodes=4)
    fig = partition_figure(dag, {2: {v: v % 2 for v in dag}}, "chain")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "edge cut between units\n(a transfer)" in labels and "edge within a unit" in labels
