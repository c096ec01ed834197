"""Architectures as plain-data records (what workers receive) and the rows they return.

A record is a small dict (``arch_id``, ``generator``, ``nodes``, ``edge_list``,
``stage_vertices``, ``scaling``) that pickles cheaply and hashes stably; :func:`score_records` turns
records into the rows of ``scores.parquet`` (one per architecture, units and eps), or
one error row for an architecture that could not be scored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd

from .. import dag as dagmod
from .config import ScoreConfig
from .hypergraph import build_hypergraph
from .score import SCORE_COLUMNS, architecture_unit, score_hypergraph

ID_COLUMNS = ["arch_id", "generator", "nodes"]
RESULT_COLUMNS = [*ID_COLUMNS, *SCORE_COLUMNS, "max_width", "error"]
#: The keys of a record, in the order they are hashed (see :func:`.checkpoints.fingerprint`).
RECORD_KEYS = ["arch_id", "generator", "nodes", "edge_list", "stage_vertices", "scaling"]


def record(arch_id, generator, nodes, edge_list, stage_vertices, scaling=dagmod.SCALINGS[0]) -> dict:
    """One record, every number a plain ``int`` (tables hand out numpy scalars).

    ``scaling`` is the DAG's ``graph["scaling"]`` (see :mod:`concurrent_nas.dag`).
    """
    return {
        "arch_id": int(arch_id),
        "generator": str(generator),
        "nodes": int(nodes),
        "edge_list": [[int(u), int(v)] for u, v in edge_list],
        "stage_vertices": [int(v) for v in stage_vertices],
        "scaling": str(scaling),
    }


def architecture_records(table: pd.DataFrame) -> list[dict]:
    """Plain-data records (what workers receive) from an ``architectures.parquet`` table."""
    return [
        record(row.arch_id, row.generator, row.nodes, row.edge_list,
               [] if getattr(row, "stage_vertices", None) is None else row.stage_vertices,
               # fb's and fb-randwire's generator parameter; rundir.row_to_dag reads it the same way
               json.loads(getattr(row, "params", None) or "{}").get("scaling", dagmod.SCALINGS[0]))
        for row in table.itertuples(index=False)
    ]


def dag_record(arch_id: int, generator: str, dag) -> dict:
    """Plain-data record of one DAG (e.g. read from a node-link JSON file)."""
    stages = sorted(v for v, s in dag.nodes(data="stage") if s)
    return record(arch_id, generator, dagmod.block_count(dag), dagmod.edge_list(dag), stages,
                  dag.graph.get("scaling", dagmod.SCALINGS[0]))


def error_row(rec: dict, message: str) -> pd.DataFrame:
    """The one row of an architecture that was not scored (pass it through :func:`tidy`)."""
    row = {c: None for c in RESULT_COLUMNS}
    row.update({k: rec[k] for k in ID_COLUMNS}, error=message, best=False)
    return pd.DataFrame([row])


def score_records(records: Sequence[dict], config: ScoreConfig) -> pd.DataFrame:
    """Score plain-data architecture records; runs inside a worker.

    An architecture that raises (bad graph, shape pass error, partitioner error) gets one
    row with its ``error`` message instead of scores; the others are unaffected.
    """
    frames = []
    for rec in records:
        try:
            dag = dagmod.from_edge_list(rec["edge_list"], rec["stage_vertices"])
            dag.graph["scaling"] = rec["scaling"]
            hg = build_hypergraph(dag, config.costs, config.settings)
            frame = score_hypergraph(
                hg,
                dagmod.longest_path_vertices(dag),
                config.units,
                config.eps,
                unit_bytes=architecture_unit(hg, config),
                a=config.a,
                b=config.b,
                c=config.c,
                seed=config.seed,
                preset=config.preset,
                partitioner=config.partitioner,
            )
            for key in reversed(ID_COLUMNS):
                frame.insert(0, key, rec[key])
            frame["max_width"] = dagmod.max_width(dag)
            frame["error"] = None
        except Exception as exc:  # one bad architecture must not end the chunk
            frame = error_row(rec, f"{type(exc).__name__}: {exc}")
        frames.append(frame)
    return tidy(pd.concat(frames, ignore_index=True))


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Fixed column order and dtypes, so chunks concatenate into one clean table."""
    frame = frame.reindex(columns=RESULT_COLUMNS)
    ints = ["arch_id", "nodes", "units", "comm_bytes", "empty_parts", "longest_path", "vertices", "max_width"]
    floats = ["eps", "delta_w", "comm_norm", "eta", "cs", "entropy", "unit_bytes"]
    for col in ints:
        frame[col] = frame[col].astype("Int64")
    for col in floats:
        frame[col] = frame[col].astype("float64")
    frame["best"] = frame["best"].fillna(False).astype(bool)
    frame["generator"] = frame["generator"].astype(str)
    frame["error"] = frame["error"].astype(object).where(frame["error"].notna(), None)
    return frame
