"""Which unit runs which vertex: assignments as plain ``dict[int, int]``.

An assignment maps every vertex of an architecture DAG to a unit ``0 .. units-1``. Three
sources (paper §4 and appendix 6.1):

* ``kahypar`` -- the hypergraph partition that scoring found (:mod:`concurrent_nas.scoring`);
* ``paper`` -- the paper's own heuristic: vertices of one sequential path are grouped,
  then the groups are spread over the units greedily to balance FLOPs;
* ``single`` -- everything on unit 0.

Whatever the source, :func:`normalize_assignment` puts the output vertex (the gather) on
unit 0, the unit that also holds the image and measures the latency. The input vertex is
common to all units (each unit that needs the stem's output receives the image and runs
the stem itself), so its entry in the dict only says where the stem's cost is booked.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from .. import dag as dagmod
from ..errors import CnasError
from ..scoring import DEFAULT_EPS, score_architecture
from ..shapes import CompileSettings, vertex_costs

PLACEMENTS = ("kahypar", "paper", "kahypar-time", "paper-time", "predicted", "single", "threads")
#: Placements that need measured per-vertex times (see :func:`.timed.timed_assignment`).
TIMED_PLACEMENTS = ("kahypar-time", "paper-time", "predicted")


def check_units(units: int) -> int:
    """``units`` as an int, or a :class:`CnasError` naming the bad value."""
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise CnasError(f"units must be a positive integer, got {units!r}")
    return units


def normalize_assignment(dag: nx.DiGraph, assignment: Mapping[int, int], units: int, *,
                         order: list[int] | None = None) -> dict[int, int]:
    """Validate an assignment and relabel units so the output vertex sits on unit 0.

    Units are renumbered in order of first appearance along the topological order,
    starting with the output vertex's unit, so two assignments that differ only in unit
    labels become equal. Units that receive no vertex stay idle.

    ``order`` is the DAG's topological order when the caller already has it (a placement
    search normalizes thousands of assignments of one DAG).

    Raises
    ------
    CnasError
        If a vertex is missing or a unit number is outside ``0 .. units-1``.
    """
    check_units(units)
    missing = sorted(set(dag) - set(assignment))
    if missing:
        raise CnasError(f"assignment has no unit for vertex {missing[0]}; give every vertex a unit")
    bad = sorted(v for v in dag if not 0 <= int(assignment[v]) < units)
    if bad:
        raise CnasError(
            f"assignment puts vertex {bad[0]} on unit {assignment[bad[0]]}; units run 0..{units - 1}"
        )
    order = order if order is not None else dagmod.topological_order(dag)
    out = order[-1]
    relabel: dict[int, int] = {int(assignment[out]): 0}
    for v in order:
        relabel.setdefault(int(assignment[v]), len(relabel))
    for u in range(units):  # idle units keep distinct labels
        relabel.setdefault(u, len(relabel))
    return {v: relabel[int(assignment[v])] for v in sorted(dag)}


def single_assignment(dag: nx.DiGraph) -> dict[int, int]:
    """Everything on unit 0."""
    return {v: 0 for v in sorted(dag)}


def sequential_groups(dag: nx.DiGraph) -> list[list[int]]:
    """Maximal sequential paths of inner vertices (appendix 6.1's grouping).

    Two inner vertices ``u -> v`` belong to one group when ``u`` has no other successor
    and ``v`` no other predecessor: running them on different units could only add a
    transfer, never concurrency. Input and output vertices are never grouped (they are
    the common scatter and the gather).

    Returns
    -------
    list of list of int
        Groups in topological order of their first vertex, each group a path in order.
    """
    src, dst = dagmod.input_vertex(dag), dagmod.output_vertex(dag)
    groups: list[list[int]] = []
    seen: set[int] = set()
    for v in dagmod.topological_order(dag):
        if v in (src, dst) or v in seen:
            continue
        path = [v]
        seen.add(v)
        while True:
            succ = list(dag.successors(path[-1]))
            if len(succ) != 1:
                break
            w = succ[0]
            if w == dst or dag.in_degree(w) != 1 or w in seen:
                break
            path.append(w)
            seen.add(w)
        groups.append(path)
    return groups


def paper_assignment(dag: nx.DiGraph, units: int, weights: Mapping[int, float]) -> dict[int, int]:
    """The paper's placement: group sequential paths, then greedy load balancing.

    Groups (:func:`sequential_groups`) are taken heaviest first and each goes to the unit
    with the least work so far (ties: lowest unit), the classic longest-processing-time
    rule. The output vertex goes to unit 0 (the gather), the input vertex is common.

    Parameters
    ----------
    dag : networkx.DiGraph
        Architecture.
    units : int
        Number of units.
    weights : mapping int -> float
        Work per vertex (FLOPs, or measured times).

    Returns
    -------
    dict int -> int
        Normalized assignment (:func:`normalize_assignment`).
    """
    check_units(units)
    groups = sequential_groups(dag)
    load = [0.0] * units
    assignment = {dagmod.input_vertex(dag): 0, dagmod.output_vertex(dag): 0}
    ranked = sorted(
        range(len(groups)), key=lambda i: (-sum(float(weights[v]) for v in groups[i]), i)
    )
    for i in ranked:
        unit = min(range(units), key=lambda u: (load[u], u))
        load[unit] += sum(float(weights[v]) for v in groups[i])
        for v in groups[i]:
            assignment[v] = unit
    return normalize_assignment(dag, assignment, units)


def parts_to_assignment(dag: nx.DiGraph, parts, units: int) -> dict[int, int]:
    """A scored run's ``parts`` column (part of every vertex, ascending id) as an assignment."""
    vertices = sorted(dag)
    parts = [int(p) for p in parts]
    if len(parts) != len(vertices):
        raise CnasError(
            f"partition lists {len(parts)} vertices but the architecture has {len(vertices)}; "
            "re-run `cnas score` on this run"
        )
    return normalize_assignment(dag, dict(zip(vertices, parts)), units)


def kahypar_assignment(
    dag: nx.DiGraph,
    units: int,
    *,
    settings=None,
    eps=DEFAULT_EPS,
    seed: int = 0,
) -> dict[int, int]:
    """The best-scoring KaHyPar partition for ``units`` (lowest concurrency score over ``eps``)."""
    check_units(units)
    if units == 1:
        return single_assignment(dag)
    table = score_architecture(dag, units=(units,), eps=tuple(eps), settings=settings, seed=seed)
    best = table[table["best"]].iloc[0]
    return parts_to_assignment(dag, best["parts"], units)


def vertex_flops(dag: nx.DiGraph, settings=None) -> dict[int, float]:
    """FLOPs per vertex from the shape pass (used as weights by the paper heuristic)."""
    flops, _ = vertex_costs(dag, settings if settings is not None else CompileSettings())
    return {v: float(flops[v]) for v in dag}


def make_assignment(dag: nx.DiGraph, units: int, placement: str, *, settings=None, seed: int = 0,
                    parts=None) -> dict[int, int]:
    """Assignment for one of the named placements.

    ``threads`` uses no assignment (the scheduler inside one process decides), so it gets
    :func:`single_assignment`. ``parts`` (a scored run's partition) short-cuts KaHyPar.
    """
    check_units(units)
    if placement not in PLACEMENTS:
        raise CnasError(f"unknown placement '{placement}'; choose one of {', '.join(PLACEMENTS)}")
    if placement in ("single", "threads") or units == 1:
        return single_assignment(dag)
    if placement in TIMED_PLACEMENTS:
        raise CnasError(f"placement '{placement}' needs measured vertex times; use timed_assignment")
    if placement == "paper":
        return paper_assignment(dag, units, vertex_flops(dag, settings))
    if parts is not None:
        return parts_to_assignment(dag, parts, units)
    return kahypar_assignment(dag, units, settings=settings, seed=seed)
