"""A placement that minimises *simulated* latency: HEFT list scheduling, then local moves.

The paper leaves better placement as open work (§4.4, Fig. 12/13). This module takes any
set of candidate assignments (KaHyPar partitions over eps, the paper's greedy), adds one
made by a HEFT-style list schedule (Topcuoglu et al., 2002: vertices by upward rank,
each to the unit where it finishes earliest, messages included), keeps the candidate the
simulator (:func:`.simulate.simulate`) predicts fastest and improves it by moving single
vertices to the unit of a neighbour while the simulated latency drops.

Everything is plain data: compute times per vertex, output bytes, message costs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import networkx as nx

from .. import dag as dagmod
from ..scoring.partition import partition_hypergraph
from .assign import check_units, normalize_assignment
from .plan import PlanBuilder
from .simulate import TransferModel, simulate

#: Simulator calls the local moves may spend, per vertex of the DAG.
DEFAULT_MOVES_PER_VERTEX = 1.0


@dataclass(frozen=True)
class PlacementCosts:
    """What a placement is judged on: compute per vertex, bytes per message, message cost.

    Attributes
    ----------
    vertex_s : dict int -> float
        Compute time of every vertex on one unit, seconds.
    out_bytes : dict int -> int
        Output bytes of every vertex.
    image_bytes : int
        Bytes of the input image (scattered to units that run the stem).
    transfer : TransferModel
        Cost of a message between two units one hop apart.
    hops : callable (int, int) -> int, optional
        Hops between two units (``None``: every pair is one hop, as through a switch).
        A message over ``h`` hops costs ``h`` times a one-hop message (store and forward).
    """

    vertex_s: Mapping[int, float]
    out_bytes: Mapping[int, int]
    image_bytes: int
    transfer: TransferModel
    hops: Callable[[int, int], int] | None = None

    def message_s(self, nbytes: int, src: int = 0, dst: int = 1) -> float:
        """One-way time of a message of ``nbytes`` bytes from ``src`` to ``dst``."""
        h = 1 if self.hops is None else self.hops(src, dst)
        return h * self.transfer.seconds(nbytes)


class PlacementEvaluator:
    """Simulated latency of assignments of one DAG under one set of costs.

    Unit labels of an assignment are physical units: on a line or a star the simulator
    is given the cost of every pair of the plan's (renumbered) units.
    """

    def __init__(self, dag: nx.DiGraph, units: int, costs: PlacementCosts) -> None:
        self.dag, self.units, self.costs = dag, check_units(units), costs
        self.build = PlanBuilder(dag)
        self.calls = 0
        self._seen: dict[tuple, float] = {}  # KaHyPar often returns one partition for several eps

    def run(self, assignment: Mapping[int, int]):
        """The :class:`.simulate.SimulatedRun` of ``assignment`` (physical unit labels)."""
        plan = self.build(assignment, self.units)
        links = None
        if self.costs.hops is not None:
            physical = {plan.assignment[v]: int(assignment[v]) for v in plan.assignment}
            free = iter(sorted(set(range(self.units)) - set(physical.values())))
            for u in range(self.units):  # idle units: any unused physical unit
                if u not in physical:
                    physical[u] = next(free)
            t = self.costs.transfer
            links = {}
            for a in range(self.units):
                for b in range(self.units):
                    if a != b:
                        h = self.costs.hops(physical[a], physical[b])
                        links[(a, b)] = TransferModel(h * t.latency_s, t.bandwidth_Bps / h, t.send_cpu_s, t.source)
        self.calls += 1
        return simulate(plan, self.costs.vertex_s, self.costs.out_bytes, self.costs.image_bytes,
                        self.costs.transfer, links=links)

    def latency(self, assignment: Mapping[int, int]) -> float:
        """Simulated latency of ``assignment``, seconds (each distinct assignment simulated once)."""
        key = tuple(int(assignment[v]) for v in self.build.order)
        if key not in self._seen:
            self._seen[key] = self.run(assignment).latency_s
        return self._seen[key]


def upward_rank(dag: nx.DiGraph, costs: PlacementCosts, order: list[int] | None = None) -> dict[int, float]:
    """HEFT's upward rank: a vertex's time plus the longest (compute + message) path to the output.

    ``order`` is the DAG's topological order when the caller has it.
    """
    rank: dict[int, float] = {}
    for v in reversed(order if order is not None else dagmod.topological_order(dag)):
        message = costs.message_s(int(costs.out_bytes[v]))
        rank[v] = float(costs.vertex_s[v]) + max((message + rank[w] for w in dag.successors(v)), default=0.0)
    return rank


def heft_assignment(dag: nx.DiGraph, units: int, costs: PlacementCosts, *,
                    order: list[int] | None = None) -> dict[int, int]:
    """HEFT list schedule: by descending upward rank, each vertex to its earliest-finishing unit.

    The output vertex is fixed on unit 0, which holds the image; a unit that runs a
    consumer of the stem runs the stem itself after receiving the image. A vertex's
    start on unit ``u`` is the later of when ``u`` is free and when its last input is
    there (a message from another unit adds its one-way time); ties go to the lowest unit.

    Returns
    -------
    dict int -> int
        Normalized assignment (:func:`.assign.normalize_assignment`).
    """
    check_units(units)
    order = order if order is not None else dagmod.topological_order(dag)
    src, out = order[0], order[-1]
    position = {v: i for i, v in enumerate(order)}
    rank = upward_rank(dag, costs, order)
    stem_s = float(costs.vertex_s[src])
    assignment = {src: 0}
    finish: dict[int, float] = {}
    free = [0.0] * units
    stem_done = {0: stem_s}  # unit -> when its own copy of the stem is done
    free[0] = stem_s
    for v in sorted(order[1:], key=lambda v: (-rank[v], position[v])):
        best = None
        for u in [0] if v == out else range(units):
            free_u, stem_end = free[u], stem_done.get(u)
            if stem_end is None and src in dag.pred[v]:
                stem_end = free_u = max(free_u, costs.message_s(costs.image_bytes, 0, u)) + stem_s
            ready = 0.0
            for p in dag.predecessors(v):
                if p == src:
                    ready = max(ready, stem_end)
                elif assignment[p] == u:
                    ready = max(ready, finish[p])
                else:
                    ready = max(ready, finish[p] + costs.message_s(int(costs.out_bytes[p]), assignment[p], u))
            end = max(ready, free_u) + float(costs.vertex_s[v])
            if best is None or end < best[0] - 1e-15:
                best = (end, u, stem_end)
        end, u, stem_end = best
        if stem_end is not None:
            stem_done[u] = stem_end
        assignment[v], finish[v], free[u] = u, end, end
    return normalize_assignment(dag, assignment, units, order=order)


def neighbour_moves(dag: nx.DiGraph, assignment: Mapping[int, int], order: list[int]) -> list[tuple[int, int]]:
    """(vertex, unit) moves worth simulating: a vertex to the unit of a neighbour, in ``order``.

    The input and output vertices stay (the stem is common, the output gathers on unit 0).
    """
    src, out = order[0], order[-1]
    moves = []
    for v in order:
        if v in (src, out):
            continue
        here = assignment[v]
        units = sorted({assignment[w] for w in dag.predecessors(v) if w != src}
                       | {assignment[w] for w in dag.successors(v)})
        moves += [(v, u) for u in units if u != here]
    return moves


def local_moves(evaluator: PlacementEvaluator, assignment: Mapping[int, int], *, budget: int,
                order: list[int] | None = None) -> tuple[dict[int, int], float]:
    """Improve ``assignment`` by single-vertex moves while the simulated latency drops.

    Moves (:func:`neighbour_moves`, vertices in ``order``: default, most critical first by
    upward rank) are tried one by one; the first that lowers the latency is kept and the
    list is rebuilt. Stops when a full pass finds nothing or ``budget`` simulator calls
    are spent.

    Returns
    -------
    (dict int -> int, float)
        The best assignment found and its simulated latency (seconds).
    """
    dag = evaluator.dag
    if order is None:
        topo = evaluator.build.order
        rank = upward_rank(dag, evaluator.costs, topo)
        order = [topo[0]] + sorted(topo[1:-1], key=lambda v: (-rank[v], v)) + [topo[-1]]
    best = dict(assignment)
    best_s = evaluator.latency(best)
    spent = 0
    improved = True
    while improved and spent < budget:
        improved = False
        for v, u in neighbour_moves(dag, best, order):
            if spent >= budget:
                break
            trial = dict(best)
            trial[v] = u
            spent += 1
            s = evaluator.latency(trial)
            if s < best_s - 1e-12:
                best, best_s, improved = trial, s, True
                break
    return best, best_s


def hypergraph_partitions(dag: nx.DiGraph, hg, units: int, eps, *, seed: int = 0,
                          prefix: str = "kahypar") -> dict[str, dict[int, int]]:
    """KaHyPar partitions of hypergraph ``hg`` of ``dag`` for every eps, by ``<prefix>-eps<eps>``."""
    return {f"{prefix}-eps{e:g}": normalize_assignment(
                dag, dict(zip(hg.vertices, partition_hypergraph(hg, units, float(e), seed=seed))), units)
            for e in eps}


def best_placement(
    dag: nx.DiGraph,
    units: int,
    costs: PlacementCosts,
    candidates: Mapping[str, Mapping[int, int]],
    *,
    moves: int | None = None,
) -> tuple[str, dict[int, int], float, dict[str, float]]:
    """The lowest simulated latency among ``candidates``, HEFT and local moves from the best.

    Parameters
    ----------
    candidates : mapping name -> assignment
        Placements to compare (e.g. ``kahypar-eps0.1``, ``paper``); ``heft`` is added.
    moves : int, optional
        Simulator calls the local moves may spend (default: one per vertex).

    Returns
    -------
    (str, dict, float, dict)
        Name of the winner (``"<candidate>+moves"`` when moves improved it), its
        normalized assignment, its simulated latency in seconds, and the simulated
        latency of every candidate by name.
    """
    check_units(units)
    evaluator = PlacementEvaluator(dag, units, costs)
    pool = dict(candidates)
    pool["heft"] = heft_assignment(dag, units, costs, order=evaluator.build.order)
    scored = {name: evaluator.latency(a) for name, a in pool.items()}
    name = min(scored, key=scored.__getitem__)  # ties: the first candidate given, HEFT last
    budget = int(round(DEFAULT_MOVES_PER_VERTEX * dag.number_of_nodes())) if moves is None else moves
    assignment, seconds = local_moves(evaluator, pool[name], budget=budget)
    if seconds < scored[name] - 1e-12:
        name += "+moves"
    return name, normalize_assignment(dag, assignment, units, order=evaluator.build.order), seconds, scored


__all__ = ["PlacementCosts", "PlacementEvaluator", "best_placement", "heft_assignment", "hypergraph_partitions",
           "local_moves", "neighbour_moves", "upward_rank"]
