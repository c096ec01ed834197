"""Architectures as networkx node-link JSON, so users can bring their own DAG."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx

from . import dag as dagmod
from .errors import CnasError
from .files import atomic_output


def to_node_link(dag: nx.DiGraph) -> dict:
    """Node-link form (``links`` key, as every networkx version reads it) of a valid architecture."""
    dagmod.validate(dag)  # never write a file that read_graph would refuse
    names = dagmod.user_names(dag)
    if names is not None:  # write the user's own ids back
        dag = nx.relabel_nodes(dag, dict(zip(sorted(dag), names)), copy=True)
        for v in dag:
            dag.nodes[v].pop(dagmod.USER_ID, None)
        dag.graph.pop("input", None), dag.graph.pop("output", None)
    data = nx.node_link_data(dag, edges="links")
    data["graph"] = {k: v for k, v in data["graph"].items() if _jsonable(v)}
    return data


def from_node_link(data: dict, *, where: str = "graph") -> nx.DiGraph:
    """Parse node-link data written by any networkx version (``links`` or ``edges`` key).

    Raises
    ------
    CnasError
        If the data is not a node-link graph or the graph is not a single-input,
        single-output DAG with integer vertices.
    """
    if not isinstance(data, dict) or "nodes" not in data:
        raise CnasError(f"{where}: not a networkx node-link graph (no 'nodes' list)")
    key = "edges" if "edges" in data else "links"
    if key not in data:
        raise CnasError(f"{where}: node-link graph has neither a 'links' nor an 'edges' list")
    _check_layout(data, key, where)
    _check_links(data["nodes"], data[key], where)
    try:
        graph = nx.node_link_graph(data, directed=True, multigraph=False, edges=key)
    except (KeyError, TypeError, nx.NetworkXError) as exc:
        raise CnasError(f"{where}: malformed node-link graph ({exc})") from None
    try:
        graph = dagmod.integer_ids(graph)  # free-form names are kept as 'user_id'
        dagmod.validate(graph)
    except CnasError as exc:
        raise CnasError(f"{where}: {exc}") from None
    dag = nx.DiGraph()
    dag.graph.update(graph.graph)
    dag.add_nodes_from(sorted(graph.nodes(data=True)))
    dag.add_edges_from(sorted(graph.edges))
    # Derived from the structure, never trusted from the file's graph attributes.
    dag.graph["input"] = next(v for v in dag if dag.in_degree(v) == 0)
    dag.graph["output"] = next(v for v in dag if dag.out_degree(v) == 0)
    dag.graph.setdefault("generator", "custom")
    return dag


def _check_layout(data: dict, key: str, where: str) -> None:
    # networkx reads what it is given in its own way (a "directed": false file becomes
    # an undirected graph, a "graph" list a TypeError, a vertex listed twice one vertex);
    # an architecture file has one layout, and anything else is named here.
    nodes, links = data["nodes"], data[key]
    if not isinstance(nodes, list) or not all(isinstance(n, dict) and "id" in n for n in nodes):
        raise CnasError(f"{where}: 'nodes' must be a list of objects, each with an 'id'")
    if not isinstance(links, list) or not all(isinstance(e, dict) and "source" in e and "target" in e for e in links):
        raise CnasError(f"{where}: '{key}' must be a list of objects, each with a 'source' and a 'target'")
    if not isinstance(data.get("graph", {}), dict):
        raise CnasError(f"{where}: 'graph' must be an object of graph attributes")
    for flag, wanted in (("directed", True), ("multigraph", False)):
        if flag in data and data[flag] is not wanted:
            raise CnasError(f"{where}: '{flag}' is {json.dumps(data[flag])}; an architecture is a directed graph "
                            f"without parallel links: set \"{flag}\": {json.dumps(wanted)}")
    seen = set()
    for node in nodes:
        vid = node["id"]
        if isinstance(vid, (dict, list)):
            raise CnasError(f"{where}: vertex id {json.dumps(vid)} is not a number or a string")
        if vid in seen:
            raise CnasError(f"{where}: vertex {vid!r} is listed twice under 'nodes'")
        seen.add(vid)
        if "stage" in node and not isinstance(node["stage"], bool):
            raise CnasError(f"{where}: 'stage' of vertex {vid!r} must be true or false, got {json.dumps(node['stage'])}")


def _check_links(nodes, links, where: str) -> None:
    # networkx silently adds a vertex that only a link names; in an architecture file
    # that is a typo or a truncated node list, not a vertex with no attributes.
    if not isinstance(nodes, list) or not isinstance(links, list):
        return  # node_link_graph reports these
    try:
        listed = {n["id"] for n in nodes if isinstance(n, dict) and "id" in n}
        for link in links:
            for end in ("source", "target"):
                if isinstance(link, dict) and end in link and link[end] not in listed:
                    raise CnasError(f"{where}: a link names vertex {link[end]!r}, which is not in 'nodes'; "
                                    "list every vertex under 'nodes'")
    except TypeError as exc:  # an unhashable id
        raise CnasError(f"{where}: malformed node-link graph ({exc})") from None


def read_graph(path: str | Path) -> nx.DiGraph:
    """Read a node-link JSON file into a validated architecture DAG."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CnasError(f"{path}: no such file") from None
    except OSError as exc:
        raise CnasError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = json.loads(raw.decode("utf-8-sig"))  # a byte-order mark is harmless
    except UnicodeDecodeError as exc:
        raise CnasError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise CnasError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise CnasError(f"{path}: JSON nested too deeply to be a node-link graph") from None
    return from_node_link(data, where=str(path))


def write_graph(dag: nx.DiGraph, path: str | Path) -> None:
    """Write ``dag`` as node-link JSON (atomically; a failed write is one :class:`CnasError` line)."""
    text = json.dumps(to_node_link(dag), indent=1, sort_keys=True) + "\n"
    with atomic_output(path, what="graph") as tmp:
        tmp.write_text(text)


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True
