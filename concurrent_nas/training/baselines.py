"""Hand-made reference networks trained by the same loop: CifarNet and ResNet-50.

The paper compares its sampled architectures with "vanilla CifarNet" on CIFAR-10 and
ResNet-50 on Flowers-102 (Tables 5 and 6). CifarNet follows the TF-slim definition
(two 5x5 conv + max-pool + LRN stages, fully connected 384 -> 192 -> classes, dropout
0.5). ResNet-50 is torchvision's when torchvision imports, otherwise our own definition
with the same module names and layer shapes (so the parameter count, 25,557,032 at 1000
classes, and state dicts match). For inputs smaller than 64 pixels the ResNet stem is
the usual CIFAR variant (3x3 stride-1 convolution, no max-pool): the ImageNet stem
would shrink a 32x32 image to 1x1 before the last stage.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CnasError

BASELINES = ("cifarnet", "resnet50")


class CifarNet(nn.Module):
    """TF-slim's CifarNet for square ``image_size`` inputs.

    Parameters
    ----------
    num_classes : int
    image_size : int
        Inputs other than 32x32 are average-pooled to 8x8 before the classifier, so the
        fully connected part keeps its 32x32 shape (4096 -> 384).
    in_channels : int
    """

    def __init__(self, num_classes: int = 10, image_size: int = 32, in_channels: int = 3):
        super().__init__()
        # TF's LRN(depth_radius=4, alpha=1e-3/9) sums over 9 channels; torch divides
        # alpha by the window size itself.
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.LocalResponseNorm(9, alpha=1e-3, beta=0.75, k=1.0),
            nn.Conv2d(64, 64, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(9, alpha=1e-3, beta=0.75, k=1.0),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        side = (image_size + 3) // 4
        self.pool = nn.Identity() if side == 8 else nn.AdaptiveAvgPool2d(8)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 8 * 8, 384),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(384, 192),
            nn.ReLU(inplace=True),
            nn.Linear(192, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 convolution), expansion 4."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """ResNet-50 with torchvision's module layout.

    Parameters
    ----------
    num_classes : int
    small_input : bool
        CIFAR stem (3x3 stride-1 convolution, no max-pool) instead of the ImageNet stem.
    in_channels : int
    """

    def __init__(self, num_classes: int = 1000, small_input: bool = False, in_channels: int = 3):
        super().__init__()
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        inplanes = 64
        layers = []
        for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = []
            for i in range(blocks):
                stage.append(Bottleneck(inplanes, planes, stride if i == 0 else 1))
                inplanes = planes * 4
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * 4, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_baseline(
    name: str, num_classes: int, image_size: int, in_channels: int = 3
) -> nn.Module:
    """A reference network by name.

    Parameters
    ----------
    name : {"cifarnet", "resnet50"}
    num_classes, image_size, in_channels : int
        What the data set needs.

    Raises
    ------
    CnasError
        For an unknown name.
    """
    if name == "cifarnet":
        return CifarNet(num_classes, image_size, in_channels)
    if name == "resnet50":
        small = image_size < 64
        if not small and in_channels == 3:
            try:
                from torchvision.models import resnet50
            except ImportError:  # the local CPU torch build has no matching torchvision
                pass
            else:
                return resnet50(weights=None, num_classes=num_classes)
        return ResNet50(num_classes, small_input=small, in_channels=in_channels)
    raise CnasError(f"unknown baseline '{name}'; choose from {', '.join(BASELINES)}")
