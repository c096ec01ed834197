"""The classical random-graph families RandWire used (Xie et al. 2019), unstaged.

Each function returns an undirected graph on vertices ``0 .. n-1``; the registry turns it
into a DAG. They draw from a ``numpy.random.Generator`` so a run is reproducible bit for
bit and independent of Python's global random state.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..errors import CnasError
from .registry import check_probability, register


@register(
    "er",
    color="#0072B2",
    summary="Erdős–Rényi: every edge exists independently with probability p",
    family="independent probability",
    defaults={"p": 0.2},
)
def erdos_renyi(n: int, rng: np.random.Generator, *, p: float) -> nx.Graph:
    """G(n, p): each of the n(n-1)/2 possible edges exists with probability ``p``."""
    check_probability("er", "p", p)
    rows, cols = np.triu_indices(n, k=1)
    keep = rng.random(rows.size) < p
    graph = nx.empty_graph(n)
    graph.add_edges_from(zip(rows[keep].tolist(), cols[keep].tolist()))
    return graph


@register(
    "ba",
    color="#E69F00",
    summary="Barabási–Albert: each new vertex attaches m edges, preferring high degree",
    family="degree probability",
    defaults={"m": 5},
)
def barabasi_albert(n: int, rng: np.random.Generator, *, m: int) -> nx.Graph:
    """Preferential attachment starting from ``m`` disconnected vertices.

    Vertex ``m`` joins all ``m`` initial vertices; every later vertex picks ``m``
    distinct targets with probability proportional to their degree. The graph has
    exactly m(n - m) edges.
    """
    if not 1 <= m < n:
        raise CnasError(f"parameter 'm' of generator 'ba' must satisfy 1 <= m < nodes ({n}), got {m}")
    graph = nx.empty_graph(n)
    targets = list(range(m))
    # Every vertex appears once per incident edge, so a uniform draw from this list is
    # a degree-proportional draw.
    repeated: list[int] = []
    for source in range(m, n):
        graph.add_edges_from((source, t) for t in targets)
        repeated.extend(targets)
        repeated.extend([source] * m)
        chosen: set[int] = set()
        while len(chosen) < m:
            chosen.add(repeated[int(rng.integers(len(repeated)))])
        targets = sorted(chosen)
    return graph


def ring_lattice(n: int, k: int) -> nx.Graph:
    """Ring of ``n`` vertices, each joined to its ``k/2`` nearest neighbours per side."""
    graph = nx.empty_graph(n)
    for j in range(1, k // 2 + 1):
        graph.add_edges_from((u, (u + j) % n) for u in range(n))
    return graph


@register(
    "ws",
    color="#009E73",
    summary="Watts–Strogatz: ring lattice of degree k, each edge rewired with probability p",
    family="enforced grouping",
    defaults={"k": 4, "p": 0.75},
)
def watts_strogatz(n: int, rng: np.random.Generator, *, k: int, p: float) -> nx.Graph:
    """Small-world graph: :func:`ring_lattice` then clockwise rewiring.

    For each offset j = 1 .. k/2 and each vertex u in order, the edge (u, u + j) is
    replaced with probability ``p`` by (u, w), w uniform among vertices that are neither
    u nor already joined to u.
    """
    check_probability("ws", "p", p)
    if k < 2 or k % 2 or k >= n:
        raise CnasError(
            f"parameter 'k' of generator 'ws' must be even, at least 2 and below nodes ({n}), got {k}"
        )
    graph = ring_lattice(n, k)
    for j in range(1, k // 2 + 1):
        for u in range(n):
            v = (u + j) % n
            if not graph.has_edge(u, v) or rng.random() >= p:
                continue
            free = [w for w in range(n) if w != u and not graph.has_edge(u, w)]
            if not free:
                continue
            w = free[int(rng.integers(len(free)))]
            graph.remove_edge(u, v)
            graph.add_edge(u, w)
    return graph
