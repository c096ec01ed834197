"""Concurrency score: metrics on the paper's worked examples, hypergraph, partitions."""

from __future__ import annotations

import math

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import concurrent_nas as cnas
from concurrent_nas import dag as dagmod
from concurrent_nas.errors import CnasError
from concurrent_nas.scoring import (
    build_hypergraph,
    communication,
    concurrency_score,
    data_unit,
    integer_weights,
    load_variability,
    longest_path_ratio,
    normalized_entropy,
    part_weights,
    partition_dag,
    partition_hypergraph,
    score_architecture,
    to_hypernetx,
)
from concurrent_nas.scoring.hypergraph import hypergraph_from_costs
from concurrent_nas.scoring.partition import KahyparInput, block_limits, kahypar_parts, rebalance
from concurrent_nas.shapes import CompileSettings, vertex_costs


def chain(n: int) -> nx.DiGraph:
    return dagmod.from_edge_list([(i, i + 1) for i in range(n - 1)])


def diamond_with_tail() -> nx.DiGraph:
    # 0 -> {1, 2, 3} -> 4 -> 5: one wide level, then a short chain.
    return dagmod.from_edge_list([(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 4), (4, 5)])


# -- eta: the worked examples of the slides (004) -----------------------------------


@pytest.mark.parametrize(
    "longest, vertices, expected",
    [(6, 9, 2.0), (5, 15, 1.0), (7, 15, 1.4), (7, 7, 3.0)],
)
def test_eta_matches_the_papers_worked_examples_for_three_units(longest, vertices, expected):
    assert longest_path_ratio(longest, vertices, 3) == pytest.approx(expected)


def test_eta_of_a_chain_of_seven_on_three_units_is_three():
    df = score_architecture(chain(7), units=[3], eps=[0.1], costs="uniform")
    assert df["eta"].iloc[0] == pytest.approx(3.0)
    assert df["longest_path"].iloc[0] == 7


def test_eta_uses_the_longest_path_in_vertices():
    df = score_architecture(diamond_with_tail(), units=[2], eps=[0.5], costs="uniform")
    # longest path 0-1-4-5 has 4 vertices, |V| = 6: eta = 4 / (6 / 2)
    assert df["eta"].iloc[0] == pytest.approx(4 / 3)


# -- Lambda on a hand-built hypergraph ----------------------------------------------


def test_lambda_counts_cost_times_connectivity_minus_one():
    hyperedges = [(0, 1, 2), (2, 3), (3, 4, 5), (1, 5)]
    costs = [10, 7, 3, 100]
    parts = [0, 0, 1, 1, 2, 0]
    # e0 spans {0, 1} -> 10; e1 {1} -> 0; e2 {1, 2, 0} -> 3 * 2; e3 {0} -> 0
    assert communication(hyperedges, costs, parts) == 10 + 6


def test_hypergraph_has_one_hyperedge_per_vertex_with_successors():
    dag = diamond_with_tail()
    flops = {v: 10 * (v + 1) for v in dag}
    out_bytes = {v: 1000 + v for v in dag}
    hg = hypergraph_from_costs(dag, flops, out_bytes)
    assert hg.vertices == (0, 1, 2, 3, 4, 5)
    assert hg.sources == (0, 1, 2, 3, 4)  # the output vertex 5 feeds nothing
    assert hg.hyperedges[0] == (0, 1, 2, 3)
    assert hg.hyperedges[1] == (1, 4)
    assert hg.costs == (1000, 1001, 1002, 1003, 1004)
    assert hg.weights == (10, 20, 30, 40, 50, 60)


def test_lambda_of_a_dag_partition_counts_a_feature_map_once_per_remote_unit():
    # 0 feeds 1, 2, 3; with 0 alone on part 0 and 1, 2 on part 1, 3 on part 2 its map
    # is sent to two units, however many consumers sit on part 1.
    dag = diamond_with_tail()
    hg = hypergraph_from_costs(dag, {v: 1 for v in dag}, {v: 8 for v in dag})
    parts = [0, 1, 1, 2, 2, 2]
    # e0 {0,1,1,2} -> 2 * 8; e1 (1,4) -> 8; e2 (2,4) -> 8; e3 (3,4) -> 0; e4 (4,5) -> 0
    assert communication(hg.hyperedges, hg.costs, parts) == 16 + 8 + 8


# -- CS, delta_w, entropy -----------------------------------------------------------


def test_concurrency_score_is_the_weighted_geometric_formula():
    assert concurrency_score(2.0, 4.0, 1.5) == pytest.approx((2.0 * 4.0**1.5 * 1.5) ** (1 / 3))
    assert concurrency_score(2.0, 4.0, 1.5, a=2, b=1, c=0) == pytest.approx((4.0 * 4.0) ** (1 / 3))


def test_load_variability_is_max_over_mean_with_empty_parts_counted():
    assert load_variability([5, 5, 5, 5]) == 1.0
    assert load_variability([6, 2, 4, 0]) == pytest.approx(6 / 3)


def test_entropy_is_one_for_equal_parts_and_lower_otherwise():
    assert normalized_entropy([7, 7, 7]) == pytest.approx(1.0)
    assert normalized_entropy([10, 0, 0, 0]) == pytest.approx(0.0)
    assert 0 < normalized_entropy([5, 3, 1]) < 1


def test_part_weights_sum_per_part():
    assert part_weights([1, 2, 3, 4], [0, 1, 0, 2], 4) == [4, 2, 4, 0]


# -- partitions ---------------------------------------------------------------------


def test_one_unit_needs_no_communication():
    df = score_architecture(cnas.generate("dp", 30, seed=1), units=[1], eps=[0.03, 0.3])
    assert (df["comm_bytes"] == 0).all() and (df["cs"] == 0).all()
    assert (df["delta_w"] == 1.0).all() and (df["entropy"] == 1.0).all()
    assert all(set(p) == {0} for p in df["parts"])


@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from(["er", "ba", "ws", "dp", "fb"]),
    seed=st.integers(0, 10_000),
    units=st.integers(2, 10),
    eps=st.sampled_from([0.03, 0.1, 0.3, 0.5]),
)
def test_partitions_are_disjoint_and_cover_every_vertex(name, seed, units, eps):
    dag = cnas.generate(name, 30, seed=seed)
    parts = partition_dag(dag, units, eps, costs="uniform")
    assert sorted(parts) == sorted(dag)  # every vertex exactly once (dict keys)
    assert all(0 <= p < units for p in parts.values())
    df = score_architecture(dag, units=[units], eps=[eps], costs="uniform")
    row = df.iloc[0]
    assert len(row["parts"]) == dag.number_of_nodes()
    assert sum(row["part_weights"]) == dag.number_of_nodes()
    assert row["empty_parts"] == units - len(set(row["parts"]))


def test_metrics_of_a_scored_row_agree_with_its_partition():
    dag = cnas.generate("ws", 40, seed=3)
    flops, out_bytes = vertex_costs(dag, CompileSettings())
    df = score_architecture(dag, units=[6], eps=[0.1])
    row = df.iloc[0]
    vertices = sorted(dag)
    parts = dict(zip(vertices, row["parts"]))
    weights = [0] * 6
    for v in vertices:
        weights[parts[v]] += flops[v]
    assert list(row["part_weights"]) == weights
    comm = sum(out_bytes[v] * (len({parts[v]} | {parts[s] for s in dag.successors(v)}) - 1) for v in vertices)
    assert row["comm_bytes"] == comm
    assert row["unit_bytes"] == 32 * 32 * 32 * 4
    assert row["comm_norm"] == pytest.approx(comm / (row["unit_bytes"] * 6))
    assert row["delta_w"] == pytest.approx(max(weights) / (sum(weights) / 6))
    assert row["cs"] == pytest.approx(concurrency_score(row["delta_w"], row["comm_norm"], row["eta"]))


def test_best_is_the_lowest_cs_per_unit_count():
    df = score_architecture(cnas.generate("dp", 40, seed=5), units=[4, 8], eps=[0.03, 0.2, 0.5])
    for _, group in df.groupby("units"):
        assert group["best"].sum() == 1
        assert group.loc[group["best"], "cs"].iloc[0] == group["cs"].min()


def test_same_seed_gives_the_same_scores():
    dag = cnas.generate("ba", 40, seed=11)
    a = score_architecture(dag, units=[4, 10], eps=[0.03, 0.5], seed=3)
    b = score_architecture(dag, units=[4, 10], eps=[0.03, 0.5], seed=3)
    assert a.equals(b)


def test_flops_costs_come_from_the_shape_pass():
    dag = cnas.generate("dp", 20, seed=0)
    hg = build_hypergraph(dag, "flops", CompileSettings(staging="uniform"))
    flops, out_bytes = vertex_costs(dag, CompileSettings(staging="uniform"))
    assert hg.weights == tuple(flops[v] for v in sorted(dag))
    assert set(hg.costs) == {out_bytes[v] for v in hg.sources}
    assert data_unit("flops", CompileSettings(image_size=64, stem_channels=16)) == 64 * 64 * 16 * 4
    assert data_unit("uniform") == 1


def test_integer_weights_keep_ratios_and_fit_kahypar():
    assert integer_weights([4096, 8192, 12288]) == [1, 2, 3]
    big = integer_weights([3 * 10**9 + 1, 10**9, 7])
    assert sum(big) <= 2**24 + 3 and min(big) >= 1
    assert big[0] / big[1] == pytest.approx(3.0, rel=1e-5)


def test_to_hypernetx_exposes_vertices_hyperedges_and_weights():
    dag = diamond_with_tail()
    H = to_hypernetx(dag, costs="uniform")
    assert set(H.nodes) == set(dag)
    assert set(H.edges) == {"e0", "e1", "e2", "e3", "e4"}
    assert set(H.edges["e0"]) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": [0]}, "units must be a positive integer"),
        ({"units": [99]}, "cannot split"),
        ({"eps": [0]}, "eps must be a positive number"),
        ({"eps": [0.1, 0.1]}, "repeated"),
        ({"costs": "bytes"}, "costs must be one of"),
        ({"preset": "turbo"}, "preset must be one of"),
    ],
)
def test_bad_arguments_raise_one_line_errors(kwargs, message):
    with pytest.raises(CnasError, match=message) as info:
        score_architecture(cnas.generate("dp", 20), **{"costs": "uniform", **kwargs})
    assert "\n" not in str(info.value)


def test_a_hypergraph_without_hyperedges_is_spread_evenly():
    hg = hypergraph_from_costs(_two_isolated(), {0: 1, 1: 1}, {0: 1, 1: 1})
    assert sorted(partition_hypergraph(hg, 2, 0.1)) == [0, 1]


def _two_isolated() -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from([0, 1])
    return g


def test_large_eps_many_units_is_a_valid_partition_even_with_empty_parts():
    # KaHyPar may leave parts empty at large eps and k >= 8; that must stay a legal,
    # fully reported result, not a crash.
    for seed in range(4):
        df = score_architecture(cnas.generate("er", 20, seed=seed), units=[10], eps=[0.5, 0.9])
        for row in df.itertuples():
            assert len(row.part_weights) == 10
            assert row.empty_parts == 10 - len(set(row.parts))
            assert math.isfinite(row.cs)


# -- the eps bound: KaHyPar, then rebalance (docs/scoring.md, "The eps bound") ----------


def test_rebalance_moves_the_vertex_that_adds_the_least_communication():
    # Part 0 weighs 15 > limit 10. Moving vertex 2 joins it to vertex 3 (saves the cut
    # hyperedge of cost 1); moving 0 or 1 would cut the hyperedge of cost 10.
    parts = rebalance([0, 0, 0, 1], [5, 5, 5, 5], [(0, 1), (2, 3)], [10, 1], 2, 10)
    assert parts == [0, 0, 1, 1]


def test_rebalance_swaps_when_every_move_overshoots():
    # Loads 6 and 4, limit 5: moving a 3 or a 2 only turns the imbalance around; swapping
    # a 3 for a 2 gives 5 and 5.
    parts = rebalance([0, 0, 1, 1], [3, 3, 2, 2], [], [], 2, 5)
    assert part_weights([3, 3, 2, 2], parts, 2) == [5, 5]


def test_rebalance_stops_at_the_documented_fallback_where_the_bound_is_out_of_reach():
    # Weights 3, 3, 3, 1 over 2 parts: no split is within floor(1.03 * 5) = 5; the best
    # is 6 (3 + 3 | 3 + 1). The pass reaches it and stops.
    parts = rebalance([0, 0, 0, 1], [3, 3, 3, 1], [], [], 2, 5)
    loads = part_weights([3, 3, 3, 1], parts, 2)
    assert sorted(loads) == [4, 6]


def test_rebalance_leaves_a_partition_within_the_limit_alone():
    assert rebalance([1, 0, 1, 0], [5, 1, 1, 9], [(0, 1, 2, 3)], [7], 2, 10) == [1, 0, 1, 0]


@pytest.mark.parametrize("preset", ["fast", "quality"])
def test_every_partition_keeps_the_eps_bound_or_its_documented_fallback(preset):
    """What partition_hypergraph guarantees, on the measurement of issue 21: DP, ER and
    WS at 40 blocks, 6 architectures each, on 2, 4 and 8 units, eps 0.03 and 0.3.

    L = floor((1 + eps) * ceil(W / k)) of the integer weights KaHyPar is given. Every
    part above L (possible only where moves and swaps cannot reach L; one of these
    instances, DP seed 4 on 8 units at eps 0.03, has no partition within L at all) weighs
    at most the lightest other part plus its own lightest vertex. KaHyPar's own partition
    breaks L on 16 (fast) and 11 (quality) of these 108; rebalanced, on 5 and 6, by at
    most 2.2 % instead of 11 %.
    """
    over = over_kahypar = 0
    for gen in ("dp", "er", "ws"):
        for seed in range(6):
            hg = build_hypergraph(cnas.generate(gen, nodes=40, seed=seed))
            arrays = KahyparInput.of(hg)
            w = arrays.vertex_weights
            for k in (2, 4, 8):
                for eps in (0.03, 0.3):
                    limit = block_limits(w, k, eps)[0]
                    raw = kahypar_parts(hg, k, eps, preset=preset, prepared=arrays)
                    parts = partition_hypergraph(hg, k, eps, preset=preset, prepared=arrays)
                    loads = part_weights(w, parts, k)
                    over_kahypar += max(part_weights(w, raw, k)) > limit
                    over += max(loads) > limit
                    assert max(loads) <= max(max(part_weights(w, raw, k)), limit)  # never worse
                    for p in range(k):
                        if loads[p] > limit:
                            lightest_other = min(loads[q] for q in range(k) if q != p)
                            lightest_vertex = min(w[v] for v in range(len(w)) if parts[v] == p)
                            assert loads[p] <= lightest_other + lightest_vertex, (gen, seed, k, eps)
                            assert loads[p] <= sum(w) // k + max(w)
                            assert eps == 0.03 and loads[p] <= 1.03 * limit  # measured: 2.2 % at most
    assert over < over_kahypar


def test_a_provably_infeasible_bound_ends_at_the_fallback():
    # DP seed 4 on 8 units: an exact bin packing (scipy MILP, docs/scoring.md) needs 11624
    # for the heaviest part, above L = 11455 at eps 0.03, although no vertex weighs over
    # 3144. KaHyPar returns 12720 (+11 %); rebalanced it is within 1 % of the optimum.
    hg = build_hypergraph(cnas.generate("dp", nodes=40, seed=4))
    w = KahyparInput.of(hg).vertex_weights
    assert block_limits(w, 8, 0.03)[0] == 11455 and max(w) == 3144
    loads = part_weights(w, partition_hypergraph(hg, 8, 0.03), 8)
    assert 11624 <= max(loads) <= 1.01 * 11624
