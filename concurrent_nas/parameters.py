"""Parameter counts of whole runs under several staging modes (paper Table 4), without torch.

:func:`parameter_table` runs the shape pass of every architecture of some runs under
each staging mode; :func:`summarize` reduces it to mean and standard deviation per
generator; :func:`count_run_parameters` does both and keeps each run's per-architecture
counts in ``RUN/params.parquet`` (what ``cnas params`` does).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from .rundir import PARAMS, Run, read_architectures, row_to_dag
from .shapes import CompileSettings, plan_network


def parameter_table(
    runs: Sequence[str | Path],
    modes: Sequence[str],
    settings: CompileSettings = CompileSettings(),
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """One row per (run, architecture, staging mode).

    Parameters
    ----------
    runs : sequence of str or Path
        Run directories made by ``cnas sample``.
    modes : sequence of str
        Staging modes (:data:`~concurrent_nas.shapes.STAGING_MODES`); each replaces
        ``settings.staging`` in turn.
    settings : CompileSettings
        Every other compile setting.
    progress : callable, optional
        Called with 1 after each architecture (e.g. ``tqdm.update``).

    Returns
    -------
    pandas.DataFrame
        Columns ``run, arch_id, generator, nodes, staging, params, flops, settings`` (the
        other compile settings as JSON, so a table says what it was computed with).
    """
    rows = []
    described = {k: v for k, v in dataclasses.asdict(settings).items() if k != "staging"}
    settings_json = json.dumps(described, sort_keys=True)
    for run in runs:
        table = read_architectures(run)
        for record in table.itertuples(index=False):
            dag = row_to_dag(record)
            for mode in modes:
                plans = plan_network(dag, settings.replace(staging=mode))
                rows.append({
                    "run": str(run),
                    "arch_id": int(record.arch_id),
                    "generator": record.generator,
                    "nodes": int(record.nodes),
                    "staging": mode,
                    "params": sum(p.params for p in plans),
                    "flops": sum(p.flops for p in plans),
                    "settings": settings_json,
                })  # fmt: skip
            if progress:
                progress(1)
    return pd.DataFrame(rows)


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Count, mean and std (millions of parameters) per (generator, nodes, staging).

    Parameters
    ----------
    frame : pandas.DataFrame
        A :func:`parameter_table`.

    Returns
    -------
    pandas.DataFrame
        Columns ``generator, nodes, staging, count, mean_M, std_M``, groups in order of
        first appearance.
    """
    grouped = frame.groupby(["generator", "nodes", "staging"], sort=False)["params"]
    out = grouped.agg(count="count", mean="mean", std="std").reset_index()
    out["mean_M"] = out.pop("mean") / 1e6
    out["std_M"] = out.pop("std") / 1e6
    return out


def count_run_parameters(
    runs: Sequence[str | Path],
    modes: Sequence[str],
    settings: CompileSettings = CompileSettings(),
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`parameter_table` of ``runs``, each run's rows written to ``RUN/params.parquet``.

    Returns
    -------
    table : pandas.DataFrame
        The :func:`parameter_table` of all runs.
    summary : pandas.DataFrame
        Its :func:`summarize`.
    """
    table = parameter_table(runs, modes, settings, progress=progress)
    for run, part in table.groupby("run", sort=False):
        Run(run).write(PARAMS, part.drop(columns="run").reset_index(drop=True))
    return table, summarize(table)
