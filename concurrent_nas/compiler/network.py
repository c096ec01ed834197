"""``ConcurrentNet``: a DAG compiled into one ``torch.nn.Module``."""

from __future__ import annotations

import networkx as nx
import torch
from torch import nn

from ..errors import CnasError
from ..shapes import CompileSettings, VertexPlan, plan_network
from .blocks import build_block


class ConcurrentNet(nn.Module):
    """A network whose dataflow is an architecture DAG, one block per vertex.

    Build it with :func:`concurrent_nas.compiler.build_network`.

    Attributes
    ----------
    dag : networkx.DiGraph
        The architecture.
    settings : CompileSettings
        How it was compiled.
    order : list of int
        Topological order in which ``forward`` runs the blocks.
    plans : dict of int to VertexPlan
        The shape pass of every vertex (what each block expects and produces).
    blocks : torch.nn.ModuleDict
        ``blocks[str(v)](inputs)``: ``inputs`` are the outputs of v's predecessors in
        ascending id (``[image]`` for the input vertex); the output vertex's block
        returns the logits.
    """

    def __init__(self, dag: nx.DiGraph, settings: CompileSettings = CompileSettings()) -> None:
        super().__init__()
        settings = CompileSettings() if settings is None else settings
        plans = plan_network(dag, settings)
        self.dag = dag
        self.settings = settings
        self.order = [p.vertex for p in plans]
        self.plans: dict[int, VertexPlan] = {p.vertex: p for p in plans}
        self.blocks = nn.ModuleDict({str(p.vertex): build_block(p, settings) for p in plans})
        position = {v: i for i, v in enumerate(self.order)}
        last_use = {}
        for p in plans:
            for u in p.preds:
                last_use[u] = max(last_use.get(u, -1), position[p.vertex])
        # Static schedule: which activations die right after step i, so forward frees
        # each feature map as soon as its last consumer has run.
        self._steps = [
            (p.vertex, str(p.vertex), p.preds, tuple(u for u in p.preds if last_use[u] == i))
            for i, p in enumerate(plans)
        ]

    @property
    def input_vertex(self) -> int:
        return self.order[0]

    @property
    def output_vertex(self) -> int:
        return self.order[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of images ``(B, in_channels, image_size, image_size)``."""
        acts: dict[int, torch.Tensor] = {}
        first, *rest = self._steps
        acts[first[0]] = self.blocks[first[1]]([x])
        for v, key, preds, dead in rest:
            acts[v] = self.blocks[key]([acts[u] for u in preds])
            for u in dead:
                del acts[u]
        return acts[self.order[-1]]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`CnasError` unless ``x`` is a batch this network accepts."""
        s = self.settings
        want = (s.in_channels, s.image_size, s.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise CnasError(
                f"input has shape {tuple(x.shape)}; this network takes (B, {want[0]}, {want[1]}, {want[2]}) "
                "(compile with another image_size / in_channels to change it)"
            )

    def extra_repr(self) -> str:
        return (f"vertices={len(self.order)}, edges={self.dag.number_of_edges()}, "
                f"staging={self.settings.staging!r}, merge={self.settings.merge!r}, "
                f"image_size={self.settings.image_size}")


def build_network(
    dag: nx.DiGraph, settings: CompileSettings = CompileSettings(), *, init_seed: int | None = None
) -> ConcurrentNet:
    """Turn an architecture DAG into a trainable ``torch.nn.Module``.

    Parameters
    ----------
    dag : networkx.DiGraph
        A single-input, single-output architecture DAG.
    settings : CompileSettings
        Channels, staging mode, image size, classes (see :class:`CompileSettings`).
    init_seed : int, optional
        Seed for the initial weights; the global torch RNG is left untouched. Without
        it, initialisation draws from the global torch RNG as ``nn.Module`` does.

    Returns
    -------
    ConcurrentNet
        Input ``(B, in_channels, image_size, image_size)`` -> logits ``(B, num_classes)``.
        Its shapes, parameters and FLOPs are those of
        :func:`concurrent_nas.shape_pass` with the same arguments.

    Raises
    ------
    CnasError
        If the DAG or the settings are invalid (see :func:`concurrent_nas.shapes.plan_network`).
    """
    if init_seed is None:
        return ConcurrentNet(dag, settings)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        return ConcurrentNet(dag, settings)


#: The first name of :func:`build_network`, kept for existing callers; it shadows the
#: builtin wherever it is imported bare, so new code uses ``build_network``.
compile = build_network
