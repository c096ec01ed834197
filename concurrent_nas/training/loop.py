"""One training loop for any ``nn.Module``: SGD, schedules, checkpoints, exact resume.

Reproducibility is by construction, not by luck: the data order and the augmentation
of epoch ``e`` are drawn from generators seeded by ``(seed, e)`` alone, and a checkpoint
written after every epoch holds the model, the optimizer (momentum buffers), the global
torch RNG (dropout) and the history. Resuming from the checkpoint of epoch ``k``
therefore replays epochs ``k+1 ...`` exactly as an uninterrupted run would, and the
final weights agree bit for bit (on the same device and thread count, in deterministic
mode).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnasError
from ..rundir import atomic_output
from .config import AUGMENTATIONS, Phase, TrainConfig, paper_schedule, phase_at  # noqa: F401 (re-exported)
from .data import ArrayImages, FileImages, ImageData

CHECKPOINT = "last.pt"


@dataclass
class TrainResult:
    """What a finished (or already finished) training run produced.

    Attributes
    ----------
    history : list of dict
        One record per epoch: ``epoch`` (1-based), ``lr``, ``momentum``, ``train_loss``,
        ``train_acc``, ``test_acc`` (percent), ``seconds`` (training), ``eval_seconds``.
    top1 : float
        Test accuracy (percent) after the last epoch.
    best_top1 : float
        Best test accuracy over all epochs.
    resumed_from : int
        Epochs restored from a checkpoint (0 for a fresh run).
    """

    history: list[dict] = field(default_factory=list)
    top1: float = float("nan")
    best_top1: float = float("nan")
    resumed_from: int = 0


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from non-negative integer keys (numpy SeedSequence)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The training-set order of 0-based ``epoch``: a permutation fixed by (seed, epoch)."""
    return np.random.default_rng([int(seed), 2, int(epoch)]).permutation(n)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, image_size: int, in_channels: int = 3) -> int:
    """FLOPs of one forward pass of one image: convolutions and matrix products.

    One multiply-add is 2 FLOPs; biases, normalisation, activations and pooling are not
    counted (they are a few percent at most and every framework counts them differently).
    A compiled network built for this input reports its shape pass
    (:func:`concurrent_nas.shapes.plan_network`), exact by construction and free; any
    other module (the baselines) is measured by :func:`measure_flops`, which counts the
    same way.
    """
    from ..compiler import ConcurrentNet

    if isinstance(model, ConcurrentNet):
        s = model.settings
        if (s.image_size, s.in_channels) == (image_size, in_channels):
            return sum(plan.flops for plan in model.plans.values())
    return measure_flops(model, image_size, in_channels)


def measure_flops(model: nn.Module, image_size: int, in_channels: int = 3) -> int:
    """FLOPs of one forward pass of one zero image, counted by ``torch.utils.flop_counter``.

    The model runs once in eval mode without gradients (on the device of its
    parameters) and is left in the mode it was in.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, in_channels, image_size, image_size, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def resolve_device(name: str) -> torch.device:
    """``auto``/``cpu``/``cuda[:N]`` -> a usable device, or a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CnasError(f"--device must be cpu, cuda or cuda:N, got '{name}'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CnasError("--device cuda: no CUDA device is available here (torch build or driver); use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise CnasError(f"--device must be cpu, cuda or cuda:N, got '{name}'")
    return device


@contextlib.contextmanager
def _deterministic(enabled: bool, device: torch.device) -> Iterator[None]:
    if not enabled:
        yield
        return
    if device.type == "cuda":
        # cuBLAS needs this before its first use to pick reproducible reductions.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    previous = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.backends.cudnn.benchmark = previous[1]


def _batches(
    images: ArrayImages | FileImages, order: np.ndarray, batch_size: int, workers: int, *, drop_single: bool
) -> Iterator[tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]]:
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_single and len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks.pop()  # batch norm cannot normalise a batch of one in training mode
    if isinstance(images, FileImages) and workers > 0:
        loader = torch.utils.data.DataLoader(
            images,
            batch_sampler=[c.tolist() for c in chunks],
            num_workers=workers,
            # A private generator keeps the loader from drawing on the global RNG.
            generator=torch.Generator().manual_seed(0),
        )
        yield from loader
    else:
        for chunk in chunks:
            yield images.batch(chunk)


def _to_input(images, mean: torch.Tensor, std: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    x = x.to(device, non_blocking=True).float().div_(255.0)
    return (x - mean) / std


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and padded random crop, drawn from ``generator`` (on CPU)."""
    b, _, h, w = x.shape
    pad = max(1, min(h, w) // 8)
    flips = torch.rand(b, generator=generator) < 0.5
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    x = torch.where(flips.to(x.device)[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (pad, pad, pad, pad))
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


def evaluate(
    model: nn.Module, data: ImageData, device: torch.device, *, batch_size: int = 256, workers: int = 0
) -> float:
    """Top-1 accuracy (percent) of ``model`` on the test split."""
    mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in _batches(
            data.test, np.arange(len(data.test)), batch_size, workers, drop_single=False
        ):
            logits = model(_to_input(images, mean, std, device))
            correct += int((logits.argmax(1).cpu() == torch.as_tensor(labels)).sum())
    model.train(was_training)
    return 100.0 * correct / max(1, len(data.test))


def save_checkpoint(path: str | Path, state: dict) -> None:
    """``torch.save`` to a temporary file, then rename: a kill never leaves half a file."""
    path = Path(path)
    with atomic_output(path, what="checkpoint") as tmp:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, device: torch.device) -> dict:
    """A checkpoint written by :func:`save_checkpoint`, or a clear error."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise CnasError(
            f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it or pass --restart"
        ) from None
    # A readable file can still hold anything torch can pickle safely: check the layout
    # save_checkpoint writes before any of it is used.
    kinds = {"epoch": int, "model": dict, "optimizer": dict, "rng_cpu": torch.Tensor, "history": list}
    bad = ("its contents are not a dict" if not isinstance(state, dict) else
           next((f"'{k}' is missing or not a {t.__name__}" for k, t in kinds.items()
                 if not isinstance(state.get(k), t) or isinstance(state.get(k), bool)), None))
    if bad is None and not (0 <= state["epoch"] == len(state["history"])):
        bad = f"it records {state['epoch']} epochs but {len(state['history'])} history rows"
    if bad is not None:
        raise CnasError(f"checkpoint {path} is not a training checkpoint ({bad}); delete it or pass --restart")
    return state


def first_difference(saved: dict | None, now: dict) -> tuple[str, object, object]:
    """The first key of ``now`` whose value ``saved`` lacks or differs in: (name, saved, now).

    Nested dicts (the compile settings) are searched too, so the name is the setting
    that changed (``merge``), not the whole group (``settings``).
    """
    saved = saved or {}
    for key, value in now.items():
        old = saved.get(key)
        if old == value:
            continue
        if isinstance(old, dict) and isinstance(value, dict):
            inner = first_difference(old, value)
            if inner[0] != "format":
                return inner
        return key, old, value
    extra = next((k for k in saved if k not in now), None)
    return ("format", None, None) if extra is None else (extra, saved[extra], None)


def _restore(model, optimizer, state: dict, path: Path, now: dict, config: TrainConfig, device) -> None:
    saved = state.get("fingerprint")
    if saved != now:
        diff, old, new = first_difference(saved, now)

        def short(value) -> str:
            text = str(value)
            return text if len(text) <= 40 else text[:37] + "..."

        raise CnasError(
            f"checkpoint {path} was made with a different {diff} ({short(old)} vs {short(new)}); "
            "use the same options or pass --restart to train from scratch"
        )
    if state["epoch"] > config.epochs:
        raise CnasError(
            f"checkpoint {path} has {state['epoch']} epochs, more than --epochs {config.epochs}; "
            "ask for at least as many epochs or pass --restart"
        )
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError):
        raise CnasError(
            f"checkpoint {path} belongs to a different network; pass --restart to train from scratch"
        ) from None
    torch.set_rng_state(state["rng_cpu"].cpu())
    if device.type == "cuda" and state.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(state["rng_cuda"].cpu(), device)


def train_model(
    model: nn.Module,
    data: ImageData,
    config: TrainConfig = TrainConfig(),
    *,
    checkpoint_dir: str | Path | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    progress: bool = False,
    desc: str = "train",
    identity: dict | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` with SGD, evaluating on the test split every epoch.

    Parameters
    ----------
    model : nn.Module
        Maps (B, 3, S, S) images to (B, classes) logits; moved to ``config.device`` and
        trained in place.
    data : ImageData
    config : TrainConfig
    checkpoint_dir : str or Path, optional
        Where ``last.pt`` is written after every epoch. If it already holds a checkpoint
        made with the same options, training resumes from it (and a finished run returns
        at once with its recorded history).
    on_epoch : callable, optional
        Called with each epoch record after its checkpoint is on disk. On resume it is
        first called with every record the checkpoint holds: the checkpoint is the
        record of what was trained, so a caller interrupted between the checkpoint and
        its own write of an epoch gets that epoch again instead of losing it.
    progress : bool
        Show a tqdm bar with epoch, loss and accuracy (only when stderr is a terminal).
    desc : str
        Label of the progress bar.
    identity : dict, optional
        Plain values that must also match for a checkpoint to be resumed (data set,
        image size, compile settings, ...), stored beside the config's fingerprint.

    Returns
    -------
    TrainResult

    Raises
    ------
    CnasError
        For an unusable device, or a checkpoint that is unreadable or made with other
        options or another network.
    """
    from tqdm import tqdm

    device = resolve_device(config.device)
    model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.phases[0].lr, momentum=config.phases[0].momentum,
        weight_decay=config.weight_decay,
    )  # fmt: skip
    mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
    path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    result = TrainResult()
    fingerprint = {**config.fingerprint(), **(identity or {})}
    # Dropout draws on the global RNG: seed it so a fresh run is repeatable, restore it
    # from the checkpoint so a resumed one continues the same stream.
    torch.manual_seed(derive_seed(config.seed, 1))
    if path is not None and path.exists():
        state = load_checkpoint(path, device)
        _restore(model, optimizer, state, path, fingerprint, config, device)
        result.history = list(state["history"])
        result.resumed_from = int(state["epoch"])
        if on_epoch is not None:
            for record in result.history:
                on_epoch(record)
    show = progress and sys.stderr.isatty()
    n_train = len(data.train)
    steps = n_train // config.batch_size + (n_train % config.batch_size > 1)
    with _deterministic(config.deterministic, device):
        for epoch in range(result.resumed_from, config.epochs):
            phase = phase_at(config.phases, epoch)
            for group in optimizer.param_groups:
                group["lr"], group["momentum"] = phase.lr, phase.momentum
            aug = torch.Generator().manual_seed(derive_seed(config.seed, 3, epoch))
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            start = time.perf_counter()
            bar = tqdm(total=steps, desc=f"{desc} {epoch + 1}/{config.epochs}", unit="batch",
                       disable=not show, leave=False)  # fmt: skip
            with bar:
                for images, labels in _batches(
                    data.train, epoch_order(config.seed, epoch, n_train), config.batch_size,
                    config.workers, drop_single=True,
                ):  # fmt: skip
                    x = _to_input(images, mean, std, device)
                    if config.augment == "flip-crop":
                        x = augment_batch(x, aug)
                    y = torch.as_tensor(labels).to(device)
                    logits = model(x)
                    loss = F.cross_entropy(logits, y)
                    if not torch.isfinite(loss):
                        raise CnasError(
                            f"{desc}: training diverged (loss {loss.item()}) in epoch {epoch + 1}; "
                            "lower --lr"
                        )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    loss_sum += loss.item() * len(y)
                    correct += int((logits.argmax(1) == y).sum())
                    seen += len(y)
                    bar.update()
                    bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100.0 * correct / seen:.1f}")
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            test_acc = evaluate(model, data, device, batch_size=config.eval_batch_size, workers=config.workers)
            record = {
                "epoch": epoch + 1,
                "lr": phase.lr,
                "momentum": phase.momentum,
                "train_loss": loss_sum / max(1, seen),
                "train_acc": 100.0 * correct / max(1, seen),
                "test_acc": test_acc,
                "seconds": seconds,
                "eval_seconds": time.perf_counter() - start,
            }
            result.history.append(record)
            if show:
                tqdm.write(
                    f"{desc} epoch {epoch + 1}/{config.epochs}: loss {record['train_loss']:.3f} "
                    f"train {record['train_acc']:.1f}% test {test_acc:.1f}% ({seconds:.1f} s)",
                    file=sys.stderr,
                )
            if path is not None:
                save_checkpoint(path, {
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "rng_cpu": torch.get_rng_state(),
                    "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    "history": result.history,
                    "fingerprint": fingerprint,
                })  # fmt: skip
            if on_epoch is not None:
                on_epoch(record)
    accs = [r["test_acc"] for r in result.history]
    result.top1, result.best_top1 = accs[-1], max(accs)
    return result
