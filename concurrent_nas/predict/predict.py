"""Predicted latency of an architecture on a device profile: :func:`predict_latency`.

Block times come from the profile's compute model (FLOPs and bytes moved per block, from
the shape pass), message times from its links; the placement is the one with the lowest
simulated latency among KaHyPar partitions, the paper's greedy and a HEFT list schedule,
improved by local moves (:mod:`concurrent_nas.placement.search`). Labelled ``predicted``:
no tensor is built and nothing is run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx

from ..placement.assign import check_units, paper_assignment, single_assignment
from ..placement.search import PlacementCosts, best_placement, hypergraph_partitions
from ..placement.simulate import TransferModel
from ..scoring.config import DEFAULT_EPS
from ..scoring.hypergraph import build_hypergraph
from ..shapes import CompileSettings, plan_network
from .profiles import DeviceProfile, load_profile


@dataclass(frozen=True)
class LatencyPrediction:
    """What :func:`predict_latency` predicts for one (architecture, units, profile).

    Attributes
    ----------
    units : int
        Units asked for (some may stay idle when that is faster).
    profile : str
        Name of the device profile.
    pred_latency_ms : float
        Predicted latency of one inference with the chosen placement.
    single_ms : float
        Predicted latency of the same network on one unit (the sum of its block times).
    pred_speedup : float
        ``single_ms / pred_latency_ms``.
    cp_ms : float
        Critical path: the heaviest input-to-output path in block times. No placement on
        units of this kind gets below it.
    cp_bound : float
        ``single_ms / cp_ms``, the speed-up no placement can exceed.
    placement : str
        Which candidate won (``kahypar-eps0.1``, ``paper``, ``heft``; ``+moves`` when
        local moves improved it).
    assignment : tuple of int
        Unit of every vertex in ascending vertex id (output vertex on unit 0).
    candidates_ms : dict str -> float
        Predicted latency of every candidate before local moves.
    """

    units: int
    profile: str
    pred_latency_ms: float
    single_ms: float
    pred_speedup: float
    cp_ms: float
    cp_bound: float
    placement: str
    assignment: tuple[int, ...]
    candidates_ms: dict = field(default_factory=dict, compare=False)

    def row(self) -> dict:
        """The prediction as a table row (``candidates_ms`` left out)."""
        return {"units": self.units, "profile": self.profile, "pred_latency_ms": self.pred_latency_ms,
                "single_ms": self.single_ms, "pred_speedup": self.pred_speedup, "cp_ms": self.cp_ms,
                "cp_bound": self.cp_bound, "placement": self.placement, "assignment": list(self.assignment)}


def bytes_moved(plan, bytes_per_element: int) -> int:
    """Bytes a block moves: its inputs, its weights and its output (a shape-pass plan)."""
    return (sum(c * s * s for c, s in plan.in_shapes) + plan.params) * bytes_per_element + plan.out_bytes


def block_seconds(dag: nx.DiGraph, profile: DeviceProfile, settings: CompileSettings | None = None, plans=None):
    """Per-vertex compute seconds under ``profile``, output bytes and image bytes.

    Bytes moved by a block are its inputs, its output and its weights (all in
    ``settings.bytes_per_element``). ``plans``: the DAG's shape pass when the caller has it.

    Returns
    -------
    (dict int -> float, dict int -> int, int)
    """
    settings = settings if settings is not None else CompileSettings()
    bpe = settings.bytes_per_element
    seconds, out_bytes = {}, {}
    for p in plans if plans is not None else plan_network(dag, settings):
        seconds[p.vertex] = profile.compute.seconds(p.flops, bytes_moved(p, bpe))
        out_bytes[p.vertex] = p.out_bytes
    image_bytes = settings.in_channels * settings.image_size ** 2 * bpe
    return seconds, out_bytes, image_bytes


def placement_costs(dag: nx.DiGraph, units: int, profile: DeviceProfile,
                    settings: CompileSettings | None = None, plans=None) -> PlacementCosts:
    """What the placement search needs from ``profile`` for ``dag`` on ``units`` units."""
    vertex_s, out_bytes, image_bytes = block_seconds(dag, profile, settings, plans)
    link = profile.link
    transfer = TransferModel(link.latency_s, link.bandwidth_Bps, link.send_cpu_s, source=f"profile {profile.name}",
                             wake_s=link.wake_s)
    hops = None
    if link.topology != "switch":
        table = profile.hops(units)
        hops = lambda a, b: table[(a, b)]  # noqa: E731 -- a lookup, named by the field it fills
    return PlacementCosts(vertex_s, out_bytes, image_bytes, transfer, hops)


def critical_path_s(dag: nx.DiGraph, vertex_s: Mapping[int, float]) -> float:
    """Heaviest input-to-output path, weighted by vertex time (seconds)."""
    longest: dict[int, float] = {}
    for v in nx.topological_sort(dag):
        longest[v] = float(vertex_s[v]) + max((longest[p] for p in dag.predecessors(v)), default=0.0)
    return max(longest.values())


def kahypar_candidates(dag: nx.DiGraph, units: int, settings=None, eps=DEFAULT_EPS,
                       seed: int = 0) -> dict[str, dict[int, int]]:
    """KaHyPar partitions (FLOP weights, byte costs) for every eps, by ``kahypar-eps<eps>``."""
    return hypergraph_partitions(dag, build_hypergraph(dag, "flops", settings), units, eps, seed=seed)


def predict_latency(
    dag: nx.DiGraph,
    units: int,
    profile: DeviceProfile | str,
    *,
    settings: CompileSettings | None = None,
    candidates: Mapping[str, Mapping[int, int]] | None = None,
    eps=DEFAULT_EPS,
    seed: int = 0,
    moves: int | None = None,
) -> LatencyPrediction:
    """Predicted single-input latency of ``dag`` on ``units`` units of ``profile``.

    Parameters
    ----------
    dag : networkx.DiGraph
        Architecture.
    units : int
        Units to place it on (at most the profile's).
    profile : DeviceProfile or str
        A profile, a shipped profile's name (``paper``, ``edge``) or a TOML file.
    settings : CompileSettings, optional
        How the DAG becomes a network (default ``CompileSettings()``).
    candidates : mapping name -> assignment, optional
        Placements to start from, e.g. a scored run's partitions. Default: KaHyPar
        partitions for every ``eps``. The paper's greedy, everything on one unit and HEFT
        are always added, so ``pred_speedup >= 1``.
    eps : sequence of float
        Imbalance bounds of the KaHyPar candidates (when ``candidates`` is not given).
    seed : int
        KaHyPar seed.
    moves : int, optional
        Simulator calls the local moves may spend (default: one per vertex).

    Returns
    -------
    LatencyPrediction

    Raises
    ------
    CnasError
        A bad profile or unit count, or more units than the profile has.

    Examples
    --------
    >>> from concurrent_nas import generate, predict_latency
    >>> p = predict_latency(generate("dp", 20, seed=1), 4, "paper")
    >>> p.pred_speedup <= p.cp_bound + 1e-9
    True
    """
    profile = load_profile(profile)
    check_units(units)
    profile.check_units(units)
    settings = settings if settings is not None else CompileSettings()
    plans = plan_network(dag, settings)
    costs = placement_costs(dag, units, profile, settings, plans)
    single_s = sum(costs.vertex_s.values())
    cp_s = critical_path_s(dag, costs.vertex_s)
    if units == 1:
        pool = {"single": single_assignment(dag)}
    else:
        pool = dict(kahypar_candidates(dag, units, settings, eps, seed) if candidates is None else candidates)
        flops = {p.vertex: float(p.flops) for p in plans}
        pool["paper"] = paper_assignment(dag, units, flops)
        pool["single"] = single_assignment(dag)  # splitting must pay for itself: never slower than one unit
    name, assignment, seconds, scored = best_placement(dag, units, costs, pool, moves=0 if units == 1 else moves)
    return LatencyPrediction(
        units=units, profile=profile.name, pred_latency_ms=seconds * 1e3, single_ms=single_s * 1e3,
        pred_speedup=single_s / seconds, cp_ms=cp_s * 1e3, cp_bound=single_s / cp_s, placement=name,
        assignment=tuple(assignment[v] for v in sorted(dag)),
        candidates_ms={k: v * 1e3 for k, v in scored.items()},
    )
