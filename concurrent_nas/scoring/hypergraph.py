"""The communication hypergraph of an architecture (paper §3.3), as plain data.

One hypervertex per DAG vertex, weighted by its FLOPs; one hyperedge per vertex that
has successors, ``{v} ∪ successors(v)``, costing the bytes of v's output. A feature map
is sent once to every other unit that needs it, however many of its consumers sit
there, which is exactly what the connectivity - 1 metric of a hyperedge counts.

KaHyPar takes 32-bit integer weights, so :class:`CommHypergraph` keeps both the exact
costs (used for every metric we report) and integer copies scaled for the partitioner
(see :func:`integer_weights`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx

from ..errors import CnasError

COSTS = ("flops", "uniform")
# U_c: one global unit of data, or the paper's smallest edge (see smallest_edge_cost).
UC_MODES = ("global", "generator")

# Largest total of the integer weights handed to KaHyPar. Its weights are int32 and it
# sums them (block weights, km1 = sum of cost * (lambda - 1) with lambda <= k), so the
# totals must stay far below 2**31 even multiplied by k; 2**24 keeps a relative
# resolution of 6e-8 of the total, far finer than any FLOP or byte count matters.
MAX_TOTAL_WEIGHT = 2**24


@dataclass(frozen=True)
class CommHypergraph:
    """Hypergraph of one architecture, vertices renumbered ``0 .. len(vertices) - 1``.

    Attributes
    ----------
    vertices : tuple of int
        DAG vertex ids in ascending order; index i of every per-vertex field is
        ``vertices[i]``.
    weights : tuple of int
        Exact work per vertex (FLOPs, or 1 for ``costs="uniform"``).
    hyperedges : tuple of tuple of int
        Vertex indices of every hyperedge, the producing vertex first.
    costs : tuple of int
        Exact cost per hyperedge (bytes of the producer's output, or 1).
    sources : tuple of int
        DAG vertex id that produces each hyperedge.
    kind : str
        ``"flops"`` or ``"uniform"``.
    """

    vertices: tuple[int, ...]
    weights: tuple[int, ...]
    hyperedges: tuple[tuple[int, ...], ...]
    costs: tuple[int, ...]
    sources: tuple[int, ...]
    kind: str

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)

    @property
    def num_hyperedges(self) -> int:
        return len(self.hyperedges)


def smallest_edge_cost(hg: CommHypergraph) -> int:
    """The paper's U_c: the cheapest communication of an edge, ``min`` of the hyperedge costs.

    The paper takes it over a generator; per architecture it is the same wherever every
    architecture of a generator reaches the smallest feature map (docs/scoring.md gives
    how often). 1 for a graph without edges, so that Lambda' stays defined (it is 0).
    """
    return min(hg.costs, default=1) or 1


def check_costs(costs: str) -> str:
    """Return ``costs`` or raise a one-line error naming the allowed values."""
    if costs not in COSTS:
        raise CnasError(f"costs must be one of {', '.join(COSTS)}, got {costs!r}")
    return costs


def dag_costs(dag: nx.DiGraph, costs: str = "flops", settings=None) -> tuple[dict[int, int], dict[int, int]]:
    """Work and output bytes of every vertex: ``(flops, out_bytes)`` keyed by vertex.

    ``costs="flops"`` asks the shape pass (:func:`concurrent_nas.shapes.vertex_costs`)
    under ``settings`` (default :class:`~concurrent_nas.shapes.CompileSettings`);
    ``costs="uniform"`` gives every vertex and every feature map a cost of 1.
    """
    check_costs(costs)
    if costs == "uniform":
        ones = {int(v): 1 for v in dag}
        return ones, dict(ones)
    from ..shapes import CompileSettings, vertex_costs

    flops, out_bytes = vertex_costs(dag, settings if settings is not None else CompileSettings())
    return {int(v): int(w) for v, w in flops.items()}, {int(v): int(b) for v, b in out_bytes.items()}


def build_hypergraph(dag: nx.DiGraph, costs: str = "flops", settings=None) -> CommHypergraph:
    """The communication hypergraph of ``dag`` (see the module docstring).

    Parameters
    ----------
    dag : networkx.DiGraph
        A validated architecture DAG.
    costs : {"flops", "uniform"}
        Vertex weights = FLOPs and hyperedge costs = output bytes from the shape pass,
        or unit weights and costs.
    settings : CompileSettings, optional
        Compile settings the shape pass uses (channels, staging, image size).

    Returns
    -------
    CommHypergraph
    """
    flops, out_bytes = dag_costs(dag, costs, settings)
    return hypergraph_from_costs(dag, flops, out_bytes, kind=costs)


def hypergraph_from_costs(
    dag: nx.DiGraph, flops: dict[int, int], out_bytes: dict[int, int], *, kind: str = "custom"
) -> CommHypergraph:
    """Build the hypergraph from explicit per-vertex work and output bytes."""
    vertices = tuple(sorted(int(v) for v in dag))
    missing = [v for v in vertices if v not in flops or v not in out_bytes]
    if missing:
        raise CnasError(f"no cost for vertex {missing[0]}; the cost tables must cover every vertex")
    index = {v: i for i, v in enumerate(vertices)}
    hyperedges, costs, sources = [], [], []
    for v in vertices:
        succ = sorted(dag.successors(v))
        if not succ:
            continue
        hyperedges.append((index[v], *(index[s] for s in succ)))
        costs.append(int(out_bytes[v]))
        sources.append(v)
    weights = tuple(int(flops[v]) for v in vertices)
    if any(w < 0 for w in weights) or any(c < 0 for c in costs):
        raise CnasError("vertex work and output bytes must be non-negative")
    return CommHypergraph(vertices, weights, tuple(hyperedges), tuple(costs), tuple(sources), kind)


def integer_weights(values: tuple[int, ...] | list[int], limit: int = MAX_TOTAL_WEIGHT) -> list[int]:
    """Scale non-negative integers for KaHyPar: positive, total at most about ``limit``.

    Values are first divided by their greatest common divisor (exact: feature-map bytes
    share large factors such as ``4 * H * W``). Only if the total is still above
    ``limit`` are they scaled by ``limit / total`` and rounded. Every weight is at least
    1, because KaHyPar treats weight 0 as "free" and would pile such vertices anywhere.
    Ratios are therefore preserved exactly when possible, else to about 1/limit of the
    total.
    """
    ints = [max(int(v), 0) for v in values]
    g = 0
    for v in ints:
        g = math.gcd(g, v)
    if g > 1:
        ints = [v // g for v in ints]
    total = sum(ints)
    if total > limit:
        scale = limit / total
        ints = [round(v * scale) for v in ints]
    return [max(v, 1) for v in ints]


def to_hypernetx(dag: nx.DiGraph, costs: str = "flops", settings=None, *, hypergraph: CommHypergraph | None = None):
    """The communication hypergraph as a ``hypernetx.Hypergraph``, to inspect or draw.

    Hyperedges are named ``"e<v>"`` after their producing vertex ``v`` and carry its
    output bytes as ``weight``; nodes are the DAG vertex ids and carry their FLOPs as
    ``weight``.

    Parameters
    ----------
    dag : networkx.DiGraph
        A validated architecture DAG.
    costs, settings
        As for :func:`build_hypergraph`.
    hypergraph : CommHypergraph, optional
        Use this one instead of building it from ``dag``.

    Examples
    --------
    >>> import concurrent_nas as cnas
    >>> from concurrent_nas.scoring import to_hypernetx
    >>> H = to_hypernetx(cnas.generate("dp", nodes=10), costs="uniform")
    >>> len(H.edges) > 0
    True
    """
    import hypernetx as hnx

    hg = hypergraph if hypergraph is not None else build_hypergraph(dag, costs, settings)
    edges = {
        f"e{src}": [hg.vertices[i] for i in edge] for src, edge in zip(hg.sources, hg.hyperedges)
    }
    edge_props = {f"e{src}": {"weight": cost} for src, cost in zip(hg.sources, hg.costs)}
    node_props = {v: {"weight": w} for v, w in zip(hg.vertices, hg.weights)}
    return hnx.Hypergraph(edges, edge_properties=edge_props, node_properties=node_props)
