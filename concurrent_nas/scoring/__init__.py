"""Concurrency score (paper §3.3): how well an architecture distributes over n units.

The DAG becomes a hypergraph (:mod:`.hypergraph`: vertex weight = FLOPs, hyperedge
``{v} ∪ successors(v)`` costing the bytes of v's output), KaHyPar partitions it for each
(units, eps) (:mod:`.partition`), and :mod:`.metrics` turns each partition into
``delta_w``, ``Lambda``, ``eta``, CS and the entropy of part weights.

Whole runs: :mod:`.config` (the settings, :class:`ScoreConfig`), :mod:`.records`
(architectures as plain data, rows back), :mod:`.checkpoints` (finished chunks on
disk), :mod:`.backends` (a local process pool or a Dask cluster), :mod:`.scheduler`
(chunks, crashes, hangs: :func:`run_scoring`) and :mod:`.experiment` (what
``cnas score`` does: :func:`score_run`, :func:`score_graph`, :func:`summarize`).

Never imports torch.
"""

from .backends import LOST_WORKERS_S, RESULT_WAIT_S, WAIT_FOR_WORKERS_S, Backend, NotReady, WorkerDied
from .checkpoints import Checkpoints, fingerprint
from .config import DEFAULT_CHUNK, DEFAULT_EPS, DEFAULT_TIMEOUT, DEFAULT_UNITS, ScoreConfig, data_unit
from .experiment import ScoringResult, score_graph, score_run, summarize
from .hypergraph import UC_MODES, CommHypergraph, build_hypergraph, integer_weights, smallest_edge_cost, to_hypernetx
from .metrics import (
    communication,
    concurrency_score,
    load_variability,
    longest_path_ratio,
    normalized_entropy,
    part_weights,
)
from .partition import PRESETS, partition_hypergraph, preset_path, read_preset
from .records import ID_COLUMNS, RESULT_COLUMNS, architecture_records, dag_record, score_records
from .scheduler import DIED, TIMED_OUT, RunOutcome, run_scoring
from .score import partition_dag, score_architecture, score_hypergraph

__all__ = [
    "Backend",
    "Checkpoints",
    "CommHypergraph",
    "DEFAULT_CHUNK",
    "DEFAULT_EPS",
    "DEFAULT_TIMEOUT",
    "DEFAULT_UNITS",
    "DIED",
    "ID_COLUMNS",
    "LOST_WORKERS_S",
    "NotReady",
    "PRESETS",
    "RESULT_COLUMNS",
    "RESULT_WAIT_S",
    "RunOutcome",
    "ScoreConfig",
    "ScoringResult",
    "TIMED_OUT",
    "UC_MODES",
    "WAIT_FOR_WORKERS_S",
    "WorkerDied",
    "architecture_records",
    "build_hypergraph",
    "communication",
    "concurrency_score",
    "dag_record",
    "data_unit",
    "fingerprint",
    "integer_weights",
    "load_variability",
    "longest_path_ratio",
    "normalized_entropy",
    "part_weights",
    "partition_dag",
    "partition_hypergraph",
    "preset_path",
    "read_preset",
    "run_scoring",
    "score_architecture",
    "score_graph",
    "score_hypergraph",
    "score_records",
    "score_run",
    "smallest_edge_cost",
    "summarize",
    "to_hypernetx",
]
