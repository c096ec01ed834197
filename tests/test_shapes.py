"""The shape pass: conventions, staging modes, scaling blocks, errors, speed path."""

from __future__ import annotations

import subprocess
import sys

import networkx as nx
import numpy as np
import pytest

import concurrent_nas as cn
from concurrent_nas.errors import CnasError
from concurrent_nas.shapes import CompileSettings, count_params, plan_network, shape_pass, totals, vertex_costs

RANDOM_GENERATORS = ["er", "ba", "ws", "dp"]
ALL_GENERATORS = RANDOM_GENERATORS + ["fb", "chain", "resnet50"]


def _dag(edges):
    dag = nx.DiGraph(edges)
    dag.graph.update(input=min(dag), output=max(dag))
    return dag


def test_importing_shapes_does_not_import_torch():
    code = "import sys, concurrent_nas.shapes, concurrent_nas; concurrent_nas.shape_pass; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_parameter_table_is_a_torch_free_library_call(small_dp_run):
    # cnas params is one call of concurrent_nas.parameters; a notebook can make it
    # without torch.
    code = (
        "import sys; from concurrent_nas.parameters import parameter_table, summarize; "
        f"t = parameter_table([{str(small_dp_run)!r}], ['greedy']); "
        "print(len(t), summarize(t)['count'].tolist(), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["12", "[12]", "False"]


def test_chain_costs_follow_the_stated_formulas():
    s = CompileSettings(image_size=8, in_channels=3, stem_channels=4, channel_cap=4, staging="uniform", num_classes=5)
    table = shape_pass(_dag([(0, 1), (1, 2)]), s)
    hw = 8 * 8
    stem = 3 * 3 * 3 * 4 + 2 * 4  # 3x3 conv without bias + batch norm weight and bias
    block = 1 + 3 * 3 * 4 + 4 * 4 + 2 * 4  # merge weight, depthwise, pointwise, batch norm
    head = 1 + 4 * 5 + 5  # merge weight, linear with bias
    assert table["params"].tolist() == [stem, block, head]
    assert table["flops"].tolist() == [2 * 27 * 4 * hw, 2 * hw * (9 * 4 + 4 * 4), 2 * 4 * 5]
    assert table["out_bytes"].tolist() == [4 * hw * 4, 4 * hw * 4, 5 * 4]
    assert table.loc[2, "out_shape"] == (5,)
    assert table.loc[0, "in_shapes"] == [(3, 8, 8)]


def test_scaling_blocks_pool_to_smallest_and_widen_to_largest():
    # 1 stages (forced), 2 does not: vertex 3 merges (64, 16) and (32, 32).
    dag = _dag([(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)])
    dag.nodes[1]["stage"] = True
    table = shape_pass(dag, CompileSettings(staging="greedy"))
    row = table.loc[3]
    assert row["in_shapes"] == [(64, 16, 16), (32, 32, 32)]
    assert row["scaling_blocks"] == ["2: maxpool 32->16, conv1x1 32->64"]
    assert (row["out_channels"], row["out_size"], row["staged"]) == (64, 16, False)
    # the 1x1 conv (32*64) is paid at the pooled size 16x16
    plain = 2 + 9 * 64 + 64 * 64 + 2 * 64
    assert row["params"] == plain + 32 * 64
    assert row["flops"] == 2 * 16 * 16 * (32 * 64 + 9 * 64 + 64 * 64)


@pytest.mark.parametrize("gen", ALL_GENERATORS)
def test_every_block_sees_its_predecessors_outputs(gen):
    dag = cn.generate(gen, nodes=24, seed=3)
    table = shape_pass(dag)
    assert list(table.index) == cn.dag.topological_order(dag)
    for v in table.index[1:]:
        preds = sorted(dag.predecessors(v))
        assert table.loc[v, "preds"] == preds
        assert table.loc[v, "in_shapes"] == [table.loc[u, "out_shape"] for u in preds]
        c_in = max(s[0] for s in table.loc[v, "in_shapes"])
        assert table.loc[v, "out_channels"] <= CompileSettings().channel_cap or v == dag.graph["output"]
        if table.loc[v, "staged"]:
            assert table.loc[v, "out_size"] == min(s[1] for s in table.loc[v, "in_shapes"]) // 2
            assert table.loc[v, "out_channels"] == min(2 * c_in, 256)


@pytest.mark.parametrize("gen", RANDOM_GENERATORS)
def test_greedy_stages_exactly_while_under_the_cap_and_uniform_never(gen):
    dag = cn.generate(gen, nodes=40, seed=1)
    greedy = shape_pass(dag, CompileSettings(staging="greedy"))
    blocks = greedy[greedy["role"] == "block"]
    under = blocks["in_shapes"].map(lambda s: max(c for c, *_ in s) < 256)
    assert (blocks["staged"] == under).all()
    uniform = shape_pass(dag, CompileSettings(staging="uniform"))
    assert not uniform["staged"].any()
    assert set(uniform.loc[uniform["role"] == "block", "out_channels"]) == {32}


def test_probabilistic_staging_is_a_fixed_fair_coin_per_vertex():
    settings = CompileSettings(staging="probabilistic")
    drawn, staged = 0, 0
    for i in range(40):
        table = shape_pass(cn.generate("dp", nodes=40, seed=0, index=i), settings)
        blocks = table[table["role"] == "block"]
        under = blocks["in_shapes"].map(lambda s: max(c for c, *_ in s) < 256)
        assert not blocks.loc[~under, "staged"].any()
        drawn += int(under.sum())
        staged += int(blocks.loc[under, "staged"].sum())
    assert 0.4 < staged / drawn < 0.6
    dag = cn.generate("dp", nodes=40, seed=0, index=0)
    assert shape_pass(dag, settings).equals(shape_pass(dag, settings))
    other = shape_pass(dag, settings.replace(staging_seed=1))
    assert not other["staged"].equals(shape_pass(dag, settings)["staged"])


@pytest.mark.parametrize("gen", RANDOM_GENERATORS)
def test_probability_zero_is_uniform_and_one_is_greedy(gen):
    dag = cn.generate(gen, nodes=30, seed=2)
    p0 = shape_pass(dag, CompileSettings(staging="probabilistic", staging_prob=0.0))
    p1 = shape_pass(dag, CompileSettings(staging="probabilistic", staging_prob=1.0))
    assert p0.equals(shape_pass(dag, CompileSettings(staging="uniform")))
    assert p1.equals(shape_pass(dag, CompileSettings(staging="greedy")))


@pytest.mark.parametrize("gen", ["fb", "resnet50"])
@pytest.mark.parametrize("mode", ["uniform", "greedy", "probabilistic"])
def test_prescribed_stage_vertices_stage_in_every_mode_and_alone(gen, mode):
    dag = cn.generate(gen, nodes=40, seed=0)
    table = shape_pass(dag, CompileSettings(staging=mode))
    prescribed = {v for v, s in dag.nodes(data="stage") if s}
    assert prescribed and set(table.index[table["staged"]]) == prescribed


def test_vertex_costs_and_totals_match_the_table():
    dag = cn.generate("ba", nodes=40, seed=5)
    settings = CompileSettings(bytes_per_element=2, image_size=64)
    table = shape_pass(dag, settings)
    flops, out_bytes = vertex_costs(dag, settings)
    assert list(flops) == list(table.index)
    assert flops == table["flops"].to_dict()
    assert out_bytes == table["out_bytes"].to_dict()
    sizes = table["out_shape"].map(lambda s: int(np.prod(s)) * 2)
    assert out_bytes == sizes.to_dict()
    assert count_params(dag, settings) == table["params"].sum()
    assert totals(dag, settings)["flops"] == table["flops"].sum()


def test_larger_images_cost_more_flops_but_not_more_params():
    dag = cn.generate("dp", nodes=40, seed=0)
    small, large = totals(dag, CompileSettings(image_size=32)), totals(dag, CompileSettings(image_size=224))
    assert small["params"] == large["params"]
    assert large["flops"] > 40 * small["flops"]


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"staging": "lazy"}, "unknown staging mode 'lazy'"),
        ({"channel_cap": 16}, "channel_cap 16 is below stem_channels 32"),
        ({"staging_prob": 1.5}, "staging_prob must lie in [0, 1]"),
        ({"image_size": 0}, "'image_size' must be a positive integer"),
        ({"num_classes": 2.5}, "'num_classes' must be a positive integer"),
        ({"merge": "mean"}, "unknown merge 'mean'; choose one of sigmoid-inputs, sigmoid-weights, sum"),
    ],
)
def test_bad_settings_are_one_line_errors(changes, words):
    with pytest.raises(CnasError, match=words.replace("[", r"\[").replace("]", r"\]")) as info:
        CompileSettings(**changes)
    assert "\n" not in str(info.value)


def test_bad_graphs_are_one_line_errors():
    cyclic = nx.DiGraph([(0, 1), (1, 2), (2, 1), (2, 3)])
    with pytest.raises(CnasError, match="cycle"):
        shape_pass(cyclic)
    two_sources = nx.DiGraph([(0, 2), (1, 2), (2, 3)])
    with pytest.raises(CnasError, match="2 source vertices"):
        vertex_costs(two_sources)
    with pytest.raises(CnasError, match="CompileSettings"):
        shape_pass(_dag([(0, 1)]), {"staging": "greedy"})


def test_image_too_small_for_requested_downsamplings():
    dag = cn.generate("chain", nodes=10)
    # greedy from 32 to the 256 cap halves three times: 8 px is enough, 4 px is not
    assert shape_pass(dag, CompileSettings(staging="greedy", image_size=8))["out_size"].min() == 1
    with pytest.raises(CnasError, match="image_size 4 is too small.*needs image_size >= 8"):
        shape_pass(dag, CompileSettings(staging="greedy", image_size=4))
    assert len(shape_pass(dag, CompileSettings(staging="uniform", image_size=1))) == 12


def test_staging_decision_depends_on_the_vertex_and_its_inputs_only():
    # Adding an unrelated branch elsewhere must not change the decisions on the chain.
    chain = _dag([(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 99)])
    wider = chain.copy()
    wider.add_edges_from([(0, 50), (50, 99)])
    a = shape_pass(chain, CompileSettings(staging_seed=11))
    b = shape_pass(wider, CompileSettings(staging_seed=11))
    assert a.loc[[1, 2, 3, 4, 5], "staged"].equals(b.loc[[1, 2, 3, 4, 5], "staged"])
