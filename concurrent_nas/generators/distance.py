"""Distance probability (DP), the paper's new generator (§3.1, eq. 1)."""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..errors import CnasError
from .registry import check_probability, register


def ring_distance(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All vertex pairs i < j of an n-ring and their ring distance min(j - i, n - j + i)."""
    rows, cols = np.triu_indices(n, k=1)
    gap = cols - rows
    return rows, cols, np.minimum(gap, n - gap)


def edge_probability(d: np.ndarray, p: float, alpha: float, beta: float) -> np.ndarray:
    """``alpha * p ** (beta * d)`` clipped to [0, 1]: the chance of an edge at distance d."""
    return np.clip(alpha * np.power(p, beta * np.asarray(d, dtype=float)), 0.0, 1.0)


@register(
    "dp",
    color="#D55E00",
    summary="distance probability: ring, edge at ring distance d with probability alpha * p**(beta*d)",
    family="distance probability",
    defaults={"p": 0.55, "alpha": 1.0, "beta": 1.0},
)
def distance_probability(
    n: int, rng: np.random.Generator, *, p: float, alpha: float, beta: float
) -> nx.Graph:
    """Vertices on a ring; the edge {i, j} exists with probability alpha * p**(beta*d).

    Closer vertices are likelier to connect, so the graph falls apart into several
    locally dense groups that share few edges: the property that makes DP architectures
    concurrent.
    """
    check_probability("dp", "p", p)
    if alpha <= 0:
        raise CnasError(f"parameter 'alpha' of generator 'dp' must be positive, got {alpha}")
    if beta <= 0:
        raise CnasError(f"parameter 'beta' of generator 'dp' must be positive, got {beta}")
    rows, cols, d = ring_distance(n)
    keep = rng.random(rows.size) < edge_probability(d, p, alpha, beta)
    graph = nx.empty_graph(n)
    graph.add_edges_from(zip(rows[keep].tolist(), cols[keep].tolist()))
    return graph
