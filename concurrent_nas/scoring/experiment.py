"""What ``cnas score`` does, as two calls a notebook can make: :func:`score_run`, :func:`score_graph`.

:func:`score_run` owns a run directory's scoring files: ``scores.parquet``,
``score_failures.parquet``, the ``scores.json`` sidecar (fingerprint and settings, for
the up-to-date check) and the checkpoint directory that makes a run resumable. Every
input is checked before the first file is written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import dag as dagmod
from ..errors import CnasError
from ..rundir import (
    SCORE_FAILURES,
    SCORES,
    SCORES_PARTIAL,
    SCORES_SIDECAR,
    Run,
    check_output,
    check_writable,
    load_architectures,
    run_lock,
    write_json,
    write_table,
)
from .checkpoints import Checkpoints, fingerprint
from .config import DEFAULT_TIMEOUT, ScoreConfig, check_timeout, check_workers
from .partition import check_units_eps
from .records import ID_COLUMNS, architecture_records, dag_record
from .scheduler import run_scoring

FAILURE_COLUMNS = [*ID_COLUMNS, "error"]
SUMMARY_COLUMNS = ["generator", "nodes", "units", "archs", "cs_median", "cs_q25", "cs_q75", "cs_iqr"]
UNIT_BYTES_NOTE = (
    "U_c: bytes of the stem feature map (image_size^2 * stem_channels * bytes_per_element); 1 for uniform costs"
)


@dataclass
class ScoringResult:
    """What :func:`score_run` or :func:`score_graph` produced.

    Attributes
    ----------
    source : Path
        The run directory or graph file scored.
    config : ScoreConfig
        The settings used.
    table : pandas.DataFrame
        The scores, one row per (architecture, units, eps), as in ``scores.parquet``.
    failures : pandas.DataFrame
        One row per architecture that could not be scored (``arch_id``, ``generator``,
        ``nodes``, ``error``).
    path : Path or None
        Where ``table`` was written (``RUN/scores.parquet``, or ``out`` for a graph).
    seconds : float
        Time this call took to score (0 when ``cached``).
    cached : bool
        ``scores.parquet`` was already up to date; nothing was computed.
    chunks_total, chunks_resumed : int
        Checkpointed chunks of the run, and how many were found finished on disk.
    width_profile : list of int or None
        Vertices per depth level of a graph file's DAG (``None`` for a run).
    """

    source: Path
    config: ScoreConfig
    table: pd.DataFrame
    failures: pd.DataFrame
    path: Path | None = None
    seconds: float = 0.0
    cached: bool = False
    chunks_total: int = 0
    chunks_resumed: int = 0
    width_profile: list[int] | None = field(default=None, repr=False)

    def summary(self) -> pd.DataFrame:
        """:func:`summarize` of ``table``."""
        return summarize(self.table)


def score_run(
    run: str | Path | Run,
    config: ScoreConfig | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ScoringResult:
    """Score every architecture of a run directory and write ``RUN/scores.parquet``.

    Interrupted calls resume: finished chunks are kept in ``RUN/.scores-partial/`` under
    the fingerprint of the architectures and settings, and the same call skips them. A
    call whose ``scores.parquet`` is already up to date (same fingerprint, recorded in
    ``RUN/scores.json``) returns it without computing anything.

    Parameters
    ----------
    run : str, Path or Run
        A run directory made by ``cnas sample``.
    config : ScoreConfig, optional
        Scoring settings (default: ``ScoreConfig()``).
    workers : int, optional
        Local worker processes (default: all cores). Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a Dask ``distributed`` scheduler, e.g. ``tcp://host:8786``.
    timeout : float or None, default 300
        Seconds one architecture may take before it is taken for hung and left out
        (``None`` or 0: never).
    force : bool, default False
        Replace a ``scores.parquet`` made with other settings.
    progress : callable, optional
        Called with the number of architectures each time some finish.

    Returns
    -------
    ScoringResult

    Raises
    ------
    CnasError
        On a bad setting (before any file is written), on existing scores made with
        other settings without ``force``, or when the backend cannot run.

    Notes
    -----
    Local workers are spawned: a script calling this needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    config = config if config is not None else ScoreConfig()
    run = run if isinstance(run, Run) else Run(run)
    check_workers(workers)
    check_timeout(timeout)
    table = run.architectures
    _check_sizes(config, int(table["vertices"].min()))
    records = architecture_records(table)
    fp = fingerprint(records, config)
    scores_path = run.file(SCORES)
    if scores_path.exists() and not force:
        recorded = _read_sidecar(run.file(SCORES_SIDECAR)).get("fingerprint")
        if recorded is None:
            raise CnasError(f"{run.file(SCORES_SIDECAR)} is missing or corrupt, so {scores_path} cannot be "
                            "checked against these settings; pass --force to score again")
        if recorded != fp:
            raise CnasError(f"{scores_path} holds scores made with other settings; pass --force to replace it")
        failures = (run.read(SCORE_FAILURES) if run.has(SCORE_FAILURES)
                    else pd.DataFrame(columns=FAILURE_COLUMNS))
        return ScoringResult(run.path, config, run.scores, failures, scores_path, cached=True)

    check_writable(run.path, why=" (nothing was scored)")
    with run_lock(run.path, "scored"):
        return _score_locked(run, config, records, fp, workers=workers, scheduler=scheduler,
                             timeout=timeout, progress=progress)


def _score_locked(run: Run, config: ScoreConfig, records: list[dict], fp: str, *, workers, scheduler, timeout,
                  progress) -> ScoringResult:
    # Only one process at a time may use (and finally remove) the partial directory.
    scores_path = run.file(SCORES)
    started = time.perf_counter()
    partial = Checkpoints(run.file(SCORES_PARTIAL) / fp)
    outcome = run_scoring(records, config, workers=workers, scheduler=scheduler,
                          checkpoint_dir=partial.directory, progress=progress, timeout=timeout)
    scores, failures = _split(outcome.table)
    run.write(SCORES, scores)
    if len(failures):
        run.write(SCORE_FAILURES, failures)
    else:
        run.file(SCORE_FAILURES).unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    write_json(
        {
            "fingerprint": fp,
            "settings": config.describe(),
            "architectures": len(records),
            "failed": len(failures),
            "rows": len(scores),
            "chunks": outcome.chunks_total,
            "chunks_resumed": outcome.chunks_resumed,
            "seconds_this_call": round(seconds, 2),
            "scheduler": scheduler or f"local processes ({workers or 'all cores'})",
            "unit_bytes_note": UNIT_BYTES_NOTE,
        },
        run.file(SCORES_SIDECAR),
    )
    # Every chunk is in scores.parquet now; the checkpoints are no longer needed.
    partial.remove()
    try:
        run.file(SCORES_PARTIAL).rmdir()
    except OSError:
        pass  # checkpoints of other settings are still there
    return ScoringResult(run.path, config, scores, failures, scores_path, seconds,
                         chunks_total=outcome.chunks_total, chunks_resumed=outcome.chunks_resumed)


def score_graph(
    path: str | Path,
    config: ScoreConfig | None = None,
    *,
    out: str | Path | None = None,
    scheduler: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    force: bool = False,
) -> ScoringResult:
    """Score the one architecture of a node-link JSON graph file.

    Parameters
    ----------
    path : str or Path
        A networkx node-link JSON file of a DAG.
    config : ScoreConfig, optional
        Scoring settings (default: ``ScoreConfig()``).
    out : str or Path, optional
        Also write the scores to this Parquet file.
    scheduler : str, optional
        Address of a Dask ``distributed`` scheduler (default: one local worker).
    timeout : float or None, default 300
        Seconds the architecture may take (``None`` or 0: never).
    force : bool, default False
        Overwrite an existing ``out`` (otherwise it is an error, raised before scoring).

    Returns
    -------
    ScoringResult
        With ``width_profile`` of the DAG; ``path`` is ``out``. When the file names its
        vertices freely (strings, ...), the table has a ``vertex_names`` column: the
        file's ids, in the order of each row's ``parts``.
    """
    config = config if config is not None else ScoreConfig()
    check_timeout(timeout)
    if out is not None:
        check_output(out, force=force)
    (arch_id, generator, dag), = load_architectures(path)
    _check_sizes(config, dag.number_of_nodes())
    started = time.perf_counter()
    # One worker process all the same: a KaHyPar crash must not end the caller.
    table = run_scoring([dag_record(arch_id, generator, dag)], config, workers=1,
                        scheduler=scheduler, timeout=timeout).table
    names = dagmod.user_names(dag)
    if names is not None:  # the file named its vertices: say which entry of `parts` is which
        table["vertex_names"] = [[str(n) for n in names]] * len(table)
    if out is not None:
        write_table(table.drop(columns=["error"]), out)
    scores, failures = _split(table)
    return ScoringResult(Path(path), config, scores, failures, Path(out) if out is not None else None,
                         time.perf_counter() - started, width_profile=dagmod.width_profile(dag))


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Median and interquartile range of the best CS per generator, size and unit count.

    Parameters
    ----------
    table : pandas.DataFrame
        Scores as in ``scores.parquet`` (rows with ``best`` true are used).

    Returns
    -------
    pandas.DataFrame
        One row per (generator, nodes, units): ``archs``, ``cs_median``, ``cs_q25``,
        ``cs_q75``, ``cs_iqr`` and the medians of ``eta``, ``comm_norm``, ``delta_w``
        and ``entropy``.
    """
    best = table[table["best"]]
    if best.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    g = best.groupby(["generator", "nodes", "units"], sort=True)
    out = g["cs"].agg(
        archs="count",
        cs_median="median",
        cs_q25=lambda s: s.quantile(0.25),
        cs_q75=lambda s: s.quantile(0.75),
    ).reset_index()
    out["cs_iqr"] = out["cs_q75"] - out["cs_q25"]
    extra = g.agg(eta_median=("eta", "median"), comm_norm_median=("comm_norm", "median"),
                  delta_w_median=("delta_w", "median"), entropy_median=("entropy", "median")).reset_index(drop=True)
    return pd.concat([out, extra], axis=1)


def _check_sizes(config: ScoreConfig, min_vertices: int) -> None:
    # Against the smallest architecture, before any worker starts or file is written.
    for k in config.units:
        for e in config.eps:
            check_units_eps(k, e, min_vertices)


def _split(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scored rows without the ``error`` column, one row per failed architecture)."""
    failed = table["error"].notna()
    scores = table[~failed].drop(columns=["error"]).reset_index(drop=True)
    return scores, table.loc[failed, FAILURE_COLUMNS].reset_index(drop=True)


def _read_sidecar(path: Path) -> dict:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # no or damaged sidecar: the scores cannot be trusted as up to date
    return info if isinstance(info, dict) else {}
