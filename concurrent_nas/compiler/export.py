"""Portable model files: ONNX, ``torch.export`` (.pt2) and TorchScript, checked before they are kept.

:func:`export_model` writes the file beside its destination, loads it back with the
runtime a user would use (onnxruntime, ``torch.export.load``, ``torch.jit.load``), runs a
seeded image batch through it and through the PyTorch module, and moves it into place
only if every logit agrees within tolerance (:func:`compare_outputs`). A file that
disagrees is never written. Every format takes any batch size: the batch dimension is
exported as dynamic, and the check uses a batch size different from the example
the export traced.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import torch

from ..errors import CnasError
from ..rundir import atomic_output

#: Export formats and what loads each.
FORMATS = {"onnx": "onnxruntime", "pt2": "torch.export.load", "torchscript": "torch.jit.load"}
#: Tolerance of the comparison with the PyTorch module's logits (float32).
RTOL, ATOL = 1e-4, 1e-5
#: Batch of the traced example, and of the check (different, so a batch size baked
#: into the file fails the check).
EXAMPLE_BATCH, CHECK_BATCH = 2, 3


def check_export_format(fmt: str) -> str:
    """``fmt`` if it is one of :data:`FORMATS` and its runtime is installed, else a one-line error."""
    if fmt not in FORMATS:
        raise CnasError(f"--export must be one of {', '.join(FORMATS)}, got '{fmt}'")
    if fmt == "onnx":
        import importlib.util

        missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            raise CnasError(f"--export onnx needs {', '.join(missing)}: pip install 'concurrent-nas[export]'")
    return fmt


def check_export(path: str | Path, fmt: str) -> Path:
    """``path`` as a Path if ``fmt`` can be written there (format, runtime, directory), else a one-line error."""
    check_export_format(fmt)
    path = Path(path)
    if not path.parent.is_dir():
        raise CnasError(f"cannot write {path}: directory {path.parent} does not exist; create it first")
    return path


def sample_images(net, batch: int, seed: int = 0) -> torch.Tensor:
    """A seeded batch of standard-normal images of the shape ``net`` takes."""
    s = net.settings
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, s.in_channels, s.image_size, s.image_size, generator=generator)


def compare_outputs(reference: torch.Tensor, output, *, rtol: float = RTOL, atol: float = ATOL) -> float:
    """Largest absolute difference of ``output`` from ``reference``; a :class:`CnasError` beyond tolerance.

    ``output`` may be a tensor or a NumPy array (onnxruntime's). Passes where
    ``|output - reference| <= atol + rtol * |reference|`` everywhere, as ``torch.allclose``.
    """
    output = torch.as_tensor(output)
    if tuple(output.shape) != tuple(reference.shape):
        raise CnasError(f"exported model gives shape {tuple(output.shape)}, PyTorch {tuple(reference.shape)}")
    diff = float((output - reference).abs().max())
    if not torch.allclose(output, reference, rtol=rtol, atol=atol):
        raise CnasError(f"exported model disagrees with PyTorch by up to {diff:.3g} "
                        f"(tolerance {atol:g} + {rtol:g} x |logit|); nothing written")
    return diff


def export_model(net, path: str | Path, fmt: str, *, seed: int = 0) -> float:
    """Write ``net`` as ``fmt`` to ``path`` if the written file gives PyTorch's logits.

    Parameters
    ----------
    net : ConcurrentNet
        A built network (put in eval mode here).
    path : str or Path
        The file to write; its directory must exist. Replaced only after the check.
    fmt : {"onnx", "pt2", "torchscript"}
        ONNX (opset of ``torch.onnx.export(dynamo=True)``, input ``image``, output
        ``logits``, dynamic batch), a ``torch.export`` program, or a traced TorchScript module.
    seed : int, default 0
        Seed of the example and check images.

    Returns
    -------
    float
        Largest absolute difference of the file's logits from PyTorch's on the check batch.

    Raises
    ------
    CnasError
        An unknown format or missing runtime, a missing directory, an export that fails,
        or a file whose logits disagree (nothing is written then).

    Examples
    --------
    >>> import concurrent_nas as cnas
    >>> from concurrent_nas.compiler.export import export_model
    >>> net = cnas.build_network(cnas.generate("dp", nodes=12))         # doctest: +SKIP
    >>> export_model(net, "dp12.onnx", "onnx") < 1e-4                   # doctest: +SKIP
    True
    """
    path = check_export(path, fmt)
    net = net.eval()
    example, check = sample_images(net, EXAMPLE_BATCH, seed), sample_images(net, CHECK_BATCH, seed + 1)
    with torch.no_grad():
        reference = net(check)
    with atomic_output(path, what=f"{fmt} model") as tmp, _quiet():
        try:
            _WRITERS[fmt](net, example, tmp)
            output = _RUNNERS[fmt](tmp, check)
        except CnasError:
            raise
        except Exception as exc:  # exporters raise many types; the first line says what failed
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise CnasError(f"--export {fmt} failed: {first}") from None
        return compare_outputs(reference, output)


def _batch_dim():
    return {"x": {0: torch.export.Dim("batch", min=1, max=4096)}}


def _write_onnx(net, example, path: Path) -> None:
    program = torch.onnx.export(net, (example,), dynamo=True, verbose=False, dynamic_shapes=_batch_dim(),
                                input_names=["image"], output_names=["logits"])
    program.save(str(path))


def _run_onnx(path: Path, images):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": images.numpy()})[0]


def _write_pt2(net, example, path: Path) -> None:
    torch.export.save(torch.export.export(net, (example,), dynamic_shapes=_batch_dim()), str(path))


def _run_pt2(path: Path, images):
    with torch.no_grad():
        return torch.export.load(str(path)).module()(images)


def _write_torchscript(net, example, path: Path) -> None:
    # No check_trace: the comparison of the saved file with PyTorch does that job, on the file.
    with torch.no_grad():
        torch.jit.trace(net, example, check_trace=False).save(str(path))


def _run_torchscript(path: Path, images):
    with torch.no_grad():
        return torch.jit.load(str(path))(images)


_WRITERS = {"onnx": _write_onnx, "pt2": _write_pt2, "torchscript": _write_torchscript}
_RUNNERS = {"onnx": _run_onnx, "pt2": _run_pt2, "torchscript": _run_torchscript}


@contextlib.contextmanager
def _quiet():
    # The exporters warn about deprecations and absent torchvision ops on every call;
    # none of it is about the user's model, and the check below is what counts.
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
