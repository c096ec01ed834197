"""Architecture DAGs as plain ``networkx.DiGraph`` objects, and what we measure on them.

Conventions every module relies on:

* vertices are integers; the DAG has exactly one source (the *input* vertex, the stem of
  the network) and one sink (the *output* vertex: merge, global pool, classifier);
* ``dag.graph`` may carry ``generator``, ``params``, ``nodes`` and ``seed`` describing
  where the DAG came from, and ``"input"`` / ``"output"`` naming the two ends;
* a vertex may carry ``stage=True``: the generator prescribes that this block downsamples
  and raises channels (the staged FB baseline uses it for its merge points);
* ``dag.graph["scaling"]`` (one of :data:`SCALINGS`) says what the other blocks of such a
  DAG do: ``"prescribed"`` (the default) never stage, ``"per-block"`` stage as the compile
  settings' staging mode says (``fb-randwire``: the paper's scaling blocks inside stages).

The helpers here are pure functions of the graph: no torch, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from .errors import INT64_MAX, CnasError

#: Values of ``dag.graph["scaling"]``, the default first: whether the blocks of a DAG with
#: ``stage=True`` vertices other than those stage (``"per-block"``) or not (``"prescribed"``).
SCALINGS = ("prescribed", "per-block")


def dfs_orient(graph: nx.Graph) -> nx.DiGraph:
    """Orient an undirected graph into a DAG by depth-first search preorder.

    The search starts at the lowest vertex id and visits neighbours in ascending id
    order; for another component it restarts at the lowest unvisited id. Every edge is
    oriented from the endpoint visited first to the one visited later, so the result is
    acyclic. This is the paper's rule (§3.1) and differs from orienting low id to high
    id: on the path 0-2-1 the edge {1, 2} becomes 2 -> 1.

    Parameters
    ----------
    graph : networkx.Graph
        Undirected graph with integer (or otherwise sortable) vertices.

    Returns
    -------
    networkx.DiGraph
        Same vertices and edges, oriented along the preorder.
    """
    order: dict = {}
    neighbours = {v: sorted(graph.adj[v]) for v in graph}
    for root in sorted(graph):
        if root in order:
            continue
        order[root] = len(order)
        # Stack of (vertex, next neighbour index): an explicit recursive DFS, so the
        # preorder is exactly that of the recursive definition.
        stack = [(root, 0)]
        while stack:
            v, i = stack[-1]
            nbrs = neighbours[v]
            while i < len(nbrs) and nbrs[i] in order:
                i += 1
            if i == len(nbrs):
                stack.pop()
                continue
            stack[-1] = (v, i + 1)
            w = nbrs[i]
            order[w] = len(order)
            stack.append((w, 0))
    dag = nx.DiGraph()
    dag.add_nodes_from(sorted(graph))
    dag.add_edges_from((u, v) if order[u] < order[v] else (v, u) for u, v in graph.edges)
    return dag


def index_orient(graph: nx.Graph) -> nx.DiGraph:
    """Orient every edge from the lower vertex id to the higher one (RandWire's rule).

    Parameters
    ----------
    graph : networkx.Graph
        Undirected graph with sortable vertices.

    Returns
    -------
    networkx.DiGraph
        Same vertices and edges, each oriented ``min -> max``.
    """
    dag = nx.DiGraph()
    dag.add_nodes_from(sorted(graph))
    dag.add_edges_from((min(u, v), max(u, v)) for u, v in graph.edges)
    return dag


ORIENTATIONS = {"dfs": dfs_orient, "index": index_orient}
"""Ways to turn an undirected graph into a DAG: ``dfs`` is the paper's (§3.1), ``index``
RandWire's (Xie et al. 2019)."""


def orient(graph: nx.Graph, orientation: str = "dfs") -> nx.DiGraph:
    """Orient ``graph`` by the rule named ``orientation`` (a key of :data:`ORIENTATIONS`).

    Raises
    ------
    CnasError
        On an unknown orientation.
    """
    try:
        rule = ORIENTATIONS[orientation]
    except (KeyError, TypeError):
        raise CnasError(
            f"unknown orientation {orientation!r}; choose one of: {', '.join(ORIENTATIONS)}"
        ) from None
    return rule(graph)


def add_input_output(dag: nx.DiGraph) -> nx.DiGraph:
    """Return a copy with one input vertex and one output vertex added.

    Vertices are shifted by one so the input is ``0``, the original vertices are
    ``1 .. N`` and the output is ``N + 1``. The input feeds every vertex without a
    predecessor; every vertex without a successor feeds the output.
    """
    n = dag.number_of_nodes()
    mapping = {v: i + 1 for i, v in enumerate(sorted(dag))}
    out = nx.DiGraph()
    out.graph.update(dag.graph)
    out.add_node(0)
    out.add_nodes_from((mapping[v], data) for v, data in sorted(dag.nodes(data=True)))
    out.add_node(n + 1)
    out.add_edges_from((mapping[u], mapping[v]) for u, v in dag.edges)
    sources = [mapping[v] for v in sorted(dag) if dag.in_degree(v) == 0]
    sinks = [mapping[v] for v in sorted(dag) if dag.out_degree(v) == 0]
    out.add_edges_from((0, v) for v in sources)
    out.add_edges_from((v, n + 1) for v in sinks)
    out.graph["input"] = 0
    out.graph["output"] = n + 1
    return out


#: Vertex attribute holding a user's own vertex id after :func:`integer_ids` renumbered it.
USER_ID = "user_id"


def integer_ids(graph: nx.DiGraph) -> nx.DiGraph:
    """``graph`` with vertices numbered 0..n-1 (in its own vertex order) if any id is not one.

    Vertices named freely ("in", "conv1", 2.5, ...) get integer ids, as every pass here
    needs, and keep their name in the ``user_id`` attribute, which
    :func:`user_names` and the graph writer put back in outputs. A graph whose ids are
    already integers in range is returned as it is.

    Raises
    ------
    CnasError
        If two ids would read the same once written as text (``1`` and ``"1"``).
    """
    ids = list(graph)
    if all(type(v) is int and 0 <= v <= INT64_MAX for v in ids):
        return graph
    seen: dict[str, object] = {}
    for v in ids:
        other = seen.setdefault(str(v), v)
        if other is not v and other != v:
            raise CnasError(f"vertex ids {other!r} and {v!r} are the same once written as text; rename one")
    mapping = {v: i for i, v in enumerate(ids)}
    out = nx.relabel_nodes(graph, mapping, copy=True)
    nx.set_node_attributes(out, {i: v for v, i in mapping.items()}, USER_ID)
    return out


def user_names(dag: nx.DiGraph) -> list | None:
    """The user's ids of ``dag``'s vertices in sorted vertex order, or ``None`` if it kept its own ids."""
    names = [dag.nodes[v].get(USER_ID, v) for v in sorted(dag)]
    return names if any(USER_ID in dag.nodes[v] for v in dag) else None


def validate(dag: nx.DiGraph) -> nx.DiGraph:
    """Check that ``dag`` is a usable architecture and return it.

    Raises
    ------
    CnasError
        If the graph is not a ``networkx.DiGraph`` (a multigraph is refused), has a
        cycle, non-integer vertices, or not exactly one source and one sink.
    """
    if isinstance(dag, nx.Graph) and not dag.is_directed():
        raise CnasError(
            f"architecture is an undirected networkx.{type(dag).__name__}; pass a networkx.DiGraph "
            "(concurrent_nas.dag.orient orients an undirected graph's edges by depth-first search)"
        )
    if not isinstance(dag, nx.DiGraph):
        raise CnasError(
            f"architecture must be a networkx.DiGraph, got {type(dag).__name__}; "
            "build one with networkx.DiGraph(edges) or read one with concurrent_nas.read_graph"
        )
    if dag.is_multigraph():
        # Parallel edges have no meaning in a dataflow graph, and every pass here counts
        # predecessors: silently accepting one gave a stem-only network.
        raise CnasError(
            f"architecture is a {type(dag).__name__}; pass a networkx.DiGraph instead "
            "(networkx.DiGraph(graph) merges parallel edges)"
        )
    if dag.number_of_nodes() < 2:
        raise CnasError(
            f"architecture has {dag.number_of_nodes()} vertices; it needs at least an input and an output"
        )
    bad = [v for v in dag if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= INT64_MAX]
    if bad:
        raise CnasError(f"vertex ids must be integers in 0..{INT64_MAX} (they are stored as int64), got {bad[0]!r}; "
                        "concurrent_nas.dag.integer_ids(graph) renumbers them and keeps the names")
    if not nx.is_directed_acyclic_graph(dag):
        cycle = nx.find_cycle(dag)
        raise CnasError(
            f"architecture has a cycle through vertices {[u for u, _ in cycle]}; it must be a DAG"
        )
    sources = [v for v in dag if dag.in_degree(v) == 0]
    sinks = [v for v in dag if dag.out_degree(v) == 0]
    if len(sources) != 1:
        raise CnasError(
            f"architecture has {len(sources)} source vertices {sorted(sources)[:8]}; it needs exactly one input vertex"
        )
    if len(sinks) != 1:
        raise CnasError(
            f"architecture has {len(sinks)} sink vertices {sorted(sinks)[:8]}; it needs exactly one output vertex"
        )
    return dag


def input_vertex(dag: nx.DiGraph) -> int:
    """The single source vertex of an architecture DAG."""
    if "input" in dag.graph:
        return dag.graph["input"]
    return next(v for v in dag if dag.in_degree(v) == 0)


def output_vertex(dag: nx.DiGraph) -> int:
    """The single sink vertex of an architecture DAG."""
    if "output" in dag.graph:
        return dag.graph["output"]
    return next(v for v in dag if dag.out_degree(v) == 0)


def block_count(dag: nx.DiGraph) -> int:
    """Building blocks of an architecture: its ``nodes`` attribute, else vertices less input and output."""
    return int(dag.graph.get("nodes", dag.number_of_nodes() - 2))


def topological_order(dag: nx.DiGraph) -> list[int]:
    """A deterministic topological order (ties broken by ascending vertex id)."""
    return list(nx.lexicographical_topological_sort(dag))


def depth_levels(dag: nx.DiGraph) -> dict[int, int]:
    """Depth of every vertex: edges on the longest path from the input vertex to it."""
    level: dict[int, int] = {}
    for v in topological_order(dag):
        level[v] = max((level[u] + 1 for u in dag.predecessors(v)), default=0)
    return level


def width_profile(dag: nx.DiGraph) -> list[int]:
    """Vertices per depth level, from the input (level 0) to the output (paper Fig. 10)."""
    level = depth_levels(dag)
    counts = [0] * (max(level.values()) + 1)
    for d in level.values():
        counts[d] += 1
    return counts


def longest_path_vertices(dag: nx.DiGraph) -> int:
    """Number of vertices on the longest input-to-output path (input and output included)."""
    return max(depth_levels(dag).values()) + 1


def max_width(dag: nx.DiGraph) -> int:
    """Largest number of vertices on one depth level."""
    return max(width_profile(dag))


def edge_list(dag: nx.DiGraph) -> list[tuple[int, int]]:
    """Edges sorted by (source, target): the canonical plain-data form of the wiring."""
    return sorted(dag.edges)


def stage_vertices(dag: nx.DiGraph) -> list[int]:
    """Vertices the generator marks ``stage=True``, ascending: with :func:`edge_list`, the DAG's wiring."""
    return sorted(v for v, s in dag.nodes(data="stage") if s)


def from_edge_list(edges: Iterable[Iterable[int]], stage_vertices: Iterable[int] = ()) -> nx.DiGraph:
    """Rebuild a validated DAG from its edge list (the form stored in run tables).

    Parameters
    ----------
    edges : iterable of (int, int)
        Directed edges.
    stage_vertices : iterable of int, optional
        Vertices that carry ``stage=True``.
    """
    dag = nx.DiGraph()
    pairs = sorted((int(u), int(v)) for u, v in edges)
    dag.add_nodes_from(sorted({v for e in pairs for v in e}))
    dag.add_edges_from(pairs)
    for v in stage_vertices:
        dag.nodes[int(v)]["stage"] = True
    validate(dag)
    dag.graph["input"] = input_vertex(dag)
    dag.graph["output"] = output_vertex(dag)
    return dag
