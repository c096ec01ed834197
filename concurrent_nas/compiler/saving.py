"""One file holding architecture, compile settings and weights, loadable with ``weights_only=True``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..errors import CnasError
from ..graphjson import from_node_link, to_node_link
from ..rundir import atomic_output
from ..shapes import CompileSettings
from .network import ConcurrentNet

FORMAT = "concurrent-nas-model/1"
#: The merge of every model saved before ``CompileSettings.merge`` existed.
LEGACY_MERGE = "sigmoid-inputs"


def save_model(net: ConcurrentNet, path: str | Path) -> None:
    """Write ``net`` (DAG as node-link data, settings, state dict) to ``path`` atomically.

    The file holds only plain containers and tensors, so it loads with
    ``torch.load(path, weights_only=True)``; :func:`load_model` rebuilds the module.
    """
    path = Path(path)
    payload = {
        "format": FORMAT,
        "graph": to_node_link(net.dag),
        "settings": dataclasses.asdict(net.settings),
        "state_dict": net.state_dict(),
    }
    if not path.parent.is_dir():
        raise CnasError(f"cannot write {path}: directory {path.parent} does not exist; create it first")
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_model(path: str | Path, *, map_location: str | torch.device = "cpu") -> ConcurrentNet:
    """Rebuild a network written by :func:`save_model` (loaded with ``weights_only=True``).

    Raises
    ------
    CnasError
        If the file is missing, not a concurrent-nas model, or damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise CnasError(f"{path}: no such model file; write one with `cnas compile RUN ID --save {path}`")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or damaged files
        raise CnasError(f"{path}: not a readable model file ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CnasError(f"{path}: not a concurrent-nas model (expected format {FORMAT})")
    dag = from_node_link(payload["graph"], where=str(path))
    # Files written before the merge became a setting hold the only merge there was.
    stored = {"merge": LEGACY_MERGE, **payload["settings"]}
    try:
        settings = CompileSettings(**stored)
    except TypeError as exc:
        raise CnasError(f"{path}: stored compile settings are not understood ({exc})") from None
    net = ConcurrentNet(dag, settings)
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CnasError(f"{path}: weights do not fit the stored architecture ({first})") from None
    return net
