"""What decides a training run: the learning-rate schedule and :class:`TrainConfig`.

Plain data without torch, so ``cnas`` can derive the flags of ``cnas train`` from
:class:`TrainConfig` without importing torch for every command.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

from ..errors import CnasError, check_integer

AUGMENTATIONS = ("none", "flip-crop")


@dataclass(frozen=True)
class Phase:
    """From epoch ``start`` (0-based) on, train with this learning rate and momentum."""

    start: int
    lr: float
    momentum: float


def paper_schedule(dataset: str) -> tuple[int, tuple[Phase, ...]]:
    """The paper's recipe (§4.1) as ``(epochs, phases)``.

    CIFAR-10: 100 epochs, SGD lr 1e-3, momentum 0.9. Flowers-102: 300 epochs, lr 1e-3 /
    momentum 0.9 for the first 100, then lr 5e-4 / momentum 0.95. Other data sets
    (digits, folders) get the CIFAR-10 recipe.
    """
    if dataset == "flowers102":
        return 300, (Phase(0, 1e-3, 0.9), Phase(100, 5e-4, 0.95))
    return 100, (Phase(0, 1e-3, 0.9),)


def phase_at(phases: tuple[Phase, ...], epoch: int) -> Phase:
    """The phase in force at 0-based ``epoch``."""
    current = phases[0]
    for phase in phases:
        if phase.start <= epoch:
            current = phase
    return current


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run's result, plus how to run it.

    ``cnas train`` derives its flags from these fields, so each default lives here once.
    Every field is checked on construction; an error names the ``cnas train`` flag.

    Attributes
    ----------
    epochs : int
        Passes over the training set.
    batch_size : int
        Images per SGD step.
    phases : tuple of Phase
        Learning rate and momentum over time; the first phase must start at epoch 0.
    weight_decay : float
        SGD weight decay.
    seed : int
        Seeds the data order, augmentation and dropout. The model's initial weights are
        the caller's: seed before building it.
    augment : {"none", "flip-crop"}
        ``flip-crop``: random horizontal flip and a random crop after zero-padding by an
        eighth of the image side (4 pixels at 32x32).
    device : str
        ``cpu`` or ``cuda`` (or ``cuda:N``); the same code path either way.
    workers : int
        Processes decoding image files (image-file data sets only).
    deterministic : bool
        Ask torch for deterministic kernels (needed for bit-exact resume on GPU).
    eval_batch_size : int
        Images per forward pass when evaluating.
    """

    epochs: int = 10
    batch_size: int = 64
    phases: tuple[Phase, ...] = (Phase(0, 0.01, 0.9),)
    weight_decay: float = 0.0
    seed: int = 0
    augment: str = "none"
    device: str = "cpu"
    workers: int = 0
    deterministic: bool = True
    eval_batch_size: int = 256

    def __post_init__(self):
        if self.epochs < 1:
            raise CnasError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 2:
            raise CnasError(f"--batch-size must be at least 2 (batch norm needs 2 samples), got {self.batch_size}")
        if not self.phases or self.phases[0].start != 0:
            raise CnasError("the learning-rate schedule must start at epoch 0")
        for p in self.phases:
            if not (p.lr > 0 and math.isfinite(p.lr)):
                raise CnasError(f"--lr must be a positive number, got {p.lr}")
            if not 0 <= p.momentum < 1:
                raise CnasError(f"--momentum must be in [0, 1), got {p.momentum}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):  # nan fails >= 0
            raise CnasError(f"--weight-decay must be a finite number >= 0, got {self.weight_decay}")
        if self.augment not in AUGMENTATIONS:
            raise CnasError(f"--augment must be one of {', '.join(AUGMENTATIONS)}, got '{self.augment}'")
        if self.workers < 0:
            raise CnasError(f"--loader-workers must be >= 0, got {self.workers}")
        # numpy's SeedSequence, which derives every stream, takes no negative keys, and
        # the seed is a column of accuracy.parquet (int64).
        check_integer(self.seed, "--model-seed")
        if self.eval_batch_size < 1:
            raise CnasError(f"eval_batch_size must be at least 1, got {self.eval_batch_size}")

    def fingerprint(self) -> dict:
        """The fields a checkpoint must agree on to be resumed (not epochs, device, workers)."""
        return {
            "batch_size": self.batch_size,
            "phases": [dataclasses.astuple(p) for p in self.phases],
            "weight_decay": self.weight_decay,
            "seed": self.seed,
            "augment": self.augment,
        }

    def config_hash(self, **extra) -> str:
        """Eight hex digits naming this configuration: :meth:`fingerprint` plus ``extra``.

        ``cnas train`` passes the compile settings and ``--match-params`` as ``extra``, so
        two commands that would train different networks or train them differently get
        different hashes and their outputs sit side by side in one run; ``--epochs``,
        ``--device`` and the loader workers are not part of it, so asking for more epochs
        resumes the same configuration.
        """
        text = json.dumps({**self.fingerprint(), **extra}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:8]
