"""Scaling blocks inside FB's stages (issue #17 item 6): ``dag.graph["scaling"]``.

``fb-randwire`` (``scaling="per-block"``) stages at its merge vertices always and lets the
blocks inside its stages stage as the compile settings say; ``fb`` and ResNet-50 keep
their prescribed staging exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys

import networkx as nx
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import concurrent_nas as cnas
from concurrent_nas import dag as dagmod
from concurrent_nas.compiler import build_network
from concurrent_nas.errors import CnasError
from concurrent_nas.graphjson import read_graph, write_graph
from concurrent_nas.rundir import row_to_dag
from concurrent_nas.sampling import sample_architectures
from concurrent_nas.scoring import architecture_records, dag_record
from concurrent_nas.shapes import CompileSettings, plan_network, shape_pass


def chain(n: int, stage: tuple[int, ...], scaling: str | None) -> nx.DiGraph:
    """Input 0 -> 1 -> ... -> n (output), ``stage=True`` at ``stage``."""
    dag = nx.path_graph(n + 1, create_using=nx.DiGraph)
    for v in stage:
        dag.nodes[v]["stage"] = True
    if scaling is not None:
        dag.graph["scaling"] = scaling
    return dag


def shapes(dag, settings):
    return [(p.out_channels, p.out_size) for p in plan_network(dag, settings) if p.role == "block"]


def assert_module_is_the_shape_pass(dag, settings, table):
    """The built network has the table's parameters, output shapes and FLOPs, exactly."""
    net = build_network(dag, settings, init_seed=0).eval()
    assert sum(p.numel() for p in net.parameters()) == table["params"].sum()
    seen = {}
    for v in net.order:
        net.blocks[str(v)].register_forward_hook(lambda m, i, o, v=v: seen.__setitem__(v, tuple(o.shape[1:])))
    image = torch.randn(1, 3, settings.image_size, settings.image_size, generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(image)
    assert seen == table["out_shape"].to_dict()
    assert counter.get_total_flops() == table["flops"].sum()


def test_per_block_stages_the_marked_vertices_and_greedy_blocks_between_them_up_to_the_cap():
    # 0 stem -> 1 (stage) -> 2 -> 3 -> 4 (stage) -> 5 -> 6 output; stem 8, cap 32, 32 px.
    settings = CompileSettings(stem_channels=8, channel_cap=32, staging="greedy")
    per_block = chain(6, (1, 4), "per-block")
    # 1 is marked: 8 -> 16 channels, 16 px. 2 stages greedily (16 < cap): 32, 8 px.
    # 3 is at the cap: no staging. 4 is marked: stages at the cap, 4 px, channels stay.
    assert shapes(per_block, settings) == [(16, 16), (32, 8), (32, 8), (32, 4), (32, 4)]
    # prescribed (the default when the attribute is missing): only 1 and 4 stage.
    for dag in (chain(6, (1, 4), "prescribed"), chain(6, (1, 4), None)):
        assert shapes(dag, settings) == [(16, 16), (16, 16), (16, 16), (32, 8), (32, 8)]
    # uniform: the blocks between the marked vertices never stage, in either scaling.
    uniform = settings.replace(staging="uniform")
    assert shapes(per_block, uniform) == shapes(chain(6, (1, 4), None), uniform)


def test_blocks_leave_the_image_the_marked_stagings_after_them_need():
    # 0 stem -> 1 -> 2 (stage) -> 3 (stage) -> 4 output at 4 px, greedy, cap far away.
    settings = CompileSettings(image_size=4, stem_channels=8, channel_cap=1024, staging="greedy")
    # Block 1 would halve 4 px to 2, leaving 1 px for two more halvings: it does not stage,
    # and 2 and 3 halve 4 -> 2 -> 1.
    assert shapes(chain(4, (2, 3), "per-block"), settings) == [(8, 4), (16, 2), (32, 1)]
    # At 8 px there is room: block 1 stages (4 px) and 2, 3 follow (2, 1 px).
    assert shapes(chain(4, (2, 3), "per-block"), settings.replace(image_size=8)) == [(16, 4), (32, 2), (64, 1)]
    # Without marked vertices nothing is reserved: 2 px is too small for the third halving.
    with pytest.raises(CnasError, match="too small"):
        plan_network(chain(4, (), "per-block"), settings.replace(image_size=4))


def test_a_small_fb_randwire_stages_where_worked_out_by_hand():
    # 5 vertices per stage: WS(5, k=4) is the complete graph, so in id order every stage is
    # 2 -> 3 -> ... -> 6 with every forward edge; merges 1, 7, 13 (before each stage).
    dag = cnas.generate("fb-randwire", nodes=5, seed=1)
    assert dagmod.stage_vertices(dag) == [1, 7, 13]
    assert sorted(dag.pred[6]) == [2, 3, 4, 5] and sorted(dag.succ[6]) == [7]
    greedy = CompileSettings(staging="greedy")
    # 1: 32 -> 64 ch, 16 px. 2, 3 stage greedily (64 -> 128 -> 256, 8 then 4 px, room for the
    # two merges after them: 4 >= 2**2); 4-6 are at the cap. Merges 7 and 13 pool: 2, 1 px.
    plans = plan_network(dag, greedy)
    assert [p.vertex for p in plans if p.staged] == [1, 2, 3, 7, 13]
    assert shapes(dag, greedy)[:7] == [(64, 16), (128, 8), (256, 4), (256, 4), (256, 4), (256, 4), (256, 2)]
    assert shapes(dag, greedy)[-1] == (256, 1)
    # At 16 px blocks 3-6 would leave 2 px for two merges: they keep 128 ch and 4 px, and
    # merge 7 widens to 256 (2 px), merge 13 only pools (1 px).
    small = [p for p in plan_network(dag, greedy.replace(image_size=16)) if p.staged]
    assert [(p.vertex, p.out_channels, p.out_size) for p in small] == [(1, 64, 8), (2, 128, 4), (7, 256, 2), (13, 256, 1)]


def test_fb_randwire_merges_always_stage_and_its_blocks_follow_the_draw():
    dag = cnas.generate("fb-randwire", nodes=6, seed=2)
    assert dag.graph["scaling"] == "per-block" and dag.graph["params"]["scaling"] == "per-block"
    marked = set(dagmod.stage_vertices(dag))
    settings = CompileSettings()
    plans = {p.vertex: p for p in plan_network(dag, settings)}
    assert all(plans[v].staged for v in marked)
    free = [p for p in plans.values() if p.role == "block" and p.vertex not in marked]
    drawn = {p.vertex for p in free if p.staged}
    # Probability 0: exactly the prescribed network; probability 1: exactly greedy.
    never = {p.vertex for p in plan_network(dag, settings.replace(staging_prob=0.0)) if p.staged}
    always = {p.vertex for p in plan_network(dag, settings.replace(staging_prob=1.0)) if p.staged}
    assert never == marked
    assert always == {p.vertex for p in plan_network(dag, settings.replace(staging="greedy")) if p.staged}
    assert drawn and drawn != always - marked  # blocks drew stagings, not greedy's
    # A block stages only under the cap; no block exceeds it.
    assert all(p.mid_channels < settings.channel_cap for p in free if p.staged)
    assert max(p.out_channels for p in plans.values() if p.role == "block") == settings.channel_cap
    # The draw depends on shapes relative to the image, not on its size, while there is room.
    at_64 = {p.vertex for p in plan_network(dag, settings.replace(image_size=64)) if p.staged}
    assert at_64 == drawn | marked
    # Another staging seed draws other blocks; the merges still stage.
    other = {p.vertex for p in plan_network(dag, settings.replace(staging_seed=1)) if p.staged}
    assert other != drawn | marked and marked <= other


def test_fb_and_resnet50_keep_their_prescribed_staging_in_every_mode():
    for dag in (cnas.generate("fb", 40, seed=0), cnas.generate("resnet50")):
        assert dag.graph.get("scaling", "prescribed") == "prescribed"
        tables = [shape_pass(dag, CompileSettings(staging=m)) for m in ("uniform", "greedy", "probabilistic")]
        assert tables[0].equals(tables[1]) and tables[0].equals(tables[2])
        assert set(tables[0].index[tables[0]["staged"]]) == set(dagmod.stage_vertices(dag))


def test_fb_randwire_is_reproducible_and_prescribed_on_request():
    a, b = (cnas.generate("fb-randwire", nodes=5, seed=7, index=3) for _ in range(2))
    assert dagmod.edge_list(a) == dagmod.edge_list(b) and a.graph == b.graph
    assert shape_pass(a).equals(shape_pass(b))
    old = cnas.generate("fb-randwire", nodes=5, seed=7, index=3, scaling="prescribed")
    assert dagmod.edge_list(old) == dagmod.edge_list(a)  # scaling changes no wiring
    widths = {p.out_channels for p in plan_network(old) if p.role == "block"}
    assert widths == {64, 128, 256}


@pytest.mark.parametrize(
    "settings",
    [CompileSettings(), CompileSettings(staging="greedy", image_size=28, stem_channels=16, channel_cap=128)],
    ids=["probabilistic-32px", "greedy-28px"],
)
def test_built_module_agrees_with_the_shape_pass(settings):
    dag = cnas.generate("fb-randwire", nodes=5, seed=1)
    table = shape_pass(dag, settings)
    assert table["staged"].sum() > len(dagmod.stage_vertices(dag))  # blocks inside stages staged
    assert_module_is_the_shape_pass(dag, settings, table)


def test_scaling_survives_run_tables_records_and_graph_json(tmp_path):
    table = sample_architectures("fb-randwire", 2, nodes=5, seed=5)
    expected = [shape_pass(cnas.generate("fb-randwire", 5, seed=5, index=i)) for i in range(2)]
    for i, row in enumerate(table.itertuples(index=False)):
        assert shape_pass(row_to_dag(row)).equals(expected[i])
    for i, rec in enumerate(architecture_records(table)):
        assert rec["scaling"] == "per-block"
        assert rec == dag_record(i, "fb-randwire", row_to_dag(table.iloc[i]))
    write_graph(cnas.generate("fb-randwire", 5, seed=5), tmp_path / "g.json")
    assert shape_pass(read_graph(tmp_path / "g.json")).equals(expected[0])


def test_unknown_scaling_is_one_line():
    with pytest.raises(CnasError, match="^parameter 'scaling' of generator 'fb-randwire' must be one of "
                                        "prescribed, per-block, got 'random'$"):
        cnas.generate("fb-randwire", 5, scaling="random")
    with pytest.raises(CnasError, match="^unknown scaling 'random' in the DAG's graph attributes; "
                                        "choose one of prescribed, per-block$"):
        plan_network(chain(3, (1,), "random"))


def test_cli_refuses_an_unknown_scaling_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "concurrent_nas.cli.main", "sample", "--gen", "fb-randwire",
                           "--param", "scaling=blocks", "--n", "1", "--out-dir", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "cnas: error: parameter 'scaling' of generator 'fb-randwire' must be one of prescribed, per-block, got 'blocks'"]
    assert not out.exists()
    graph = tmp_path / "g.json"
    data = json.loads(json.dumps(nx.node_link_data(chain(3, (1,), "blocks"), edges="links")))
    graph.write_text(json.dumps(data))
    proc = subprocess.run([sys.executable, "-m", "concurrent_nas.cli.main", "compile", str(graph)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "cnas: error: unknown scaling 'blocks' in the DAG's graph attributes; choose one of prescribed, per-block; "
        "did you mean 'per-block'?"]


# --- property: any DAG with marked vertices, any settings --------------------------------

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402


@st.composite
def per_block_dags(draw):
    n = draw(st.integers(3, 9))
    dag = nx.DiGraph([(u, v) for u in range(n) for v in range(u + 1, n) if draw(st.booleans())])
    dag.add_nodes_from(range(n))
    dag = dagmod.add_input_output(dag)
    for v in draw(st.lists(st.integers(1, n), min_size=1, max_size=3)):
        dag.nodes[v]["stage"] = True
    dag.graph["scaling"] = "per-block"
    stem = draw(st.integers(1, 8))
    return dag, CompileSettings(
        image_size=draw(st.integers(4, 40)), stem_channels=stem, channel_cap=stem * draw(st.integers(1, 9)),
        staging=draw(st.sampled_from(["uniform", "greedy", "probabilistic"])),
        staging_seed=draw(st.integers(0, 3)), channel_multiplier=draw(st.integers(1, 3)))


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(per_block_dags())
def test_any_per_block_dag_compiles_as_the_shape_pass_says(case):
    dag, settings = case
    marked = set(dagmod.stage_vertices(dag))
    try:
        table = shape_pass(dag, settings)
    except CnasError as exc:
        assert "too small" in str(exc)
        with pytest.raises(CnasError, match="too small"):
            build_network(dag, settings)
        return
    assert marked <= set(table.index[table["staged"]])
    assert table["out_channels"].drop(dag.graph["output"]).max() <= settings.channel_cap
    assert_module_is_the_shape_pass(dag, settings, table)
    prescribed = dag.copy()
    prescribed.graph["scaling"] = "prescribed"
    assert set(shape_pass(prescribed, settings).query("staged").index) == marked
