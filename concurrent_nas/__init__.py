"""concurrent-nas: neural architecture search over concurrent random-wired networks.

The pipeline, one module each: :mod:`generators` sample DAGs, :mod:`shapes` computes
per-vertex shapes and costs without torch, :mod:`scoring` partitions the DAG over n units
(KaHyPar) into a concurrency score, :mod:`compiler` builds the ``torch.nn.Module``,
:mod:`placement` runs it split over processes and measures latency.

Torch is imported only when something that needs it is first used, so sampling and
scoring stay fast.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from .errors import CnasError
from .generators import generate, get_generator, list_generators

try:
    __version__ = version("concurrent-nas")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# name -> module that defines it; resolved on first access (PEP 562) to keep torch out
# of `import concurrent_nas`.
_LAZY = {
    "compile": "concurrent_nas.compiler",
    "CompileSettings": "concurrent_nas.shapes",
    "shape_pass": "concurrent_nas.shapes",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'concurrent_nas' has no attribute {name!r}")


__all__ = ["CnasError", "__version__", "generate", "get_generator", "list_generators", *_LAZY]
