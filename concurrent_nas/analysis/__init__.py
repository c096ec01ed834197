"""Analysis: the paper's figures and tables from run directories.

:mod:`.tables` computes the numbers behind each figure from run tables (pure pandas),
:mod:`.figures` draws them (matplotlib ``Figure`` objects, one colour per generator),
:mod:`.report` loads runs and writes PNG/SVG figures and ``summary.md`` (``cnas report``).

Names resolve on first use (PEP 562), so a caller that only wants a table
(``cnas params --out x.md``) does not pay for importing matplotlib.
"""

from ..lazy import lazy_exports

_LAZY = {
    "accuracy_vs_score": "concurrent_nas.analysis.tables",
    "best_options": "concurrent_nas.analysis.tables",
    "communication_summary": "concurrent_nas.analysis.tables",
    "cs_summary": "concurrent_nas.analysis.tables",
    "entropy_summary": "concurrent_nas.analysis.tables",
    "latency_scaling": "concurrent_nas.analysis.tables",
    "markdown_table": "concurrent_nas.analysis.tables",
    "normalized_latency": "concurrent_nas.analysis.tables",
    "ordered_generators": "concurrent_nas.analysis.tables",
    "profile_matrix": "concurrent_nas.analysis.tables",
    "width_depth_summary": "concurrent_nas.analysis.tables",
    "accuracy_figure": "concurrent_nas.analysis.figures",
    "communication_figure": "concurrent_nas.analysis.figures",
    "concurrency_score_figure": "concurrent_nas.analysis.figures",
    "depth_layout": "concurrent_nas.analysis.figures",
    "entropy_figure": "concurrent_nas.analysis.figures",
    "generator_color": "concurrent_nas.analysis.figures",
    "inference_time_figure": "concurrent_nas.analysis.figures",
    "latency_scaling_figure": "concurrent_nas.analysis.figures",
    "partition_figure": "concurrent_nas.analysis.figures",
    "width_depth_figure": "concurrent_nas.analysis.figures",
    "Report": "concurrent_nas.analysis.report",
    "build_report": "concurrent_nas.analysis.report",
    "load_runs": "concurrent_nas.analysis.report",
    "report_runs": "concurrent_nas.analysis.report",
    "summary_markdown": "concurrent_nas.analysis.report",
    "write_report": "concurrent_nas.analysis.report",
    "Run": "concurrent_nas.rundir",
    "load_run": "concurrent_nas.rundir",
}


__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
