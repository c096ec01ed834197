"""Concurrency score of one architecture: partition for every (units, eps), measure."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
import pandas as pd

from .. import dag as dagmod
from ..errors import CnasError
from .hypergraph import CommHypergraph, build_hypergraph, smallest_edge_cost
from .metrics import (
    communication,
    concurrency_score,
    load_variability,
    longest_path_ratio,
    normalized_entropy,
    part_weights,
)
from .config import DEFAULT_EPS, DEFAULT_UNITS, ScoreConfig, as_tuple, data_unit
from .partition import DEFAULT_PARTITIONER, DEFAULT_PRESET, KahyparInput, check_units_eps, partition_hypergraph

SCORE_COLUMNS = [
    "units", "eps", "delta_w", "comm_bytes", "comm_norm", "eta", "cs", "entropy",
    "part_weights", "parts", "best", "empty_parts", "longest_path", "vertices", "unit_bytes",
]


def partition_dag(
    dag: nx.DiGraph,
    units: int,
    eps: float,
    *,
    costs: str = "flops",
    settings=None,
    seed: int = 0,
    preset: str = DEFAULT_PRESET,
    partitioner: str = DEFAULT_PARTITIONER,
) -> dict[int, int]:
    """Split ``dag`` over ``units`` units with KaHyPar: ``{vertex: part}``.

    Parameters
    ----------
    dag : networkx.DiGraph
        A validated architecture DAG.
    units : int
        Number of parts.
    eps : float
        Allowed imbalance of part weights (FLOPs, or vertex counts for uniform costs).
    costs : {"flops", "uniform"}
        Weights and costs from the shape pass, or all 1.
    settings : CompileSettings, optional
        Compile settings for the shape pass.
    seed : int, default 0
        KaHyPar seed: the same seed gives the same partition.
    preset : {"fast", "quality"}
        Shipped KaHyPar configuration.
    partitioner : {"kahypar", "mtkahypar"}, default "kahypar"
        Partitioning library (see :func:`.partition.partition_hypergraph`).
    """
    dagmod.validate(dag)
    hg = build_hypergraph(dag, costs, settings)
    parts = partition_hypergraph(hg, units, eps, seed=seed, preset=preset, partitioner=partitioner)
    return dict(zip(hg.vertices, parts))


def architecture_unit(hg: CommHypergraph, config: ScoreConfig) -> float:
    """U_c in bytes for one architecture's hypergraph under ``config``.

    ``uc="global"``: ``config.unit_bytes`` or :func:`data_unit` (the same for every
    architecture); ``uc="generator"``: the hypergraph's cheapest edge.
    """
    if config.uc == "generator":
        return smallest_edge_cost(hg)
    return config.unit_bytes if config.unit_bytes is not None else data_unit(config.costs, config.settings)


def score_hypergraph(
    hg: CommHypergraph,
    longest_path: int,
    units: Iterable[int] = DEFAULT_UNITS,
    eps: Iterable[float] = DEFAULT_EPS,
    *,
    unit_bytes: float = 1,
    a: float = 1.0,
    b: float = 1.5,
    c: float = 1.0,
    seed: int = 0,
    preset: str = DEFAULT_PRESET,
    partitioner: str = DEFAULT_PARTITIONER,
) -> pd.DataFrame:
    """Score a prepared hypergraph; see :func:`score_architecture` for the columns."""
    units = as_tuple(units, "units")
    eps = as_tuple(eps, "eps")
    for k in units:
        for e in eps:
            check_units_eps(k, e, hg.num_vertices)
    if not unit_bytes or unit_bytes <= 0:
        raise CnasError(f"unit_bytes (U_c) must be positive, got {unit_bytes!r}")
    rows = []
    n = hg.num_vertices
    prepared = KahyparInput.of(hg) if hg.hyperedges else None
    for k in units:
        eta = longest_path_ratio(longest_path, n, k)
        for e in eps:
            parts = partition_hypergraph(hg, k, e, seed=seed, preset=preset, prepared=prepared,
                                         partitioner=partitioner)
            weights = part_weights(hg.weights, parts, k)
            delta_w = load_variability(weights)
            comm = communication(hg.hyperedges, hg.costs, parts)
            comm_norm = comm / (unit_bytes * k)
            rows.append(
                {
                    "units": k,
                    "eps": float(e),
                    "delta_w": delta_w,
                    "comm_bytes": int(comm),
                    "comm_norm": comm_norm,
                    "eta": eta,
                    "cs": concurrency_score(delta_w, comm_norm, eta, a, b, c),
                    "entropy": normalized_entropy(weights),
                    "part_weights": weights,
                    "parts": parts,
                    "best": False,
                    "empty_parts": k - len(set(parts)),
                    "longest_path": int(longest_path),
                    "vertices": n,
                    "unit_bytes": unit_bytes,
                }
            )
    frame = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    # Lowest CS per unit count; ties go to the smallest eps (tighter balance).
    order = frame.sort_values(["units", "cs", "eps"], kind="stable")
    frame.loc[order.groupby("units", sort=False).head(1).index, "best"] = True
    return frame


def score_architecture(
    dag: nx.DiGraph,
    units: Iterable[int] = DEFAULT_UNITS,
    eps: Iterable[float] = DEFAULT_EPS,
    *,
    costs: str = "flops",
    settings=None,
    a: float = 1.0,
    b: float = 1.5,
    c: float = 1.0,
    seed: int = 0,
    preset: str = DEFAULT_PRESET,
    unit_bytes: float | None = None,
    uc: str = "global",
    partitioner: str = DEFAULT_PARTITIONER,
) -> pd.DataFrame:
    """Concurrency score of one architecture for every (units, eps) option (paper §3.3).

    Parameters
    ----------
    dag : networkx.DiGraph
        A validated architecture DAG (single input, single output).
    units : iterable of int, default (4, 6, 8, 10)
        Unit counts n.
    eps : iterable of float, default (0.03, 0.1, 0.2, 0.3, 0.5)
        KaHyPar imbalance bounds; every one is kept as an option.
    costs : {"flops", "uniform"}, default "flops"
        Vertex weight = FLOPs and hyperedge cost = output bytes from the shape pass
        (:func:`concurrent_nas.shapes.vertex_costs`), or all 1.
    settings : CompileSettings, optional
        Compile settings for the shape pass (default ``CompileSettings()``).
    a, b, c : float, default 1, 1.5, 1
        Exponents of ``delta_w``, ``Lambda'`` and ``eta`` in CS.
    seed : int, default 0
        KaHyPar seed; same seed, same result.
    preset : {"fast", "quality"}, default "fast"
        KaHyPar configuration shipped in ``concurrent_nas/scoring/presets``.
    unit_bytes : float, optional
        U_c; default :func:`data_unit` (the stem feature map in bytes, 1 for uniform).
    uc : {"global", "generator"}, default "global"
        ``"generator"``: U_c is the paper's smallest communication of an edge, here the
        cheapest feature map ``dag`` sends (:func:`architecture_unit`).
    partitioner : {"kahypar", "mtkahypar"}, default "kahypar"
        Partitioning library (Mt-KaHyPar in its deterministic mode; the mtkahypar extra).

    Returns
    -------
    pandas.DataFrame
        One row per (units, eps): ``units, eps, delta_w, comm_bytes`` (Lambda),
        ``comm_norm`` (Lambda' = Lambda / (U_c * n)), ``eta, cs, entropy``,
        ``part_weights`` (list, per part), ``parts`` (part of every vertex in ascending
        vertex id order), ``best`` (lowest CS of its unit count), ``empty_parts``,
        ``longest_path`` (vertices), ``vertices`` and ``unit_bytes`` (U_c).

    Examples
    --------
    >>> import concurrent_nas as cnas
    >>> from concurrent_nas.scoring import score_architecture
    >>> df = score_architecture(cnas.generate("dp", nodes=20), units=[4], eps=[0.1], costs="uniform")
    >>> list(df["units"]), bool(df["best"].all())
    ([4], True)
    """
    # The config checks every value with the flag's message (uc, unit_bytes, costs).
    config = ScoreConfig(units=units, eps=eps, costs=costs, unit_bytes=unit_bytes, uc=uc, settings=settings,
                         partitioner=partitioner)
    dagmod.validate(dag)
    hg = build_hypergraph(dag, costs, settings)
    return score_hypergraph(
        hg,
        dagmod.longest_path_vertices(dag),
        config.units,
        config.eps,
        unit_bytes=architecture_unit(hg, config),
        a=a,
        b=b,
        c=c,
        seed=seed,
        preset=preset,
        partitioner=partitioner,
    )
