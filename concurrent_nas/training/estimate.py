"""Accuracy estimates cheap enough for search: short training and zero-cost proxies.

Every method maps an architecture DAG to one number that should rank architectures
the way their trained accuracy does (higher is better). Only ``short-training`` is an
accuracy itself; the others are scores whose scale means nothing, only their order.

``short-training``
    Test top-1 (percent) after ``epochs`` epochs of the ordinary training loop
    (:func:`~concurrent_nas.training.loop.train_model` with :class:`TrainConfig`'s
    defaults otherwise).
``synflow``
    Synaptic flow (Tanaka et al. 2020, "Pruning neural networks without any data by
    iteratively conserving synaptic flow"), summed over the network as a NAS score by
    Abdelfattah et al. 2021 ("Zero-cost proxies for lightweight NAS"). See :func:`synflow`.
``naswot``
    log |det K_H| of the Hamming kernel of ReLU activation codes over one minibatch
    (Mellor et al. 2021, "Neural architecture search without training"). See :func:`naswot`.
``grad-norm``
    Sum over layers of the norm of the loss gradient on one minibatch (Abdelfattah et
    al. 2021). See :func:`grad_norm`.
``jacob-cov``
    Correlation of input Jacobians over one minibatch (Mellor et al. 2020, first
    version of the same paper). See :func:`jacob_cov`.
``params``
    Trainable parameters (the shape pass, no torch): the baseline every zero-cost
    paper compares against.

How well each ranks 20-epoch digits accuracy, and what it costs, is measured by
``benchmarks/bench_estimate.py`` (docs/training.md, "Accuracy estimate").

The module itself imports no torch, so ``cnas`` can read :class:`EstimateConfig` on
every start; torch is imported by the functions that need it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import dag as dagmod
from ..errors import CnasError
from ..rundir import ESTIMATES, load_architectures, require_run, upsert_table

METHODS = ("short-training", "synflow", "naswot", "grad-norm", "jacob-cov", "params")
#: The cheapest method whose Spearman correlation with 20-epoch digits accuracy reached
#: 0.6 in ``benchmarks/bench_estimate.py``, or short training if none did.
DEFAULT_METHOD = "short-training"
#: Methods that look at images (the others need only the network).
DATA_METHODS = ("short-training", "naswot", "grad-norm", "jacob-cov")

#: Table of ``cnas estimate`` in a run directory (belongs in :mod:`concurrent_nas.rundir`).
ESTIMATE_KEYS = ["method", "dataset", "arch_id", "generator"]

# Stream numbers for derive_seed: the training loop uses 0-3 for weights, dropout and
# augmentation; estimates draw their own so they never share a stream with training.
_INIT_STREAM, _BATCH_STREAM = 4, 5
# The smallest side the data loaders read images at.
MIN_IMAGE_SIZE = 8


@dataclass(frozen=True)
class EstimateConfig:
    """What an estimate is made on, and how long short training runs.

    ``cnas estimate`` derives its flags from these fields. Every field is checked on
    construction; an error names the flag.

    Attributes
    ----------
    dataset : str
        Images the estimate looks at: cifar10, flowers102, digits or folder:PATH.
    data_dir : str, optional
        Where cifar10 / flowers102 live (default data/<dataset>).
    image_size : int
        Square side of the images and of the network's input.
    epochs : int
        Epochs of the short-training proxy.
    batch_size : int
        Images in the one minibatch of naswot, grad-norm and jacob-cov.
    seed : int
        Seeds the initial weights, the minibatch and the short training's data order.
    device : str
        cpu or cuda (cuda:N).
    """

    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int = 16
    epochs: int = 2
    batch_size: int = 64
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        if not isinstance(self.image_size, int) or self.image_size < MIN_IMAGE_SIZE:
            raise CnasError(
                f"--image-size {self.image_size}: the data sets are read at {MIN_IMAGE_SIZE} px or more"
            )
        if self.epochs < 1:
            raise CnasError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 2:
            raise CnasError(f"--batch-size must be at least 2 (batch norm needs 2 samples), got {self.batch_size}")
        if self.seed < 0:
            raise CnasError(f"--seed must be >= 0, got {self.seed}")


def check_method(method: str) -> None:
    """Raise :class:`CnasError` unless ``method`` is one of :data:`METHODS`."""
    if method not in METHODS:
        raise CnasError(f"unknown estimate method '{method}'; choose one of {', '.join(METHODS)}")


# ------------------------------------------------------------------------- the proxies
# Each takes a built network and plain tensors, leaves the caller's network as it was
# (it works on a copy), and returns a float: tests can check them on hand-built nets.


def _weighted_layers(model) -> list:
    """Convolutions and linear layers: the layers Abdelfattah et al. sum their scores over."""
    from torch import nn

    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _without_batchnorm(model):
    """``model`` with every batch-norm layer replaced by the identity (in place)."""
    from torch import nn
    from torch.nn.modules.batchnorm import _BatchNorm

    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, _BatchNorm):
                setattr(module, name, nn.Identity())
    return model


def synflow(model, input_shape: tuple[int, ...]) -> float:
    """Synaptic flow of ``model``: sum over weights of ``theta * dR/dtheta``.

    ``R = 1^T (prod_l |theta_l|) 1`` is the network's output summed over its logits
    when every parameter is replaced by its absolute value and the input is one image
    of ones (Tanaka et al. 2020, eq. 2 and Algorithm 1). Each weight's score
    ``|theta| * dR/d|theta|`` is non-negative; the network's score is their sum over
    the weights of its convolutions and linear layers (Abdelfattah et al. 2021).

    Batch norm is bypassed: with a single constant image its batch statistics would
    normalise every map to zero (and its running statistics at initialisation are
    the identity anyway). The pass runs in float64 because a product of |weights| over
    40 blocks overflows float32.

    Parameters
    ----------
    model : torch.nn.Module
        Any network; it is copied, not changed.
    input_shape : tuple of int
        Shape of one input without the batch axis, e.g. ``(3, 16, 16)``.

    Returns
    -------
    float
    """
    import copy

    import torch

    net = _without_batchnorm(copy.deepcopy(model)).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    flow = net(torch.ones((1, *input_shape), dtype=torch.float64, device=device)).sum()
    flow.backward()
    layers = [m for m in _weighted_layers(net) if m.weight.grad is not None]
    return float(sum(float((m.weight * m.weight.grad).detach().sum()) for m in layers))


def activation_codes(model, images):
    """Binary codes ``(N, N_A)``: 1 where a ReLU's input is positive, for each image.

    Every ``nn.ReLU`` of the model contributes all its units; the model runs once in
    training mode (batch statistics, as at the start of training) on a copy.
    """
    import copy

    import torch
    from torch import nn

    net = copy.deepcopy(model).train()
    codes: list[torch.Tensor] = []

    def record(module, inputs, output):
        codes.append((inputs[0] > 0).flatten(1))

    hooks = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(images)
    finally:
        for h in hooks:
            h.remove()
    if not codes:
        raise CnasError("naswot needs a network with nn.ReLU layers; this one has none")
    return torch.cat(codes, dim=1)


def naswot_score(codes) -> float:
    """``log |det K_H|`` of binary activation codes ``(N, N_A)`` (Mellor et al. 2021).

    ``K_H[i, j] = N_A - d_H(c_i, c_j)``: the number of units on which images i and j
    agree. ``-inf`` when K_H is singular (e.g. two images with the same code): the
    network cannot tell them apart.
    """
    import torch

    c = torch.as_tensor(codes).double()
    kernel = c @ c.T + (1 - c) @ (1 - c).T
    sign, logabs = torch.linalg.slogdet(kernel)
    return float(logabs) if float(sign) != 0 else -math.inf


def naswot(model, images) -> float:
    """NASWOT score of ``model`` on a minibatch ``images`` (N, C, H, W); see :func:`naswot_score`."""
    return naswot_score(activation_codes(model, images))


def grad_norm(model, images, labels) -> float:
    """Sum over convolutions and linear layers of ``||dL/dW||_2`` (Abdelfattah et al. 2021).

    ``L`` is the cross-entropy of one minibatch in training mode, at initialisation.
    The model is copied, not changed.
    """
    import copy

    import torch.nn.functional as F

    net = copy.deepcopy(model).train()
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(images), labels).backward()
    return float(sum(float(m.weight.grad.norm()) for m in _weighted_layers(net) if m.weight.grad is not None))


def jacob_cov(model, images) -> float:
    """Jacobian covariance score (Mellor et al. 2020, arXiv:2006.04647v1, eq. 2).

    ``J_i = d(sum of logits)/d x_i`` for each image of the minibatch; with ``s`` the
    eigenvalues of the correlation matrix of the flattened ``J_i`` and ``k = 1e-5``,
    the score is ``-sum(log(s + k) + 1 / (s + k))``: highest when the Jacobians are
    uncorrelated. ``-inf`` when a Jacobian is constant (a dead network: correlation is
    undefined).
    """
    import copy

    net = copy.deepcopy(model).train()
    x = images.detach().clone().requires_grad_(True)
    net(x).sum().backward()
    jac = x.grad.flatten(1).double().cpu().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jac)
    if not np.all(np.isfinite(corr)):
        return -math.inf
    s = np.clip(np.linalg.eigvalsh(corr), 0.0, None)
    k = 1e-5
    return float(-np.sum(np.log(s + k) + 1.0 / (s + k)))


def short_training(model, data, config: EstimateConfig) -> float:
    """Test top-1 (percent) after ``config.epochs`` epochs of :func:`train_model` (trains ``model``)."""
    from .config import TrainConfig
    from .loop import train_model

    train = TrainConfig(epochs=config.epochs, seed=config.seed, device=config.device)
    return float(train_model(model, data, train).top1)


# ------------------------------------------------------------------------ one network


@functools.lru_cache(maxsize=4)
def _cached_dataset(name: str, data_dir: str | None, image_size: int):
    from .data import load_dataset

    return load_dataset(name, data_dir, image_size=image_size)


def resolve_data(config: EstimateConfig, data=None):
    """The data set of ``config`` (read once per process), or ``data`` if it fits.

    Raises
    ------
    CnasError
        If ``data`` holds images of another size than ``config.image_size``, or the
        data set cannot be read at that size.
    """
    if data is None:
        return _cached_dataset(config.dataset, config.data_dir, config.image_size)
    if data.image_size != config.image_size:
        raise CnasError(
            f"the data set {data.name} holds {data.image_size} px images, the estimate asks for "
            f"{config.image_size} px; load it at {config.image_size} px or set image_size={data.image_size}"
        )
    return data


def fitted_settings(settings, data):
    """``settings`` (or the defaults) with image size, channels and classes of ``data``."""
    from ..shapes import CompileSettings

    return dataclasses.replace(
        settings or CompileSettings(), image_size=data.image_size, in_channels=3, num_classes=data.num_classes
    )


def minibatch(data, config: EstimateConfig):
    """``(images, labels)`` tensors: ``config.batch_size`` training images drawn by ``config.seed``, normalised."""
    import torch

    from .loop import derive_seed, resolve_device

    n = len(data.train)
    rng = np.random.default_rng(derive_seed(config.seed, _BATCH_STREAM))
    picks = np.sort(rng.choice(n, size=min(config.batch_size, n), replace=False))
    images, labels = data.train.batch(picks)
    device = resolve_device(config.device)
    x = torch.as_tensor(np.asarray(images)).to(device).float().div_(255.0)
    mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
    return (x - mean) / std, torch.as_tensor(labels).to(device)


def estimate_accuracy(dag, method: str = DEFAULT_METHOD, settings=None, *, config: EstimateConfig | None = None,
                      data=None) -> float:  # fmt: skip
    """Estimate how well architecture ``dag`` will classify, cheaply enough to search with.

    Parameters
    ----------
    dag : networkx.DiGraph
        An architecture (``concurrent_nas.generate(...)`` or ``Run.dag(i)``).
    method : str
        One of :data:`METHODS` (default :data:`DEFAULT_METHOD`).
    settings : CompileSettings, optional
        Channels, staging and merge of the network; image size, input channels and
        classes come from the data set.
    config : EstimateConfig, optional
        Data set, image size, epochs of short training, minibatch size, seed, device.
    data : ImageData, optional
        Images already loaded (at ``config.image_size``); otherwise read once per
        process.

    Returns
    -------
    float
        Higher means a better expected accuracy. ``short-training`` returns test top-1
        in percent; the zero-cost proxies return scores comparable only between
        architectures estimated with the same method and config.

    Raises
    ------
    CnasError
        For an unknown method, an image size the data set cannot be read at (or
        ``data`` of another size), or an invalid DAG or settings.

    Examples
    --------
    >>> import concurrent_nas as cnas                                     # doctest: +SKIP
    >>> dag = cnas.generate("dp", nodes=40, seed=0, index=3)               # doctest: +SKIP
    >>> cnas.estimate_accuracy(dag, "synflow", cnas.CompileSettings(stem_channels=16, channel_cap=64))  # doctest: +SKIP
    """
    check_method(method)
    config = config or EstimateConfig()
    data = resolve_data(config, data)
    settings = fitted_settings(settings, data)
    if method == "params":
        from ..shapes import count_params

        return float(count_params(dag, settings))

    from ..compiler import build_network
    from .loop import derive_seed, resolve_device

    device = resolve_device(config.device)
    net = build_network(dag, settings, init_seed=derive_seed(config.seed, _INIT_STREAM)).to(device)
    if method == "short-training":
        return short_training(net, data, config)
    if method == "synflow":
        return synflow(net, (settings.in_channels, settings.image_size, settings.image_size))
    images, labels = minibatch(data, config)
    if method == "naswot":
        return naswot(net, images)
    if method == "grad-norm":
        return grad_norm(net, images, labels)
    return jacob_cov(net, images)


# ---------------------------------------------------------------------- a run's table


def estimate_run(
    run: str | Path,
    method: str = DEFAULT_METHOD,
    *,
    ids: list[int] | None = None,
    settings=None,
    config: EstimateConfig | None = None,
    data=None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Estimate every architecture of ``run`` (or ``ids``) into ``RUN/estimates.parquet``.

    One row per (method, dataset, arch_id, generator): ``arch_id, generator, nodes,
    method, dataset, image_size, estimate, seconds`` (wall time of this architecture's
    estimate, building the network included, reading the data set not), ``seed,
    epochs, batch_size, settings`` (the compile settings as JSON). Estimating again
    replaces a row; other methods' rows stay. The table is rewritten after every
    architecture, so an interrupted run keeps what it finished.

    Everything is checked (method, run, ids, data set and image size, settings) before
    the first row is written.

    Returns
    -------
    pandas.DataFrame
        The rows written by this call.
    """
    check_method(method)
    config = config or EstimateConfig()
    run = require_run(run)
    archs = load_architectures(run, ids)
    data = resolve_data(config, data)
    fitted = fitted_settings(settings, data)
    if archs:
        from ..shapes import plan_network

        plan_network(archs[0][2], fitted)  # a bad setting fails here, not after a write
    rows = []
    for arch_id, generator, dag in archs:
        start = time.perf_counter()
        value = estimate_accuracy(dag, method, settings, config=config, data=data)
        row = {
            "arch_id": arch_id,
            "generator": generator,
            "nodes": dagmod.block_count(dag),
            "method": method,
            "dataset": data.name,
            "image_size": data.image_size,
            "estimate": value,
            "seconds": time.perf_counter() - start,
            "seed": config.seed,
            "epochs": config.epochs if method == "short-training" else 0,
            "batch_size": config.batch_size if method in DATA_METHODS else 0,
            "settings": json.dumps(dataclasses.asdict(fitted), sort_keys=True),
        }
        rows.append(row)
        upsert_table(run, ESTIMATES, pd.DataFrame([row]), ESTIMATE_KEYS, made_by=f"cnas estimate {run}")
        if progress is not None:
            progress(1)
    return pd.DataFrame(rows)
