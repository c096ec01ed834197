"""Graph types the package does not support are refused, naming what to pass instead."""

from __future__ import annotations

import networkx as nx
import pytest

import concurrent_nas as cnas
from concurrent_nas import dag as dagmod


def multigraph_copy(dag):
    multi = nx.MultiDiGraph(dag)
    u, v = next(iter(dag.edges))
    multi.add_edge(u, v)  # a parallel edge
    return multi


def test_multidigraph_is_refused_by_validate():
    multi = multigraph_copy(cnas.generate("dp", nodes=10, seed=0))
    with pytest.raises(cnas.CnasError, match="MultiDiGraph; pass a networkx.DiGraph"):
        dagmod.validate(multi)


def test_multidigraph_is_refused_by_the_shape_pass_and_scoring():
    multi = multigraph_copy(cnas.generate("dp", nodes=10, seed=0))
    with pytest.raises(cnas.CnasError, match="MultiDiGraph"):
        cnas.shape_pass(multi, cnas.CompileSettings())
    with pytest.raises(cnas.CnasError, match="MultiDiGraph"):
        cnas.score_architecture(multi, units=[2])


@pytest.mark.parametrize("graph", [nx.Graph([(0, 1)]), {0: [1]}, [(0, 1)]])
def test_non_digraph_is_refused_with_what_to_pass(graph):
    with pytest.raises(cnas.CnasError, match="must be a networkx.DiGraph, got|undirected networkx.Graph; pass a networkx.DiGraph"):
        dagmod.validate(graph)
