"""Training and accuracy: data sets from local files, reference networks, one SGD loop.

``load_dataset`` reads CIFAR-10 (binary), Flowers-102, any ImageFolder directory or
scikit-learn's digits (:mod:`.data`); ``build_baseline`` makes CifarNet or ResNet-50
(:mod:`.baselines`); ``train_model`` trains any ``nn.Module`` with per-epoch checkpoints
and exact resume (:mod:`.loop`); ``train_run`` (``cnas train``) trains the architectures
of a run directory and writes ``accuracy.parquet`` and ``history.parquet``
(:mod:`.experiment`); :class:`TrainConfig` and the schedules are plain data
(:mod:`.config`).

Names are resolved on first access (PEP 562): ``cnas`` derives the flags of ``cnas train``
from :mod:`.config` on every start, and that must not cost a torch import. Every other
module of this package imports torch.
"""

from __future__ import annotations

from importlib import import_module

# name -> submodule that defines it.
_LAZY = {
    "BASELINES": "baselines", "CifarNet": "baselines", "ResNet50": "baselines",
    "build_baseline": "baselines",
    "match_channels": "capacity", "parameter_target": "capacity",
    "ImageData": "data", "dataset_key": "data", "load_dataset": "data",
    "candidates": "experiment", "check_request": "experiment", "train_run": "experiment",
    "AUGMENTATIONS": "config", "Phase": "config", "TrainConfig": "config", "paper_schedule": "config",
    "TrainResult": "loop", "count_flops": "loop", "count_parameters": "loop", "evaluate": "loop",
    "measure_flops": "loop", "train_model": "loop",
    "EstimateConfig": "estimate", "estimate_accuracy": "estimate", "estimate_run": "estimate",
}  # fmt: skip


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = sorted(_LAZY)
