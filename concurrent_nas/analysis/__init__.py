"""Analysis: the paper's figures and tables from run directories.

:mod:`.tables` computes the numbers behind each figure from run tables (pure pandas),
:mod:`.figures` draws them (matplotlib ``Figure`` objects, one colour per generator),
:mod:`.report` loads runs and writes PNG/SVG figures and ``summary.md`` (``cnas report``).
"""

from .figures import (
    accuracy_figure,
    communication_figure,
    concurrency_score_figure,
    depth_layout,
    entropy_figure,
    generator_color,
    inference_time_figure,
    latency_scaling_figure,
    partition_figure,
    width_depth_figure,
)
from ..rundir import Run, load_run
from .report import Report, build_report, load_runs, summary_markdown, write_report
from .tables import (
    accuracy_vs_score,
    best_options,
    communication_summary,
    cs_summary,
    entropy_summary,
    latency_scaling,
    normalized_latency,
    ordered_generators,
    profile_matrix,
    width_depth_summary,
)

__all__ = [
    "Report",
    "Run",
    "accuracy_figure",
    "accuracy_vs_score",
    "best_options",
    "build_report",
    "communication_figure",
    "communication_summary",
    "concurrency_score_figure",
    "cs_summary",
    "depth_layout",
    "entropy_figure",
    "entropy_summary",
    "generator_color",
    "inference_time_figure",
    "latency_scaling",
    "latency_scaling_figure",
    "load_run",
    "load_runs",
    "normalized_latency",
    "ordered_generators",
    "partition_figure",
    "profile_matrix",
    "summary_markdown",
    "width_depth_figure",
    "width_depth_summary",
    "write_report",
]
