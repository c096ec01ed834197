"""The optional second stage of a search: edge mutations of the front's DAGs.

The first stage can only reach the DAGs its generators draw. The second takes a network
on the current front, adds or removes a few edges, and evaluates the result with the same
objectives; a mutant on the front may be mutated again. Every move keeps the DAG an
architecture: acyclic, with the same single input and single output.

:func:`mutate_edges` is a pure function of a DAG and a random generator; the engine
(:func:`concurrent_nas.search.engine.mutation_stage`) stores each mutant in the study as
a finished trial carrying its parent's choices and its own edge list.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from .. import dag as dagmod

#: The trial attribute of a mutant: ``{"parent": trial, "edges": [[u, v], ...], "changes": "+u>v -u>v"}``.
MUTANT_ATTR = "mutant"


def addable_edges(dag: nx.DiGraph) -> list[tuple[int, int]]:
    """Edges ``u -> v`` that may be added: ``u`` before ``v`` in a topological order, not yet present.

    Any such edge keeps the DAG acyclic (the order stays a topological order). The output
    gains no successor and the input no predecessor, and the input is not wired straight
    to the output (a stem-to-classifier shortcut is no block at all).
    """
    order = dagmod.topological_order(dag)
    source, sink = dagmod.input_vertex(dag), dagmod.output_vertex(dag)
    return [(u, v) for i, u in enumerate(order) for v in order[i + 1:]
            if u != sink and v != source and (u, v) != (source, sink) and not dag.has_edge(u, v)]


def removable_edges(dag: nx.DiGraph) -> list[tuple[int, int]]:
    """Edges whose removal leaves ``u`` a successor and ``v`` a predecessor: no new source or sink."""
    return [(u, v) for u, v in dagmod.edge_list(dag) if dag.out_degree(u) > 1 and dag.in_degree(v) > 1]


def mutate_edges(dag: nx.DiGraph, rng: np.random.Generator, moves: int = 1) -> tuple[nx.DiGraph, list[str]]:
    """A copy of ``dag`` with ``moves`` edges added or removed, and the changes as text.

    Each move adds or removes an edge with equal probability (the other kind when one
    has no candidate), drawn uniformly among :func:`addable_edges` or
    :func:`removable_edges` of the DAG as it is then. Vertices and their attributes
    (``stage``) are kept.

    Parameters
    ----------
    dag : networkx.DiGraph
        An architecture (one input, one output, acyclic).
    rng : numpy.random.Generator
        The moves' randomness: the same generator state gives the same mutant.
    moves : int
        Edge changes to make (fewer when a DAG admits none, e.g. a chain of two).

    Returns
    -------
    (networkx.DiGraph, list of str)
        The mutant and its changes, ``"+u>v"`` (added) or ``"-u>v"`` (removed).

    Examples
    --------
    >>> import networkx as nx, numpy as np
    >>> diamond = nx.DiGraph([(0, 1), (0, 2), (1, 3), (2, 3)])
    >>> mutate_edges(diamond, np.random.default_rng(0))[1]   # the only edge that keeps it an architecture
    ['+1>2']
    """
    child = dag.copy()
    changes = []
    for _ in range(moves):
        options = {"+": addable_edges(child), "-": removable_edges(child)}
        kind = "+" if rng.random() < 0.5 else "-"
        if not options[kind]:
            kind = "-" if kind == "+" else "+"
        if not options[kind]:
            break
        u, v = options[kind][int(rng.integers(len(options[kind])))]
        if kind == "+":
            child.add_edge(u, v)
        else:
            child.remove_edge(u, v)
        changes.append(f"{kind}{u}>{v}")
    dagmod.validate(child)
    return child, changes


def with_edges(dag: nx.DiGraph, edges) -> nx.DiGraph:
    """``dag`` (its vertices, their attributes and the graph's) with its edges replaced by ``edges``."""
    child = dag.copy()
    child.remove_edges_from(list(child.edges))
    child.add_edges_from((int(u), int(v)) for u, v in edges)
    return dagmod.validate(child)


def trial_dag(space, params: dict, mutant: dict | None = None) -> nx.DiGraph:
    """The DAG of a trial that chose ``params``: its candidate's, or a mutant's edges on the candidate's vertices.

    ``mutant`` is the trial's :data:`MUTANT_ATTR` attribute (``None`` for a sampled trial).
    """
    base = space.candidate(params).dag()
    return with_edges(base, mutant["edges"]) if mutant else base
