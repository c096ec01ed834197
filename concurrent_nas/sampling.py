"""Sample a population of architectures into one tidy table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from . import dag as dagmod
from .generators import generate, get_generator, params_json
from .errors import CnasError


def architecture_record(dag) -> dict[str, Any]:
    """The row of ``architectures.parquet`` that describes one DAG."""
    profile = dagmod.width_profile(dag)
    return {
        "arch_id": int(dag.graph["index"]),
        "generator": dag.graph["generator"],
        "params": params_json(dag.graph["params"]),
        "nodes": int(dag.graph["nodes"]),
        "seed": int(dag.graph["seed"]),
        "vertices": dag.number_of_nodes(),
        "edges": dag.number_of_edges(),
        "depth": len(profile),
        "max_width": max(profile),
        "width_profile": profile,
        "edge_list": [list(e) for e in dagmod.edge_list(dag)],
        "stage_vertices": sorted(v for v, s in dag.nodes(data="stage") if s),
    }


def sample_architectures(
    generator: str,
    count: int,
    *,
    nodes: int = 40,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    start: int = 0,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Generate ``count`` architectures and return them as one table.

    Architecture i is ``generate(generator, nodes, seed, index=i, **params)``, so any row
    can be rebuilt on its own.

    Parameters
    ----------
    generator : str
        Registered generator name.
    count : int
        Number of architectures (at least 1).
    nodes, seed, params
        As for :func:`concurrent_nas.generate`.
    start : int, default 0
        Index of the first architecture.
    progress : callable, optional
        Called with 1 after each architecture (e.g. ``tqdm.update``).

    Returns
    -------
    pandas.DataFrame
        One row per architecture; columns documented in the README.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise CnasError(f"count must be a positive integer, got {count!r}")
    spec = get_generator(generator)
    resolved = spec.resolve_params(params)
    rows = []
    for i in range(start, start + count):
        rows.append(architecture_record(generate(generator, nodes, seed, index=i, **resolved)))
        if progress is not None:
            progress(1)
    return pd.DataFrame(rows)
