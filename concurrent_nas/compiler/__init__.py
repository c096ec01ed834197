"""DAG -> ``torch.nn.Module``: the only part of the package that knows ``torch.nn``.

:func:`build_network` builds a :class:`ConcurrentNet` from an architecture DAG and
:class:`~concurrent_nas.shapes.CompileSettings`; :func:`save_model` / :func:`load_model`
store architecture, settings and weights in one file; :func:`export_model` writes a
portable ONNX, ``torch.export`` or TorchScript file, checked against PyTorch's output. ``compile`` is the older name of
:func:`build_network`, kept as an alias.
"""

from ..shapes import CompileSettings
from .blocks import OutputBlock, StemBlock, VertexBlock, WeightedMerge, build_block
from .network import ConcurrentNet, build_network, compile
from .export import export_model
from .saving import load_model, save_model

__all__ = [
    "CompileSettings", "ConcurrentNet", "OutputBlock", "StemBlock", "VertexBlock",
    "WeightedMerge", "build_block", "build_network", "compile", "export_model", "load_model", "save_model",
]
