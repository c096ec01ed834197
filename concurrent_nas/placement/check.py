"""Is a placed inference right? Its own input, compared with the single-process outputs.

Every inference of a measurement gets a different image (:func:`make_input`, seeded by
the inference's number), so a unit that uses a message of an *earlier* inference -- it
read a buffer before the sender wrote it, or a transport stopped waiting -- computes
with wrong values instead of the same ones. Before the timed inferences each unit runs
the whole network (same weights on every unit) on every image once and keeps
(:class:`Reference`):

* on unit 0, the logits of each image;
* for every message the unit receives, the values at :data:`SAMPLES` fixed positions and
  the sum of the message, for each image.

During an inference a receiving unit copies those few positions of each message at the
moment it uses the message (:class:`Witness`: a gather of a few dozen numbers, the only
cost on the timed path). After the inference, untimed, :func:`check_inference` compares
them, the sum of each received buffer and unit 0's logits with the reference for that
image. The earliest wrong vertex in topological order is the cause (everything after it
was computed from it); :func:`agree` lets every unit learn it, and each raises the same
:class:`.failures.OutputDiffers` naming the vertex, the unit that sent it and the unit that
found it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .failures import OutputDiffers
from .plan import IMAGE, PlacementPlan, Transfer

#: Positions of each message copied when the message is used (and compared afterwards).
SAMPLES = 32

#: What a check found wrong (third number of a verdict).
SAMPLED, SUM, LOGITS = 1.0, 2.0, 3.0

_OK = float("inf")


def make_input(settings, seed: int, index: int = 0):
    """The image of inference ``index`` (batch 1); ``index`` 0 is the measurement's plain seed.

    Inference ``i >= 1`` of a measurement uses ``make_input(settings, seed, i)``: a
    different image for each, the same on every unit and every run.
    """
    import torch

    if index:
        seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, settings.in_channels, settings.image_size, settings.image_size, generator=g)


def sample_positions(vertex: int, numel: int):
    """The fixed positions of a message of ``vertex`` with ``numel`` elements that are checked."""
    import torch

    g = torch.Generator().manual_seed(1_000_003 + vertex)
    return torch.randint(numel, (min(SAMPLES, numel),), generator=g)


@dataclass
class Reference:
    """A unit's single-process outputs for the images of one measurement (index 1, 2, ...).

    Attributes
    ----------
    logits : list of Tensor
        Unit 0's logits per image (empty on the other units).
    samples : dict
        Received vertex (or ``IMAGE``) -> per image, the values at its sample positions.
    sums, abs_sums : dict
        Received vertex -> per image, the sum and the sum of absolute values of its output.
    positions : dict
        Received vertex -> its sample positions (:func:`sample_positions`).
    """

    logits: list = field(default_factory=list)
    samples: dict = field(default_factory=dict)
    sums: dict = field(default_factory=dict)
    abs_sums: dict = field(default_factory=dict)
    positions: dict = field(default_factory=dict)


def reference_outputs(net, images, received: list[int], *, keep_logits: bool, on_pass=lambda: None) -> Reference:
    """Run the whole network on each image and keep what :func:`check_inference` compares.

    Parameters
    ----------
    net : ConcurrentNet
        The compiled network with the measurement's weights.
    images : list of Tensor
        Image of inference 1, 2, ...
    received : list of int
        Vertices (or ``IMAGE``) whose messages this unit receives.
    keep_logits : bool
        Keep the logits (unit 0).
    on_pass : callable
        Called after each image (a heartbeat: this takes a while on big images).
    """
    import torch

    ref = Reference()
    wanted = set(received)
    with torch.inference_mode():
        for image in images:
            acts = {IMAGE: image}
            for v in net.order:
                preds = sorted(net.dag.predecessors(v))
                acts[v] = net.blocks[str(v)]([image] if not preds else [acts[u] for u in preds])
            for v in wanted:
                flat = acts[v].reshape(-1)
                if v not in ref.positions:
                    ref.positions[v] = sample_positions(v, flat.numel())
                ref.samples.setdefault(v, []).append(flat[ref.positions[v]])
                ref.sums.setdefault(v, []).append(float(flat.double().sum()))
                ref.abs_sums.setdefault(v, []).append(float(flat.double().abs().sum()))
            if keep_logits:
                ref.logits.append(acts[net.order[-1]])
            del acts
            on_pass()
    return ref


class Witness:
    """What a receiving unit saw of each message when it used it (the sampled values)."""

    def __init__(self, positions: dict):
        self.positions = positions
        self.seen: dict[Transfer, object] = {}

    def saw(self, t: Transfer, tensor) -> None:
        """Copy the sample positions of ``t``'s message now, as it is being used."""
        self.seen[t] = tensor.reshape(-1)[self.positions[t.vertex]]


def topological_positions(net_order) -> dict[int, int]:
    """Position of every vertex in the network's order, the image first (0)."""
    return {IMAGE: 0, **{v: i + 1 for i, v in enumerate(net_order)}}


def check_inference(index: int, rank: int, world: int, plan: PlacementPlan, order: dict[int, int], ref: Reference,
                    *, logits=None, witness: Witness | None = None, buffers=None, rtol: float, atol: float):
    """This unit's verdict on inference ``index`` (>= 1): ``[code, difference, what]`` (float64).

    ``code`` is ``position * world + rank`` of the earliest wrong vertex this unit found
    (``inf`` when all is right), ``what`` one of :data:`SAMPLED`, :data:`SUM`, :data:`LOGITS`.
    Compares the sampled values of every message as it was used (``witness``), the sum of
    every received buffer (``buffers``: transfer -> tensor) and, on unit 0, the logits.
    """
    import torch

    i = index - 1
    worst = (_OK, 0.0, 0.0)
    for t, seen in (witness.seen.items() if witness is not None else ()):
        want = ref.samples[t.vertex][i]
        if not torch.allclose(seen, want, rtol=rtol, atol=atol):
            worst = min(worst, (order[t.vertex], float((seen - want).abs().max()), SAMPLED))
    for t, buf in (buffers or {}).items():
        got, want = float(buf.reshape(-1).double().sum()), ref.sums[t.vertex][i]
        # |sum(x) - sum(y)| <= atol * n + rtol * sum|y| whenever x and y are allclose.
        if abs(got - want) > atol * buf.numel() + rtol * ref.abs_sums[t.vertex][i]:
            worst = min(worst, (order[t.vertex], abs(got - want), SUM))
    if logits is not None and not torch.allclose(logits, ref.logits[i], rtol=rtol, atol=atol):
        worst = min(worst, (order[plan.output_vertex], float((logits - ref.logits[i]).abs().max()), LOGITS))
    code = worst[0] if worst[0] == _OK else worst[0] * world + rank
    return torch.tensor([code, worst[1], worst[2]], dtype=torch.float64)


def verdict_error(index: int, verdicts, plan: PlacementPlan, order: dict[int, int]) -> OutputDiffers | None:
    """The error for the earliest wrong vertex among every unit's verdict (``None``: all right)."""
    code, diff, what = min(tuple(float(x) for x in v) for v in verdicts)
    if code == _OK:
        return None
    world = len(verdicts)
    position, unit = divmod(int(code), world)
    vertex = next(v for v, p in order.items() if p == position)
    if what == LOGITS:
        where = f"the output (vertex {vertex}) on unit {unit}"
        source = unit
    else:
        source = 0 if vertex == IMAGE else plan.assignment[vertex]
        name = "the image" if vertex == IMAGE else f"vertex {vertex}"
        where = f"{name} sent by unit {source} to unit {unit}"
    how = "sum off by" if what == SUM else "max abs difference"
    return OutputDiffers(
        f"{where} differs from the single-process output at inference {index} ({how} {diff:.3g})",
        vertex=vertex, unit=unit, source=source, inference=index,
    )


def agree(verdict, device="cpu"):
    """Every unit's verdict on the last inference (an all-gather; also a barrier)."""
    import torch
    import torch.distributed as dist

    mine = verdict.to(device)
    everyone = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(everyone, mine)
    return [v.cpu() for v in everyone]


def all_right():
    """The verdict of an inference where nothing was wrong (or that has not run)."""
    import torch

    return torch.tensor([_OK, 0.0, 0.0], dtype=torch.float64)
