"""Training and accuracy: data sets from local files, reference networks, one SGD loop.

``load_dataset`` reads CIFAR-10 (binary), Flowers-102, any ImageFolder directory or
scikit-learn's digits; ``build_baseline`` makes CifarNet or ResNet-50; ``train_model``
trains any ``nn.Module`` with per-epoch checkpoints and exact resume; ``train_run``
(``cnas train``) trains the architectures of a run directory and writes
``accuracy.parquet`` and ``history.parquet``. Importing this package imports torch.
"""

from .baselines import BASELINES, CifarNet, ResNet50, build_baseline
from .data import ImageData, dataset_key, load_dataset
from .loop import (
    Phase,
    TrainConfig,
    TrainResult,
    count_flops,
    count_parameters,
    evaluate,
    paper_schedule,
    train_model,
)

__all__ = [
    "BASELINES", "CifarNet", "ImageData", "Phase", "ResNet50", "TrainConfig", "TrainResult",
    "build_baseline", "count_flops", "count_parameters", "dataset_key", "evaluate",
    "load_dataset", "paper_schedule", "train_model",
]  # fmt: skip
