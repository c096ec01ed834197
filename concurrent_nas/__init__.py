"""concurrent-nas: neural architecture search over concurrent random-wired networks.

The pipeline, one module each: :mod:`generators` sample DAGs, :mod:`shapes` computes
per-vertex shapes and costs without torch, :mod:`scoring` partitions the DAG over n units
(KaHyPar) into a concurrency score, :mod:`compiler` builds the ``torch.nn.Module``,
:mod:`placement` runs it split over processes and measures latency, :mod:`analysis`
draws the paper's figures. :class:`Run` is the one way into a run directory.

Everything a notebook needs is importable from here (``docs/api.md`` has an example
per entry). Names are resolved on first use, so ``import concurrent_nas`` imports
neither torch nor KaHyPar.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import CnasError
from .generators import generate, get_generator, list_generators
from .lazy import lazy_exports

try:
    __version__ = version("concurrent-nas")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# name -> module that defines it; resolved on first access (PEP 562).
_LAZY = {
    # sampling and run directories
    "sample_architectures": "concurrent_nas.sampling",
    "write_run": "concurrent_nas.sampling",
    "Run": "concurrent_nas.rundir",
    "load_run": "concurrent_nas.rundir",
    "read_graph": "concurrent_nas.graphjson",
    "write_graph": "concurrent_nas.graphjson",
    # shapes, costs, networks
    "CompileSettings": "concurrent_nas.shapes",
    "shape_pass": "concurrent_nas.shapes",
    "parameter_table": "concurrent_nas.parameters",
    "build_network": "concurrent_nas.compiler",
    "compile": "concurrent_nas.compiler",  # the old name of build_network
    "save_model": "concurrent_nas.compiler",
    "load_model": "concurrent_nas.compiler",
    # scoring
    "score_architecture": "concurrent_nas.scoring",
    "score_run": "concurrent_nas.scoring",
    "ScoreConfig": "concurrent_nas.scoring",
    # latency and training
    "LatencyOptions": "concurrent_nas.placement",
    "latency_run": "concurrent_nas.placement",
    "simulate": "concurrent_nas.placement",
    "predict_latency": "concurrent_nas.predict",
    "load_profile": "concurrent_nas.predict",
    "train_run": "concurrent_nas.training",
    "estimate_accuracy": "concurrent_nas.training.estimate",
    "estimate_run": "concurrent_nas.training.estimate",
    "EstimateConfig": "concurrent_nas.training.estimate",
    # figures
    "report_runs": "concurrent_nas.analysis",
    # architecture search (the package is callable too: importing it shadows this name)
    "search": "concurrent_nas.search",
}


__getattr__, _dir_lazy, _ = lazy_exports(__name__, _LAZY)
__all__ = ["CnasError", "__version__", "generate", "get_generator", "list_generators", *_LAZY]


def __dir__() -> list[str]:
    return sorted(__all__)
