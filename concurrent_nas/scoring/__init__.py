"""Concurrency score (paper §3.3): how well an architecture distributes over n units.

The DAG becomes a hypergraph (:mod:`.hypergraph`: vertex weight = FLOPs, hyperedge
``{v} ∪ successors(v)`` costing the bytes of v's output), KaHyPar partitions it for each
(units, eps) (:mod:`.partition`), and :mod:`.metrics` turns each partition into
``delta_w``, ``Lambda``, ``eta``, CS and the entropy of part weights. :mod:`.runner`
scores whole runs on a process pool or a Dask cluster, checkpointing as it goes.

Never imports torch.
"""

from .hypergraph import CommHypergraph, build_hypergraph, integer_weights, to_hypernetx
from .metrics import (
    communication,
    concurrency_score,
    load_variability,
    longest_path_ratio,
    normalized_entropy,
    part_weights,
)
from .partition import PRESETS, partition_hypergraph, preset_path, read_preset
from .score import DEFAULT_EPS, DEFAULT_UNITS, data_unit, partition_dag, score_architecture, score_hypergraph

__all__ = [
    "CommHypergraph",
    "DEFAULT_EPS",
    "DEFAULT_UNITS",
    "PRESETS",
    "build_hypergraph",
    "communication",
    "concurrency_score",
    "data_unit",
    "integer_weights",
    "load_variability",
    "longest_path_ratio",
    "normalized_entropy",
    "part_weights",
    "partition_dag",
    "partition_hypergraph",
    "preset_path",
    "read_preset",
    "score_architecture",
    "score_hypergraph",
    "to_hypernetx",
]
