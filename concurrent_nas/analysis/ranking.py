"""Ranking a run's architectures by any column of its tables (``cnas top``, ``--rank``).

:func:`ranking_tables` reads a run's result tables, :func:`top_architectures` ranks by
one column (the pure part is :func:`.tables.rank_architectures`), and
:func:`architecture_at_rank` turns a rank into an id for ``cnas compile`` and
``cnas export``. Nothing here imports matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .. import rundir
from ..errors import CnasError
from ..rundir import SCORES, Run
from . import tables as tbl


#: Tables of a run that hold no per-architecture result to rank by.
UNRANKED = (rundir.ARCHITECTURES, rundir.HISTORY, rundir.SCORE_FAILURES)


def ranking_tables(run: Run) -> dict[str, pd.DataFrame]:
    """Every result table of ``run`` by file name, as :func:`.tables.rank_architectures` takes them.

    Any Parquet table of the run directory counts (so columns later commands add can be
    ranked by), except those in :data:`UNRANKED`; scores are reduced to the best option
    per architecture and units (:func:`.tables.best_options`). Tables are in a fixed
    order: scores, latency, accuracy, estimates, params, then the others by name.
    """
    known = [SCORES, rundir.LATENCY, rundir.ACCURACY, rundir.ESTIMATES, rundir.PARAMS]
    present = sorted(p.name for p in run.path.glob("*.parquet") if p.name not in UNRANKED)
    ids = run.architectures[["arch_id", "generator", "nodes"]]
    tables = {}
    for name in [n for n in known if n in present] + [n for n in present if n not in known]:
        frame = run.read(name)
        if "arch_id" not in frame.columns:
            continue
        if name == SCORES:
            frame = tbl.best_options(frame)
        missing = [c for c in ("generator", "nodes") if c not in frame.columns]
        if missing:
            frame = frame.merge(ids[["arch_id", *missing]], on="arch_id", how="left")
        tables[name] = frame
    return tables


def top_architectures(
    run: str | Path | Run, by: str, *, k: int | None = 10, where: Sequence[str] = (), best: str | None = None,
) -> pd.DataFrame:
    """What ``cnas top`` prints: the ``k`` best architectures of a run by one column.

    Parameters
    ----------
    run : str, Path or Run
        A run directory.
    by : str
        ``COLUMN@UNITS`` (``cs@4``, ``median_ms@2``) or ``COLUMN`` (``top1``) of any of
        the run's tables (:func:`ranking_tables`); an unknown one is an error listing
        what the run offers.
    k : int or None, default 10
        How many (``None``: every architecture with a value).
    where : sequence of str
        ``COLUMN=VALUE`` filters on the same table (``placement=kahypar``, ``method=synflow``).
    best : {"low", "high"}, optional
        Which end ranks first (default: high for accuracy, estimates, entropy and
        speedups, low for everything else).

    Returns
    -------
    pandas.DataFrame
        See :func:`.tables.rank_architectures`.

    Examples
    --------
    >>> top_architectures("runs/dp40", "cs@4", k=3)       # doctest: +SKIP
    """
    if k is not None and k < 1:
        raise CnasError(f"-k must be at least 1, got {k}")
    where_map = tbl.parse_where(where)
    run = run if isinstance(run, Run) else Run(run)
    return tbl.rank_architectures(ranking_tables(run), by, k=k, where=where_map, best=best)


def architecture_at_rank(
    run: str | Path | Run, rank: int, by: str, *, where: Sequence[str] = (), best: str | None = None,
) -> int:
    """The ``arch_id`` ranked ``rank`` (1 = best) by ``by``; arguments as :func:`top_architectures`."""
    if rank < 1:
        raise CnasError(f"--rank must be at least 1, got {rank}")
    ranked = top_architectures(run, by, k=None, where=where, best=best)
    if rank > len(ranked):
        raise CnasError(f"--rank {rank}: only {len(ranked)} architectures have a value for --by {by}")
    return int(ranked.iloc[rank - 1]["arch_id"])


def best_architectures(runs: Sequence[Run], k: int = 3) -> pd.DataFrame:
    """The ``k`` lowest-CS architectures of every run and scored unit count (``summary.md``)."""
    parts = []
    for run in runs:
        tables = ranking_tables(run)
        for units in sorted(tables[SCORES]["units"].unique()):
            ranked = tbl.rank_architectures(tables, f"cs@{int(units)}", k=k).rename(columns={f"cs@{int(units)}": "cs"})
            parts.append(ranked.drop(columns="rows").assign(run=run.name, units=int(units)))
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    return out[["run", "units", "rank", "arch_id", "generator", "nodes", "cs"]]
