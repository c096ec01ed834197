"""Predicted latency of every scored architecture of a run: what ``cnas score --profile`` adds.

The KaHyPar partitions are the ones ``cnas score`` already found (every eps of every unit
count), so predicting costs the simulator calls, not a second round of partitioning.
Rows go to ``RUN/predicted.parquet``, one per (architecture, units, profile); the
lowest-CS partition's own predicted latency is kept beside the chosen one
(``kahypar_best_ms``) and so is the paper's greedy (``paper_ms``).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from ..errors import CnasError
from ..rundir import load_architectures, upsert_table
from ..shapes import CompileSettings
from .predict import predict_latency
from .profiles import DeviceProfile, load_profile

#: Table of predictions in a run directory.
PREDICTED = "predicted.parquet"
#: What makes it.
MADE_BY = "cnas score --profile"
KEY = ["arch_id", "units", "profile"]


def _candidates(rows: list[tuple], vertices: list[int]) -> tuple[dict, str | None]:
    """Scored partitions (``(cs, eps, parts)`` rows) of one (architecture, units) by name, lowest CS first."""
    pool = {}
    for cs, eps, parts in sorted(rows, key=lambda r: (r[0], r[1])):
        pool[f"kahypar-eps{float(eps):g}"] = dict(zip(vertices, (int(p) for p in parts)))
    return pool, next(iter(pool), None)


def predict_architecture(arch_id: int, generator: str, dag, scores: pd.DataFrame, profile: DeviceProfile,
                         settings: CompileSettings, units: tuple[int, ...], moves: int | None = None) -> list[dict]:
    """Prediction rows of one architecture for each unit count, from its scored partitions."""
    vertices = sorted(dag)
    scored = list(zip(scores["units"].tolist(), scores["cs"].tolist(), scores["eps"].tolist(), scores["parts"]))
    rows = []
    for n in units:
        pool, best = _candidates([r[1:] for r in scored if r[0] == n], vertices)
        if not pool:
            raise CnasError(f"architecture {arch_id} has no scores for {n} units; run `cnas score` with --units {n}")
        p = predict_latency(dag, n, profile, settings=settings, candidates=pool, moves=moves)
        row = {"arch_id": arch_id, "generator": generator, **p.row(),
               "kahypar_best_ms": p.candidates_ms[best], "paper_ms": p.candidates_ms["paper"]}
        rows.append(row)
    return rows


def _task(args):
    return predict_architecture(*args)


def predict_scores(
    source: str | Path,
    scores: pd.DataFrame,
    profile: DeviceProfile | str,
    *,
    settings: CompileSettings | None = None,
    units: tuple[int, ...] | None = None,
    workers: int | None = None,
    moves: int | None = None,
    write: bool = True,
) -> pd.DataFrame:
    """Predict every architecture of ``source`` on ``profile`` from its scores.

    Parameters
    ----------
    source : str or Path
        Run directory or JSON graph that ``scores`` belong to.
    scores : pandas.DataFrame
        Scores as ``cnas score`` writes them (``arch_id``, ``units``, ``eps``, ``cs``, ``parts``).
    profile : DeviceProfile or str
        Profile, shipped name or TOML file.
    settings : CompileSettings, optional
        The compile settings the scores were made with.
    units : tuple of int, optional
        Unit counts (default: every count in ``scores``).
    workers : int, optional
        Processes (default: all cores; 1: this process).
    write : bool
        Upsert the rows into ``RUN/predicted.parquet`` (run directories only).

    Returns
    -------
    pandas.DataFrame
        One row per (architecture, units): ``pred_latency_ms``, ``single_ms``,
        ``pred_speedup``, ``cp_ms``, ``cp_bound``, ``placement``, ``assignment``,
        ``kahypar_best_ms``, ``paper_ms``.
    """
    profile = load_profile(profile)
    units = tuple(sorted({int(u) for u in scores["units"]})) if units is None else tuple(units)
    for n in units:
        profile.check_units(n)
    settings = settings if settings is not None else CompileSettings()
    archs = load_architectures(source)
    by_arch = dict(tuple(scores.groupby("arch_id")))
    tasks = [(a, g, dag, by_arch[a], profile, settings, units, moves) for a, g, dag in archs if a in by_arch]
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(tasks) < 2:
        results = [_task(t) for t in tasks]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_task, tasks, chunksize=max(1, len(tasks) // (4 * workers))))
    table = pd.DataFrame([row for rows in results for row in rows])
    if write and Path(source).is_dir() and len(table):
        upsert_table(source, PREDICTED, table, KEY, made_by=MADE_BY)
    return table
