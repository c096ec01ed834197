"""The three kinds of block a compiled network is made of (paper §3.2, Fig. 4).

Every block is built from one :class:`~concurrent_nas.shapes.VertexPlan` and is called
with the list of its predecessors' outputs (ascending predecessor id), so a block can be
run on its own, e.g. on another device by :mod:`concurrent_nas.placement`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CnasError
from ..shapes import DEFAULT_MERGE, KERNEL, MERGES, CompileSettings, VertexPlan


def scaling_block(plan: VertexPlan, index: int) -> nn.Module:
    """Max-pool input ``index`` down to the smallest size, 1x1 conv up to the most channels.

    An input that already matches gets ``nn.Identity``.
    """
    channels, size = plan.in_shapes[index]
    layers: list[nn.Module] = []
    if plan.pool_inputs[index]:
        factor = size // plan.mid_size
        # Sizes are image_size halved with floor, so an exact factor is the usual case;
        # the adaptive pool covers odd sizes (e.g. 7 -> 3 at 224 px).
        if factor * plan.mid_size == size:
            layers.append(nn.MaxPool2d(factor))
        else:
            layers.append(nn.AdaptiveMaxPool2d(plan.mid_size))
    if plan.conv_inputs[index]:
        layers.append(nn.Conv2d(channels, plan.mid_channels, 1, bias=False))
    if not layers:
        return nn.Identity()
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


class WeightedMerge(nn.Module):
    """Scaling blocks, then one of the merges of :data:`~concurrent_nas.shapes.MERGES`.

    One learnable weight per input, initialised to ``1/n``: ``"sigmoid-inputs"`` sums
    ``w_i * sigmoid(x_i)``, ``"sigmoid-weights"`` sums ``sigmoid(w_i) * x_i`` (so every
    input starts at a weight of about 0.5), ``"sum"`` sums ``w_i * x_i``.
    """

    def __init__(self, plan: VertexPlan, merge: str = DEFAULT_MERGE) -> None:
        super().__init__()
        if merge not in MERGES:
            raise CnasError(f"unknown merge '{merge}'; choose one of {', '.join(MERGES)}")
        n = len(plan.preds)
        self.scalers = nn.ModuleList(scaling_block(plan, i) for i in range(n))
        self.weights = nn.Parameter(torch.full((n,), 1.0 / n))
        self.merge = merge

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        weights = torch.sigmoid(self.weights) if self.merge == "sigmoid-weights" else self.weights
        squash = self.merge == "sigmoid-inputs"
        total = None
        for i, scaler in enumerate(self.scalers):
            x = scaler(inputs[i])
            term = (torch.sigmoid(x) if squash else x) * weights[i]
            total = term if total is None else total + term
        return total

    def extra_repr(self) -> str:
        return f"merge={self.merge!r}"


class StemBlock(nn.Module):
    """Input vertex: 3x3 convolution of the image, then batch norm."""

    def __init__(self, plan: VertexPlan, settings: CompileSettings) -> None:
        super().__init__()
        self.conv = nn.Conv2d(settings.in_channels, plan.out_channels, KERNEL, padding=KERNEL // 2, bias=False)
        self.bn = nn.BatchNorm2d(plan.out_channels)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return self.bn(self.conv(inputs[0]))


class VertexBlock(nn.Module):
    """Inner vertex: merge -> ReLU -> [max-pool x2 if staged] -> separable 3x3 -> batch norm."""

    def __init__(self, plan: VertexPlan, merge: str = DEFAULT_MERGE) -> None:
        super().__init__()
        c_in, c_out = plan.mid_channels, plan.out_channels
        self.merge = WeightedMerge(plan, merge)
        self.relu = nn.ReLU()
        self.stage = nn.MaxPool2d(2) if plan.staged else nn.Identity()
        self.depthwise = nn.Conv2d(c_in, c_in, KERNEL, padding=KERNEL // 2, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        x = self.stage(self.relu(self.merge(inputs)))
        return self.bn(self.pointwise(self.depthwise(x)))


class OutputBlock(nn.Module):
    """Output vertex: merge (no sigmoid on the inputs) -> ReLU -> global average pool -> linear.

    The merge here never squashes its inputs (``"sigmoid-inputs"`` becomes ``"sum"``):
    sigmoid outputs averaged over the whole feature map are 0.5 +- 0.005 for every
    image, which left every compiled network at chance accuracy (measured on digits:
    10.3 % with it, 51-81 % top-1 without, 5 epochs).
    """

    def __init__(self, plan: VertexPlan, merge: str = DEFAULT_MERGE) -> None:
        super().__init__()
        self.merge = WeightedMerge(plan, "sum" if merge == "sigmoid-inputs" else merge)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(plan.mid_channels, plan.out_channels)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        x = self.pool(self.relu(self.merge(inputs)))
        return self.classifier(torch.flatten(x, 1))


def build_block(plan: VertexPlan, settings: CompileSettings) -> nn.Module:
    """The block of one vertex."""
    if plan.role == "input":
        return StemBlock(plan, settings)
    if plan.role == "output":
        return OutputBlock(plan, settings.merge)
    return VertexBlock(plan, settings.merge)
