"""Run directories: everything one experiment produced, written safely.

A run directory holds ``manifest.json`` and Parquet tables (``architectures.parquet``,
``scores.parquet``, ...). New directories are built aside and renamed into place, tables
are written to a temporary file and renamed, so an interrupted command never leaves a
half-written run or a corrupt table behind.
"""

from __future__ import annotations

import contextlib
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

MANIFEST = "manifest.json"
ARCHITECTURES = "architectures.parquet"


@contextlib.contextmanager
def new_run_dir(out: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``out`` only if the block succeeds.

    Raises
    ------
    CnasError
        If ``out`` exists and ``force`` is false, or its parent cannot be written.
    """
    out = Path(out)
    if out.exists() and not force:
        raise CnasError(f"{out} already exists; pass --force to replace it or choose another --out")
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


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` as Parquet atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CnasError(f"cannot write {path}: {exc.strerror}") from None


def write_json(obj: dict, path: str | Path) -> None:
    """Write ``obj`` as indented JSON atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def require_run(run: str | Path) -> Path:
    """``run`` as a Path, or a clear error if it is not a run directory."""
    run = Path(run)
    if not run.is_dir():
        raise CnasError(f"{run}: no such run directory; create one with `cnas sample --gen dp --out {run}`")
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
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CnasError(f"{path}: corrupt manifest ({exc.msg}); re-create the run with `cnas sample`") from None


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
        return load_parquet(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise CnasError(
            f"{path} is corrupt ({type(exc).__name__}); delete it and re-run `{made_by}`"
        ) from None


def read_architectures(run: str | Path) -> pd.DataFrame:
    """The ``architectures.parquet`` table of a run."""
    run = require_run(run)
    return read_table(run, ARCHITECTURES, made_by=f"cnas sample --out {run}")


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
                f"{source} has no architecture {missing[0]} (ids run 0..{len(table) - 1})"
            )
        table = table[table["arch_id"].isin(ids)]
    return [(int(r.arch_id), r.generator, row_to_dag(r)) for r in table.itertuples(index=False)]
