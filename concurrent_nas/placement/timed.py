"""Latency-aware placements: assignments balanced by *measured* time, ranked by the simulator.

Its own module because it needs all three of :mod:`.assign`, :mod:`.plan` and
:mod:`.simulate`, while :mod:`.plan` builds on :mod:`.assign` and :mod:`.simulate` on
:mod:`.plan`: inside :mod:`.assign` it made an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from ..errors import CnasError
from ..scoring.config import DEFAULT_EPS
from ..scoring.hypergraph import hypergraph_from_costs
from .assign import TIMED_PLACEMENTS, check_units, paper_assignment, single_assignment
from .plan import build_plan
from .search import PlacementCosts, best_placement, hypergraph_partitions
from .simulate import TransferModel, simulate


def timed_assignment(
    dag: nx.DiGraph,
    units: int,
    placement: str,
    vertex_s: Mapping[int, float],
    out_bytes: Mapping[int, int],
    image_bytes: int,
    transfer: TransferModel,
    *,
    eps=DEFAULT_EPS,
    seed: int = 0,
) -> dict[int, int]:
    """Latency-aware variants: balance *measured* time instead of FLOPs.

    FLOPs misjudge time on a CPU (a depthwise convolution or a wide merge of sigmoid'ed
    feature maps is memory-bound), so a FLOP-balanced split can leave one unit with
    three times the work of the other. ``paper-time`` runs the paper heuristic on
    measured per-vertex times; ``kahypar-time`` partitions the hypergraph weighted by
    measured time (costs still output bytes) for every ``eps`` and keeps the option the
    simulator (:mod:`.simulate`, with ``transfer``) predicts fastest. ``predicted`` keeps
    the fastest of those, ``paper-time``, everything on unit 0 and a HEFT schedule,
    improved by local moves (:func:`.search.best_placement`).

    Parameters
    ----------
    vertex_s : mapping int -> float
        Measured compute time per vertex (seconds, one unit, one thread).
    out_bytes : mapping int -> int
        Output bytes per vertex.
    image_bytes : int
        Bytes of the image (scatter).
    transfer : TransferModel
        Message cost used to rank the options.
    """
    check_units(units)
    if units == 1:
        return single_assignment(dag)
    if placement == "paper-time":
        return paper_assignment(dag, units, vertex_s)
    if placement == "predicted":
        pool = _time_partitions(dag, units, vertex_s, out_bytes, eps, seed)
        pool["paper-time"] = paper_assignment(dag, units, vertex_s)
        pool["single"] = single_assignment(dag)  # where no split pays for its messages
        costs = PlacementCosts(vertex_s, out_bytes, image_bytes, transfer)
        return best_placement(dag, units, costs, pool)[1]
    if placement != "kahypar-time":
        raise CnasError(f"unknown timed placement '{placement}'; choose one of {', '.join(TIMED_PLACEMENTS)}")
    best, best_latency = None, float("inf")
    for assignment in _time_partitions(dag, units, vertex_s, out_bytes, eps, seed).values():
        latency = simulate(build_plan(dag, assignment, units), vertex_s, out_bytes, image_bytes, transfer).latency_s
        if latency < best_latency - 1e-12:
            best, best_latency = assignment, latency
    return best


def _time_partitions(dag, units, vertex_s, out_bytes, eps, seed) -> dict[str, dict[int, int]]:
    """KaHyPar partitions weighted by measured time (costs: output bytes), by ``kahypar-time-eps<eps>``."""
    micro = {v: max(1, round(float(vertex_s[v]) * 1e6)) for v in dag}
    hg = hypergraph_from_costs(dag, micro, {v: int(out_bytes[v]) for v in dag}, kind="measured-time")
    return hypergraph_partitions(dag, hg, units, eps, seed=seed, prefix="kahypar-time")
