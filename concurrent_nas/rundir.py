"""Run directories: everything one experiment produced, written safely.

A run directory holds ``manifest.json`` and Parquet tables (``architectures.parquet``,
``scores.parquet``, ...). New directories are built aside and renamed into place, tables
are written to a temporary file and renamed, so an interrupted command never leaves a
half-written run or a corrupt table behind.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pandas as pd

from . import dag as dagmod
from .errors import CnasError
from .files import atomic_output, check_output, check_place, check_writable, unlink_quietly  # noqa: F401 (re-exported: the run's writers)

# Every file of a run directory is named here and nowhere else.
MANIFEST = "manifest.json"
ARCHITECTURES = "architectures.parquet"
SCORES = "scores.parquet"
SCORE_FAILURES = "score_failures.parquet"
SCORES_SIDECAR = "scores.json"
SCORES_PARTIAL = ".scores-partial"
LATENCY = "latency.parquet"
ACCURACY = "accuracy.parquet"
HISTORY = "history.parquet"
PARAMS = "params.parquet"
ESTIMATES = "estimates.parquet"
CHECKPOINTS = "checkpoints"

#: The columns every reader of a table may rely on (a table lacking one is refused).
REQUIRED_COLUMNS = {
    ARCHITECTURES: ("arch_id", "generator", "params", "nodes", "seed", "vertices", "width_profile", "edge_list"),
    SCORES: ("arch_id", "generator", "nodes", "units", "eps", "cs", "comm_bytes", "entropy"),
    LATENCY: ("arch_id", "generator", "nodes", "units", "median_ms"),
    ACCURACY: ("arch_id", "generator", "nodes", "dataset", "top1"),
    ESTIMATES: ("arch_id", "generator", "nodes", "method", "estimate"),
}


@contextlib.contextmanager
def new_run_dir(out: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``out`` only if the block succeeds.

    Raises
    ------
    CnasError
        If ``out`` exists and ``force`` is false, or its parent cannot be written.
    """
    out = check_place(out)
    if out.exists() and not force:
        raise CnasError(f"{out} already exists; pass --force to replace it or choose another --out-dir")
    if out.exists() and not out.is_dir():
        raise CnasError(f"{out} exists and is not a directory")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise CnasError(f"cannot write to {parent}: {exc.strerror}; choose a writable --out") from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def run_lock(run: str | Path, activity: str) -> Iterator[Path]:
    """Hold ``RUN/.<activity>.lock`` (holding the owner's pid) while the block runs.

    A second command doing the same thing to the same run is refused with the pid that
    holds the lock, before it touches any file. A lock left by a killed process (its pid
    no longer runs) is taken over.

    Parameters
    ----------
    run : str or Path
        The run directory.
    activity : str
        What the holder does, in the lock's name and the message ("scored", ...).

    Raises
    ------
    CnasError
        If a running process holds the lock, or the lock cannot be written.
    """
    path = Path(run) / f".{activity}.lock"
    mine = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        mine.write_text(f"{os.getpid()}\n")
        # link() is atomic and fails if the lock exists, so the lock is never seen empty.
        for _ in range(2):
            try:
                os.link(mine, path)
                break
            except FileExistsError:
                owner = _lock_owner(path)
                if owner is not None and _pid_runs(owner):
                    raise CnasError(
                        f"{run} is already being {activity} by pid {owner}; wait for it to finish or stop it"
                    ) from None
                unlink_quietly(path)  # its owner is gone: a kill left it behind
        else:
            raise CnasError(f"{run} is already being {activity} by another process (lock {path})")
    except OSError as exc:
        raise CnasError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        unlink_quietly(mine)
    try:
        remove_stale_temporaries(run)
        yield path
    finally:
        unlink_quietly(path)


def remove_stale_temporaries(run: str | Path) -> list[Path]:
    """Delete the ``.NAME.PID.tmp`` files under ``run`` whose writer (PID) no longer runs.

    Only a SIGKILL leaves one (every other ending removes it, see
    :func:`~concurrent_nas.files.atomic_output`); no reader ever opens one, so this is
    tidying, done whenever a command takes the run's lock.

    Returns
    -------
    list of Path
        The files removed.
    """
    removed = []
    for path in Path(run).rglob(".*.tmp"):
        pid = path.name[: -len(".tmp")].rpartition(".")[2]
        if path.is_file() and pid.isdigit() and not _pid_runs(int(pid)):
            unlink_quietly(path)
            removed.append(path)
    return removed


def _lock_owner(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return pid != 0


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` as Parquet atomically (temporary file, then rename)."""
    with atomic_output(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_json(obj: dict, path: str | Path) -> None:
    """Write ``obj`` as indented JSON atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def upsert_table(run: str | Path, name: str, rows: pd.DataFrame, keys: list[str], *, made_by: str) -> pd.DataFrame:
    """Replace the rows of table ``name`` that share ``keys`` with ``rows``; write atomically.

    The table is sorted by ``keys``; ``made_by`` names the command in the error for a
    damaged table.
    """
    path = Path(run) / name
    if path.exists():
        old = read_table(run, name, made_by=made_by)
        missing = [k for k in keys if k not in old.columns]
        if missing and len(old):  # replacing it would silently drop every row it holds
            raise CnasError(f"{path} is damaged (lacks column(s) {', '.join(missing)}); "
                            f"move it aside and re-run `{made_by}`")
        if len(old):
            drop = pd.MultiIndex.from_frame(old[keys]).isin(pd.MultiIndex.from_frame(rows[keys]))
            old = old[~drop]
            rows = pd.concat([old, rows], ignore_index=True) if len(old) else rows
    table = rows.sort_values(keys, kind="stable").reset_index(drop=True)
    write_table(table, path)
    return table


def require_run(run: str | Path) -> Path:
    """``run`` as a Path, or a clear error if it is not a run directory."""
    run = Path(run)
    if run.exists() and not run.is_dir():
        raise CnasError(f"{run} is a file, not a run directory; give the directory `cnas sample` made")
    if not run.is_dir():
        raise CnasError(f"{run}: no such run directory; create one with `cnas sample --gen dp --out-dir {run}`")
    if not (run / ARCHITECTURES).exists():
        raise CnasError(
            f"{run}: not a run directory (no {ARCHITECTURES}); create one with `cnas sample`"
        )
    return run


def read_manifest(run: str | Path) -> dict:
    """The run's ``manifest.json`` as a dict (empty if the run has none)."""
    path = Path(run) / MANIFEST
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise CnasError(f"{path}: corrupt manifest ({reason}); re-create the run with `cnas sample`") from None
    except OSError as exc:
        raise CnasError(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(manifest, dict):
        raise CnasError(f"{path}: corrupt manifest (not a JSON object); re-create the run with `cnas sample`")
    return manifest


def load_parquet(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet file into a frame (all columns, or ``columns``).

    Through ``pyarrow.parquet.read_table``, not ``pandas.read_parquet``: with pandas 2.3
    and pyarrow 26, a process that had called ``pandas.read_parquet`` aborted as it
    exited ("terminate called without an active exception", exit code 134) in 22 of 60
    runs on a loaded machine; read this way, in none of 50.
    """
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=columns).to_pandas()


def read_table(run: str | Path, name: str, *, made_by: str) -> pd.DataFrame:
    """Read table ``name`` of a run with clear errors for missing or corrupt files.

    Parameters
    ----------
    made_by : str
        The command that produces the table, named in the error message.
    """
    path = Path(run) / name
    if not path.exists():
        raise CnasError(f"{run} has no {name}; produce it with `{made_by}`")
    try:
        frame = load_parquet(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise CnasError(
            f"{path} is corrupt ({type(exc).__name__}); delete it and re-run `{made_by}`"
        ) from None
    problem = schema_problem(name, frame)
    if problem:
        raise CnasError(f"{path} is damaged ({problem}); re-create it with `{made_by}`")
    return frame


def schema_problem(name: str, frame: pd.DataFrame) -> str:
    """What is wrong with table ``name``'s columns, or ``""``: the one check every reader shares.

    Required columns (:data:`REQUIRED_COLUMNS`) must be there and ``arch_id`` must hold
    integers; ``architectures.parquet`` must also have rows, unique ids and JSON
    parameters.
    """
    missing = [c for c in REQUIRED_COLUMNS.get(name, ()) if c not in frame.columns]
    if missing:
        return f"lacks column(s) {', '.join(missing)}"
    if "arch_id" in frame.columns and len(frame) and not pd.api.types.is_integer_dtype(frame["arch_id"]):
        return f"arch_id holds {frame['arch_id'].dtype} values, not integers"
    if name != ARCHITECTURES:
        return ""
    if frame.empty:
        return "no architectures"
    duplicated = frame["arch_id"][frame["arch_id"].duplicated()]
    if len(duplicated):
        return f"arch_id {int(duplicated.iloc[0])} appears more than once"
    for arch_id, params in zip(frame["arch_id"], frame["params"]):
        try:
            if not isinstance(json.loads(params), dict):
                raise ValueError
        except (TypeError, ValueError):
            return f"params of architecture {int(arch_id)} is not a JSON object"
    return ""


def read_architectures(run: str | Path) -> pd.DataFrame:
    """The ``architectures.parquet`` table of a run."""
    run = require_run(run)
    return read_table(run, ARCHITECTURES, made_by=f"cnas sample --out-dir {run}")


def row_to_dag(row) -> nx.DiGraph:
    """Rebuild the DAG of one ``architectures.parquet`` row (a Series or namedtuple)."""
    get = row.get if hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)
    stage_vertices = get("stage_vertices")
    dag = dagmod.from_edge_list(get("edge_list"), [] if stage_vertices is None else stage_vertices)
    dag.graph.update(
        generator=get("generator"),
        params=json.loads(get("params")),
        nodes=int(get("nodes")),
        seed=int(get("seed")),
        index=int(get("arch_id")),
    )
    if "scaling" in dag.graph["params"]:  # fb's and fb-randwire's: the shape pass reads it
        dag.graph["scaling"] = dag.graph["params"]["scaling"]
    return dag


def load_architectures(
    source: str | Path, ids: list[int] | None = None
) -> list[tuple[int, str, nx.DiGraph]]:
    """Architectures of a run directory, or the one architecture of a JSON graph file.

    Returns
    -------
    list of (arch_id, generator, networkx.DiGraph)
    """
    from .graphjson import read_graph

    source = Path(source)
    if source.is_file() or source.suffix == ".json":
        dag = read_graph(source)
        return [(0, dag.graph.get("generator", "custom"), dag)]
    table = read_architectures(source)
    if ids is not None:
        missing = sorted(set(ids) - set(table["arch_id"]))
        if missing:
            raise CnasError(
                f"{source} has no architecture {missing[0]} (ids run "
                f"{int(table['arch_id'].min())}..{int(table['arch_id'].max())})"
            )
        table = table[table["arch_id"].isin(ids)]
    return [(int(r.arch_id), r.generator, row_to_dag(r)) for r in table.itertuples(index=False)]


class Run:
    """One run directory and its tables: the one way in for commands, reports and notebooks.

    Tables are read on first access and checked once: a missing required table, an
    empty one, or one that lacks a column the package relies on is a one-line
    :class:`CnasError` naming the file and the command that makes it.

    Parameters
    ----------
    path : str or Path
        A run directory made by ``cnas sample``.

    Examples
    --------
    >>> run = Run("runs/dp40")                           # doctest: +SKIP
    >>> run.architectures.head()                         # doctest: +SKIP
    >>> dag = run.dag(3)                                 # networkx.DiGraph of architecture 3
    >>> parts = run.best_parts(3, units=4)               # {vertex: unit} of its lowest-CS option
    """

    def __init__(self, path: str | Path):
        self.path = require_run(path)
        #: Label of the run in concatenated tables (the report makes duplicates unique).
        self.name = self.path.name

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -- tables ---------------------------------------------------------------------
    def file(self, name: str) -> Path:
        """Path of file ``name`` (one of the module's table constants) in this run."""
        return self.path / name

    def has(self, name: str) -> bool:
        """Whether the run holds file ``name``."""
        return self.file(name).exists()

    def made_by(self, name: str) -> str:
        """The command that produces table ``name`` of this run."""
        if name == ARCHITECTURES:
            return self.manifest.get("command") or f"cnas sample --out-dir {self.path}"
        command = {SCORES: "score", LATENCY: "latency", ACCURACY: "train", HISTORY: "train", PARAMS: "params",
                   ESTIMATES: "estimate"}
        return f"cnas {command.get(name, 'sample')} {self.path}"

    def read(self, name: str, *, required: bool = True) -> pd.DataFrame | None:
        """Table ``name``, checked: present (unless not ``required``), not empty, its columns.

        Returns
        -------
        pandas.DataFrame or None
            ``None`` only when the table is absent and not ``required``.
        """
        made_by = self.made_by(name)
        if not self.has(name):
            if not required:
                return None
            raise CnasError(f"{self.path} has no {name}; produce it with `{made_by}`")
        frame = read_table(self.path, name, made_by=made_by)
        if frame.empty:
            raise CnasError(f"{self.file(name)} has no rows; delete it and re-run `{made_by}`")
        return frame

    def write(self, name: str, frame: pd.DataFrame) -> Path:
        """Write table ``name`` atomically and forget any cached copy; returns its path."""
        write_table(frame, self.file(name))
        self.__dict__.pop(_CACHED.get(name, ""), None)
        return self.file(name)

    @functools.cached_property
    def manifest(self) -> dict:
        """``manifest.json`` as a dict (empty if the run has none)."""
        return read_manifest(self.path)

    @functools.cached_property
    def architectures(self) -> pd.DataFrame:
        """``architectures.parquet``: one row per architecture (required)."""
        return self.read(ARCHITECTURES)

    @functools.cached_property
    def scores(self) -> pd.DataFrame:
        """``scores.parquet``: one row per architecture, units and eps (required)."""
        return self.read(SCORES)

    @functools.cached_property
    def latency(self) -> pd.DataFrame | None:
        """``latency.parquet`` or ``None`` when the run has not been measured."""
        return self.read(LATENCY, required=False)

    @functools.cached_property
    def accuracy(self) -> pd.DataFrame | None:
        """``accuracy.parquet`` or ``None`` when the run has not been trained."""
        return self.read(ACCURACY, required=False)

    @functools.cached_property
    def score_settings(self) -> dict:
        """The scoring settings recorded in ``scores.json`` (empty if absent or unreadable)."""
        try:
            info = json.loads(self.file(SCORES_SIDECAR).read_text())
        except (OSError, ValueError):
            return {}
        settings = info.get("settings") if isinstance(info, dict) else None
        return settings if isinstance(settings, dict) else {}

    # -- architectures ----------------------------------------------------------------
    def ids(self) -> list[int]:
        """Architecture ids of the run, ascending."""
        return sorted(int(i) for i in self.architectures["arch_id"])

    def dag(self, arch_id: int) -> nx.DiGraph:
        """The DAG of architecture ``arch_id``."""
        rows = self.architectures[self.architectures["arch_id"] == arch_id]
        if rows.empty:
            ids = self.ids()
            raise CnasError(f"{self.path} has no architecture {arch_id} (ids {ids[0]}..{ids[-1]})")
        return row_to_dag(rows.iloc[0])

    def best_parts(self, arch_id: int, units: int) -> dict[int, int] | None:
        """``{vertex: unit}`` of the lowest-CS option scored for ``arch_id`` on ``units``.

        ``None`` when the run has no scores, or none for that architecture and unit count.
        Ties in CS go to the smaller eps, as ``cnas score`` marks them.
        """
        if not self.has(SCORES):
            return None
        scores = self.scores
        rows = scores[(scores["arch_id"] == arch_id) & (scores["units"] == units)]
        if rows.empty or "parts" not in rows.columns:
            return None
        if "best" in rows.columns and rows["best"].any():
            row = rows[rows["best"]].iloc[0]
        else:
            row = rows.sort_values(["cs", "eps"], kind="stable").iloc[0]
        vertices = sorted(self.dag(arch_id))
        parts = [int(p) for p in row["parts"]]
        if len(parts) != len(vertices):
            return None
        return dict(zip(vertices, parts))

    def load(self) -> "Run":
        """Read and check every table a report needs now (scores required); returns self."""
        for attr in ("architectures", "scores", "latency", "accuracy", "score_settings"):
            getattr(self, attr)
        return self


#: Cached attribute of :class:`Run` holding each table, dropped when it is rewritten.
_CACHED = {ARCHITECTURES: "architectures", SCORES: "scores", LATENCY: "latency", ACCURACY: "accuracy"}


def load_run(path: str | Path) -> Run:
    """A :class:`Run` with the tables of a report read and checked (scores required)."""
    return Run(path).load()
