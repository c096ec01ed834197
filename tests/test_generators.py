"""Generators: structural properties over every generator, and per-family statistics."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import concurrent_nas as cnas
from concurrent_nas import dag as dagmod
from concurrent_nas.errors import CnasError
from concurrent_nas.generators import architecture_rng, get_generator, list_generators
from concurrent_nas.generators.classic import barabasi_albert, erdos_renyi, ring_lattice
from concurrent_nas.generators.distance import distance_probability, edge_probability, ring_distance

ALL = list_generators()
RANDOM = list_generators(random_only=True)


def test_registry_lists_every_generator_the_spec_names():
    assert set(ALL) == {"er", "ba", "ws", "dp", "fb", "fb-randwire", "chain", "resnet50"}
    assert set(RANDOM) == {"er", "ba", "ws", "dp", "fb", "fb-randwire"}


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(ALL), nodes=st.integers(20, 70), seed=st.integers(0, 2**32 - 1))
def test_every_generator_builds_a_single_input_single_output_dag(name, nodes, seed):
    dag = cnas.generate(name, nodes, seed=seed)
    assert nx.is_directed_acyclic_graph(dag)
    sources = [v for v in dag if dag.in_degree(v) == 0]
    sinks = [v for v in dag if dag.out_degree(v) == 0]
    assert sources == [dag.graph["input"]] and sinks == [dag.graph["output"]]
    # resnet50 has a fixed size; fb-randwire's nodes are per stage (3 stages, 3 merges).
    expected = {"resnet50": 68, "fb-randwire": 3 * nodes + 3}.get(name, nodes)
    assert dag.number_of_nodes() == expected + 2
    # Every vertex lies on some input -> output path.
    reach_in = nx.descendants(dag, dag.graph["input"]) | {dag.graph["input"]}
    reach_out = nx.ancestors(dag, dag.graph["output"]) | {dag.graph["output"]}
    assert reach_in == reach_out == set(dag)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(RANDOM), seed=st.integers(0, 2**31), index=st.integers(0, 10**6))
def test_same_seed_same_graph_different_seed_different_graph(name, seed, index):
    a = cnas.generate(name, 40, seed=seed, index=index)
    b = cnas.generate(name, 40, seed=seed, index=index)
    assert dagmod.edge_list(a) == dagmod.edge_list(b)
    others = {
        tuple(dagmod.edge_list(cnas.generate(name, 40, seed=seed, index=index + k))) for k in range(1, 4)
    } | {tuple(dagmod.edge_list(cnas.generate(name, 40, seed=seed + 1, index=index)))}
    assert tuple(dagmod.edge_list(a)) not in others


def test_dfs_preorder_orientation_differs_from_low_to_high():
    # Path 0 - 2 - 1: DFS from 0 visits 2 before 1, so {1, 2} is oriented 2 -> 1.
    graph = nx.Graph([(0, 2), (2, 1)])
    assert sorted(dagmod.dfs_orient(graph).edges) == [(0, 2), (2, 1)]
    # Neighbours are visited in ascending id: from 0, 1 comes before 3, and 3 is then
    # reached through 1 - 3 - 2, giving 3 -> 2 although 2 < 3.
    graph = nx.Graph([(0, 1), (0, 3), (1, 3), (3, 2)])
    assert sorted(dagmod.dfs_orient(graph).edges) == [(0, 1), (0, 3), (1, 3), (3, 2)]


def test_index_orientation_points_every_edge_to_the_higher_id():
    graph = nx.Graph([(0, 2), (2, 1), (0, 3), (3, 2)])
    assert sorted(dagmod.orient(graph, "index").edges) == [(0, 2), (0, 3), (1, 2), (2, 3)]
    assert sorted(dagmod.orient(graph, "dfs").edges) == [(0, 2), (0, 3), (2, 1), (2, 3)]
    with pytest.raises(CnasError, match="unknown orientation 'up'; choose one of: dfs, index"):
        dagmod.orient(graph, "up")


@pytest.mark.parametrize("name", ["er", "ba", "ws", "dp", "fb"])
def test_orientation_is_a_parameter_of_every_undirected_generator(name):
    dfs = cnas.generate(name, 30, seed=2)
    index = cnas.generate(name, 30, seed=2, orientation="index")
    assert dfs.graph["params"]["orientation"] == "dfs"
    assert index.graph["params"]["orientation"] == "index"
    if name != "fb":
        # The same undirected graph underneath: only the directions of block edges differ.
        # (FB joins a stage's sources and sinks to its merge vertices, and those change.)
        blocks = lambda d: {frozenset(e) for e in d.edges if 0 not in e and 31 not in e}
        assert blocks(dfs) == blocks(index)
    assert all(u < v for u, v in index.edges)
    with pytest.raises(CnasError, match=f"parameter 'orientation' of generator '{name}' must be one of dfs, index"):
        cnas.generate(name, 30, orientation="random")


def test_index_orientation_makes_er_and_ba_shallower():
    # The finding of issue #17: DFS turns ER and BA into near-chains; id order does not.
    for name in ("er", "ba"):
        dfs = [dagmod.longest_path_vertices(cnas.generate(name, 40, seed=s)) for s in range(5)]
        idx = [dagmod.longest_path_vertices(cnas.generate(name, 40, seed=s, orientation="index")) for s in range(5)]
        assert sorted(idx)[2] < sorted(dfs)[2] - 10


def test_dfs_restarts_at_lowest_unvisited_vertex_per_component():
    graph = nx.Graph([(5, 3), (3, 4), (0, 1)])
    dag = dagmod.dfs_orient(graph)
    assert sorted(dag.edges) == [(0, 1), (3, 4), (3, 5)]
    with_io = dagmod.add_input_output(dag)
    # 5 vertices + input + output, shifted to 1..5 in id order; the input feeds the
    # two component roots (old 0 and 3, now 1 and 3).
    assert with_io.number_of_nodes() == 7
    assert sorted(with_io.successors(0)) == [1, 3]


def test_ba_has_m_times_n_minus_m_edges():
    for seed in range(50):
        for n, m in [(40, 5), (20, 1), (12, 11)]:
            graph = barabasi_albert(n, architecture_rng(seed), m=m)
            assert graph.number_of_edges() == m * (n - m)


def test_ws_lattice_has_degree_k_before_rewiring_and_keeps_edge_count():
    for n, k in [(40, 4), (41, 6), (10, 2)]:
        lattice = ring_lattice(n, k)
        assert {d for _, d in lattice.degree} == {k}
        rewired = get_generator("ws").build(n, architecture_rng(3), k=k, p=0.75)
        assert rewired.number_of_edges() == n * k // 2
        assert not nx.utils.graphs_equal(lattice, rewired)


def test_er_mean_edge_count_matches_p_times_pairs():
    n, p, samples = 40, 0.2, 2000
    counts = [erdos_renyi(n, architecture_rng(0, i), p=p).number_of_edges() for i in range(samples)]
    pairs = n * (n - 1) / 2
    std_of_mean = np.sqrt(pairs * p * (1 - p) / samples)
    assert abs(np.mean(counts) - p * pairs) < 4 * std_of_mean  # 4 sigma, about 1.4 edges


@pytest.mark.parametrize("p,alpha,beta", [(0.5, 1.0, 1.0), (0.8, 0.6, 2.0)])
def test_dp_edge_frequency_falls_with_ring_distance_as_the_formula(p, alpha, beta):
    n, samples = 40, 1500
    rows, cols, d = ring_distance(n)
    hits = np.zeros(rows.size)
    for i in range(samples):
        graph = distance_probability(n, architecture_rng(1, i), p=p, alpha=alpha, beta=beta)
        hits += np.array([graph.has_edge(u, v) for u, v in zip(rows, cols)])
    for dist in range(1, n // 2 + 1):
        at = d == dist
        trials = at.sum() * samples
        expected = float(edge_probability(dist, p, alpha, beta))
        observed = hits[at].sum() / trials
        # Binomial standard error, 4 sigma, plus a floor for the near-zero tail.
        tolerance = 4 * np.sqrt(expected * (1 - expected) / trials) + 1e-3
        assert abs(observed - expected) < tolerance, (dist, observed, expected)


def test_fb_is_staged_and_keeps_the_vertex_count():
    dag = cnas.generate("fb", 40, seed=0)
    merges = sorted(v for v, s in dag.nodes(data="stage") if s)
    assert len(merges) == 2
    # Every input -> output path crosses every merge vertex: a single chain of stages.
    for merge in merges:
        cut = dag.copy()
        cut.remove_node(merge)
        assert not nx.has_path(cut, dag.graph["input"], dag.graph["output"])
    # Stages draw from different streams, so they are not copies of each other.
    assert cnas.generate("fb", 40, seed=0, stages=2, base="er", p=0.3).number_of_nodes() == 42


def test_resnet50_reference_has_residual_branches():
    dag = cnas.generate("resnet50")
    assert dag.number_of_nodes() == 70
    profile = dagmod.width_profile(dag)
    assert max(profile) == 2 and profile[0] == 1 and profile[-1] == 1
    assert sum(1 for _, s in dag.nodes(data="stage") if s) == 6


@pytest.mark.parametrize(
    "name,nodes,params,fragment",
    [
        ("nope", 40, {}, "unknown generator 'nope'"),
        ("er", 40, {"p": 1.5}, "'p' of generator 'er' must lie in [0, 1]"),
        ("er", 40, {"p": -0.1}, "must lie in [0, 1]"),
        ("ws", 40, {"k": 3}, "'k' of generator 'ws' must be even"),
        ("ws", 10, {"k": 10}, "below nodes"),
        ("ba", 10, {"m": 10}, "'m' of generator 'ba' must satisfy"),
        ("dp", 3, {}, "nodes must be at least 4"),
        ("dp", 40, {"gamma": 2}, "has no parameter 'gamma'"),
        ("dp", 40, {"p": "abc"}, "must be float"),
        ("fb", 5, {"stages": 3}, "at least 2 blocks per stage"),
        ("fb", 40, {"base": "xx"}, "'base' of generator 'fb'"),
        ("fb", 12, {}, "too few for its base 'ws'"),
    ],
)
def test_bad_parameters_raise_a_clear_error(name, nodes, params, fragment):
    with pytest.raises(CnasError) as info:
        cnas.generate(name, nodes, **params)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_depth_width_and_longest_path_on_a_known_dag():
    dag = dagmod.from_edge_list([(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (0, 4)])
    assert dagmod.width_profile(dag) == [1, 2, 1, 1]
    assert dagmod.longest_path_vertices(dag) == 4
    assert dagmod.max_width(dag) == 2


@pytest.mark.parametrize("seed", [1.5, -1, True, 2**70])
def test_generate_refuses_a_seed_it_would_truncate(seed):
    with pytest.raises(CnasError, match=r"seed must be an integer in 0\.\.9223372036854775807"):
        cnas.generate("dp", 10, seed=seed)


def test_generate_takes_numpy_integer_seeds_as_ints():
    assert dagmod.edge_list(cnas.generate("dp", 20, seed=np.int64(3))) == dagmod.edge_list(cnas.generate("dp", 20, seed=3))
