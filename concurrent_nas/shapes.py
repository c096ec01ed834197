"""Shapes, parameters, FLOPs and bytes of every vertex, computed without torch.

This is the *logical* network of paper §3.2 (SPEC §3): from a DAG and
:class:`CompileSettings` it decides, for every vertex, which scaling blocks its inputs
need, whether it stages, and what it outputs. Scoring reads its costs from here on
thousands of DAGs; the compiler (:mod:`concurrent_nas.compiler`) builds exactly this
plan in torch, and the tests check that the two agree.

The network, vertex by vertex (C = channels, S = spatial size, square maps):

* **input vertex** (stem): 3x3 convolution ``in_channels -> stem_channels``, stride 1,
  padding 1, no bias, then batch norm. Output ``(stem_channels, image_size)``.
* **block** with inputs ``(C_i, S_i)`` from its predecessors (ascending id):
  every input with ``S_i > min S`` is max-pooled down to ``min S`` and every input with
  ``C_i < max C`` gets a 1x1 convolution (no bias) up to ``max C`` (the *scaling
  blocks*); then the merge of ``CompileSettings.merge`` (one learnable weight per
  input; see :data:`MERGES`), ReLU, optional staging (max-pool x2), depthwise 3x3 (no bias), pointwise 1x1
  to the output channels (no bias), batch norm. A staged block outputs
  ``min(max C * channel_multiplier, channel_cap)`` channels at half the size (floor).
* **output vertex**: the same scaling blocks and merge of its inputs (never a sigmoid
  on the inputs: see :data:`MERGES`), ReLU, global average pool, linear classifier
  (with bias) to ``num_classes`` logits.

The merge changes neither parameters (one weight per input in every variant) nor FLOPs
(its work is elementwise), so the costs below hold for every merge.

Conventions:

* FLOPs count the multiply-adds of convolutions and of the classifier, one
  multiply-add = 2 FLOPs, at batch 1. Elementwise work (sigmoid, weighted sum, ReLU,
  batch norm, pooling) is not counted, as in ``torch.utils.flop_counter`` and fvcore.
* ``params`` counts trainable parameters (batch-norm running statistics are buffers,
  not parameters).
* ``out_bytes`` is the size of the vertex's output at batch 1:
  ``C * S * S * bytes_per_element`` (the logits for the output vertex).
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
from dataclasses import dataclass

import networkx as nx
import pandas as pd

from . import dag as dagmod
from .errors import INT64_MAX, CnasError
from .resources import check_memory

STAGING_MODES = ("uniform", "greedy", "probabilistic")

#: How a block merges its (scaled) inputs x_i with its learnable weights w_i:
#:
#: * ``"sigmoid-inputs"``: sum_i w_i * sigmoid(x_i), paper §3.2 read literally.
#: * ``"sigmoid-weights"``: sum_i sigmoid(w_i) * x_i, RandWire's aggregation (Xie et
#:   al. 2019); the default.
#: * ``"sum"``: sum_i w_i * x_i, a plain learnable weighted sum.
#:
#: The default is not the paper's because the paper's merge barely learns: sigmoid
#: outputs are positive, so the ReLU after the merge passes everything, and the gradient
#: shrinks through every sigmoid on the way down a 40-block network (docs/compiler.md,
#: "Merge"). The output vertex never applies a sigmoid to its inputs: averaged over a
#: whole feature map they are 0.5 +- 0.005 for every image, which left every network at
#: chance; with ``"sigmoid-inputs"`` it merges as ``"sum"``.
MERGES = ("sigmoid-inputs", "sigmoid-weights", "sum")
DEFAULT_MERGE = "sigmoid-weights"

# Kernel of the stem convolution and of the depthwise convolution.
KERNEL = 3


@dataclass(frozen=True)
class CompileSettings:
    """How a DAG becomes a network.

    Parameters
    ----------
    image_size : int, default 32
        Height and width of the (square) input image.
    in_channels : int, default 3
        Channels of the input image.
    stem_channels : int, default 32
        Output channels of the stem (the input vertex); every block starts from here.
    channel_cap : int, default 256
        No block outputs more channels than this.
    staging : {"uniform", "greedy", "probabilistic"}, default "probabilistic"
        When a block stages (max-pool x2, channels x ``channel_multiplier`` up to the
        cap). ``"uniform"``: never, all blocks keep ``stem_channels``. ``"greedy"``:
        whenever its input channels are under the cap. ``"probabilistic"``: with
        probability ``staging_prob`` while under the cap (the paper's choice).
        A DAG whose generator prescribes staging (any vertex with ``stage=True``: FB's
        merge vertices, ResNet-50's strided blocks) stages at those vertices in every
        mode, including ``"uniform"``. Its other blocks never stage, unless the DAG says
        ``dag.graph["scaling"] = "per-block"`` (``fb-randwire``): then they stage as this
        mode says, except where halving would leave too little image for the prescribed
        stagings after them (see :func:`plan_network`).
    staging_prob : float, default 0.5
        Staging probability of the probabilistic mode.
    staging_seed : int, default 0
        Seed of the probabilistic decisions. A vertex's decision is a hash of
        (seed, vertex id, its input shapes as (channels, downsamplings since the
        image)), so it depends neither on the order in which vertices are visited, nor
        on the rest of the DAG, nor on ``image_size``.
    channel_multiplier : int, default 2
        Channel growth of a staged block.
    num_classes : int, default 10
        Logits of the classifier.
    bytes_per_element : int, default 4
        Bytes of one activation element (4 for float32), for ``out_bytes``.
    merge : {"sigmoid-weights", "sigmoid-inputs", "sum"}, default "sigmoid-weights"
        How a block merges its inputs: sigmoid on the learnable weights (RandWire),
        sigmoid on each input (the paper, literally), or a plain weighted sum; see
        :data:`MERGES`. Parameters and FLOPs are the same for all three.

    Raises
    ------
    CnasError
        If a value is out of range (unknown staging mode or merge, cap below the stem channels,
        non-positive sizes, probability outside [0, 1]).
    """

    image_size: int = 32
    in_channels: int = 3
    stem_channels: int = 32
    channel_cap: int = 256
    staging: str = "probabilistic"
    staging_prob: float = 0.5
    staging_seed: int = 0
    channel_multiplier: int = 2
    num_classes: int = 10
    bytes_per_element: int = 4
    merge: str = DEFAULT_MERGE

    def __post_init__(self) -> None:
        if self.staging not in STAGING_MODES:
            raise CnasError(
                f"unknown staging mode '{self.staging}'; choose one of {', '.join(STAGING_MODES)}"
            )
        if self.merge not in MERGES:
            raise CnasError(f"unknown merge '{self.merge}'; choose one of {', '.join(MERGES)}")
        for name in ("image_size", "in_channels", "stem_channels", "channel_cap",
                     "channel_multiplier", "num_classes", "bytes_per_element"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise CnasError(f"compile setting '{name}' must be a positive integer, got {value!r}")
        if not isinstance(self.staging_seed, int) or isinstance(self.staging_seed, bool):
            raise CnasError(f"compile setting 'staging_seed' must be an integer, got {self.staging_seed!r}")
        if self.channel_cap < self.stem_channels:
            raise CnasError(
                f"channel_cap {self.channel_cap} is below stem_channels {self.stem_channels}; "
                "raise the cap or lower the stem channels"
            )
        if not 0.0 <= float(self.staging_prob) <= 1.0:
            raise CnasError(f"staging_prob must lie in [0, 1], got {self.staging_prob}")

    def replace(self, **changes) -> CompileSettings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class VertexPlan:
    """What one vertex does; the plain-data twin of one compiled block.

    ``in_shapes`` are ``(C, S)`` of the inputs in ascending predecessor id (the image
    for the input vertex). ``pool_inputs`` / ``conv_inputs`` flag, per input, whether its
    scaling block max-pools it and/or raises its channels with a 1x1 convolution.
    ``mid_channels`` / ``mid_size`` are the merged input after scaling (before staging).
    """

    vertex: int
    role: str  # "input" | "block" | "output"
    preds: tuple[int, ...]
    in_shapes: tuple[tuple[int, int], ...]
    pool_inputs: tuple[bool, ...]
    conv_inputs: tuple[bool, ...]
    mid_channels: int
    mid_size: int
    staged: bool
    out_channels: int
    out_size: int
    params: int
    flops: int
    out_bytes: int
    halvings: int  # downsamplings between the image and this vertex's output


def _stage_draw(seed: int, vertex: int, in_shapes: tuple[tuple[int, int], ...]) -> float:
    """A uniform number in [0, 1) fixed by (seed, vertex, input shapes), platform-free.

    Not Python's ``hash`` (salted for strings) nor a shared RNG stream (order-dependent).
    """
    key = f"{seed}|{vertex}|{in_shapes}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2.0**64


def _checked_order(dag: nx.DiGraph) -> list[int]:
    """``dag.topological_order`` with ``dag.validate``'s checks, in one cheap pass.

    Scoring calls this on thousands of DAGs; anything unusual goes to ``validate`` for
    its error message.
    """
    if not isinstance(dag, nx.DiGraph) or dag.is_multigraph() or dag.number_of_nodes() < 2:
        dagmod.validate(dag)
    indegree = {}
    for v, d in dag.in_degree():
        if type(v) is not int or not 0 <= v <= INT64_MAX:
            dagmod.validate(dag)
        indegree[v] = d
    ready = [v for v, d in indegree.items() if d == 0]
    sinks = sum(1 for _, d in dag.out_degree() if d == 0)
    if len(ready) != 1 or sinks != 1:
        dagmod.validate(dag)
    heapq.heapify(ready)
    order = []
    succ = dag.succ
    while ready:
        v = heapq.heappop(ready)
        order.append(v)
        for w in succ[v]:
            indegree[w] -= 1
            if indegree[w] == 0:
                heapq.heappush(ready, w)
    if len(order) != len(indegree):
        dagmod.validate(dag)  # a cycle: raises with the vertices on it
    return order


def _stage_vertices_after(dag: nx.DiGraph, order: list[int], marked: set[int]) -> dict[int, int]:
    """Most vertices of ``marked`` on one path from each vertex's successors to the output."""
    after: dict[int, int] = {}
    for v in reversed(order):
        after[v] = max((after[w] + (w in marked) for w in dag.succ[v]), default=0)
    return after


def plan_network(dag: nx.DiGraph, settings: CompileSettings = CompileSettings()) -> list[VertexPlan]:
    """Decide every vertex's scaling, staging and shapes, in topological order.

    Parameters
    ----------
    dag : networkx.DiGraph
        A single-input, single-output architecture DAG.
    settings : CompileSettings, optional
        ``None`` means ``CompileSettings()``.

    Returns
    -------
    list of VertexPlan
        One per vertex, in :func:`concurrent_nas.dag.topological_order`.

    Raises
    ------
    CnasError
        If the DAG is not a valid architecture (cycle, several sources or sinks), its
        ``scaling`` is unknown, the settings are invalid, or the image is too small for a
        downsampling a vertex requests.

    Notes
    -----
    Vertices with ``stage=True`` always stage. In a ``"per-block"`` DAG a block between
    them that the staging mode would stage does not when its halved size would be below
    ``2**k``, k the most ``stage=True`` vertices on a path after it: the generator's
    stagings come first, so such a DAG compiles whenever they alone fit the image.
    """
    if settings is None:
        settings = CompileSettings()
    if not isinstance(settings, CompileSettings):
        raise CnasError(f"settings must be a CompileSettings, got {type(settings).__name__}")
    order = _checked_order(dag)
    source, sink = order[0], order[-1]
    s = settings
    marked = {v for v, stage in dag.nodes(data="stage") if stage}
    scaling = dag.graph.get("scaling", dagmod.SCALINGS[0])
    if scaling not in dagmod.SCALINGS:
        raise CnasError(
            f"unknown scaling {scaling!r} in the DAG's graph attributes; choose one of {', '.join(dagmod.SCALINGS)}"
        )
    exact = bool(marked) and scaling == "prescribed"
    after = _stage_vertices_after(dag, order, marked - {sink}) if marked and not exact else {}
    bpe = s.bytes_per_element
    out: dict[int, tuple[int, int, int]] = {}  # vertex -> (channels, size, halvings)
    plans: list[VertexPlan] = []
    for v in order:
        if v == source:
            c, size = s.stem_channels, s.image_size
            params = KERNEL * KERNEL * s.in_channels * c + 2 * c
            flops = 2 * KERNEL * KERNEL * s.in_channels * c * size * size
            plan = VertexPlan(v, "input", (), ((s.in_channels, size),), (False,), (False,),
                              s.in_channels, size, False, c, size, params, flops, c * size * size * bpe, 0)
            out[v] = (c, size, 0)
            plans.append(plan)
            continue
        preds = tuple(sorted(dag.pred[v]))
        shapes = tuple((out[u][0], out[u][1]) for u in preds)
        cmax = max(c for c, _ in shapes)
        smin = min(sz for _, sz in shapes)
        halv = max(out[u][2] for u in preds)
        pool = tuple(sz > smin for _, sz in shapes)
        conv = tuple(c < cmax for c, _ in shapes)
        scale_params = sum(c * cmax for (c, _), up in zip(shapes, conv) if up)
        flops = 2 * smin * smin * scale_params
        params = scale_params + len(preds)  # 1x1 convolutions + one weight per input
        if v == sink:
            params += cmax * s.num_classes + s.num_classes
            flops += 2 * cmax * s.num_classes
            plans.append(VertexPlan(v, "output", preds, shapes, pool, conv, cmax, smin, False,
                                    s.num_classes, 1, params, flops, s.num_classes * bpe, halv))
            continue
        if v in marked:
            staged = True
        elif exact or s.staging == "uniform" or cmax >= s.channel_cap:
            staged = False
        elif after.get(v, 0) and smin // 2 < 2 ** after[v]:
            staged = False  # the generator's stagings after v need the image that is left
        elif s.staging == "greedy":
            staged = True
        else:
            # Shapes relative to the image (channels, downsamplings), so an architecture
            # stages at the same vertices whatever image size it is compiled for.
            relative = tuple((out[u][0], out[u][2]) for u in preds)
            staged = _stage_draw(s.staging_seed, v, relative) < s.staging_prob
        if staged:
            if smin < 2:
                raise CnasError(
                    f"image_size {s.image_size} is too small: vertex {v} requests downsampling "
                    f"number {halv + 1}, which needs image_size >= {2 ** (halv + 1)}; use a larger "
                    "image_size, a lower channel_cap or staging='uniform'"
                )
            size = smin // 2
            c_out = min(cmax * s.channel_multiplier, s.channel_cap) if cmax < s.channel_cap else cmax
            halv += 1
        else:
            size, c_out = smin, cmax
        # depthwise 3x3 + pointwise 1x1 + batch norm (weight and bias)
        params += KERNEL * KERNEL * cmax + cmax * c_out + 2 * c_out
        flops += 2 * size * size * (KERNEL * KERNEL * cmax + cmax * c_out)
        out[v] = (c_out, size, halv)
        plans.append(VertexPlan(v, "block", preds, shapes, pool, conv, cmax, smin, staged,
                                c_out, size, params, flops, c_out * size * size * bpe, halv))
    return plans


def _scaling_text(plan: VertexPlan) -> list[str]:
    """Human- and parquet-friendly description of a vertex's scaling blocks."""
    items = []
    for u, (c, size), pool, conv in zip(plan.preds, plan.in_shapes, plan.pool_inputs, plan.conv_inputs):
        parts = []
        if pool:
            parts.append(f"maxpool {size}->{plan.mid_size}")
        if conv:
            parts.append(f"conv1x1 {c}->{plan.mid_channels}")
        if parts:
            items.append(f"{u}: " + ", ".join(parts))
    return items


def shape_pass(dag: nx.DiGraph, settings: CompileSettings = CompileSettings()) -> pd.DataFrame:
    """Per-vertex shapes and costs of the network that ``build_network(dag, settings)`` builds.

    Parameters
    ----------
    dag : networkx.DiGraph
        A single-input, single-output architecture DAG.
    settings : CompileSettings

    Returns
    -------
    pandas.DataFrame
        Indexed by vertex id (name ``vertex``) in topological order, columns:
        ``role`` ("input" | "block" | "output"), ``preds`` (list),
        ``in_shapes`` (list of ``(C, H, W)`` per input, ascending predecessor id; the
        image for the input vertex), ``scaling_blocks`` (list of str, one per input that
        needs one, e.g. ``"3: maxpool 32->16, conv1x1 32->64"``), ``staged`` (bool),
        ``out_channels``, ``out_size``, ``out_shape`` (``(C, H, W)``; ``(num_classes,)``
        for the output vertex), ``params``, ``flops`` (1 multiply-add = 2 FLOPs, batch
        1), ``out_bytes`` (batch 1).

    Raises
    ------
    CnasError
        As :func:`plan_network`.
    """
    plans = plan_network(dag, settings)
    # Column lists, not a list of row dicts: building the frame dominates otherwise.
    columns = {
        "role": [p.role for p in plans],
        "preds": [list(p.preds) for p in plans],
        "in_shapes": [[(c, sz, sz) for c, sz in p.in_shapes] for p in plans],
        "scaling_blocks": [_scaling_text(p) for p in plans],
        "staged": [p.staged for p in plans],
        "out_channels": [p.out_channels for p in plans],
        "out_size": [p.out_size for p in plans],
        "out_shape": [
            (p.out_channels,) if p.role == "output" else (p.out_channels, p.out_size, p.out_size) for p in plans
        ],
        "params": [p.params for p in plans],
        "flops": [p.flops for p in plans],
        "out_bytes": [p.out_bytes for p in plans],
    }
    index = pd.Index([p.vertex for p in plans], name="vertex")
    return pd.DataFrame(columns, index=index)


def vertex_costs(
    dag: nx.DiGraph, settings: CompileSettings = CompileSettings()
) -> tuple[dict[int, int], dict[int, int]]:
    """FLOPs and output bytes of every vertex, without building a table.

    The fast path for scoring thousands of DAGs; same numbers as :func:`shape_pass`.

    Returns
    -------
    (dict, dict)
        ``{vertex: flops}`` and ``{vertex: output bytes}`` (batch 1), keyed in
        topological order.
    """
    plans = plan_network(dag, settings)
    return {p.vertex: p.flops for p in plans}, {p.vertex: p.out_bytes for p in plans}


def count_params(dag: nx.DiGraph, settings: CompileSettings = CompileSettings()) -> int:
    """Trainable parameters of the network ``build_network(dag, settings)`` builds."""
    return sum(p.params for p in plan_network(dag, settings))


def totals(dag: nx.DiGraph, settings: CompileSettings = CompileSettings()) -> dict[str, int]:
    """Whole-network totals: ``params``, ``flops``, ``activation_bytes`` (sum of outputs), ``staged``."""
    plans = plan_network(dag, settings)
    return {
        "params": sum(p.params for p in plans),
        "flops": sum(p.flops for p in plans),
        "activation_bytes": sum(p.out_bytes for p in plans),
        "staged": sum(p.staged for p in plans),
    }


def check_forward_fits(table: pd.DataFrame, settings: CompileSettings, batch: int = 1) -> None:
    """Refuse a forward pass whose input and activations (from :func:`shape_pass`) exceed free memory.

    Raises
    ------
    CnasError
        With the estimate and the memory available, before any tensor is allocated.
    """
    image = settings.in_channels * settings.image_size**2 * settings.bytes_per_element
    check_memory(batch * (image + int(table["out_bytes"].sum())),
                 f"the input and activations of a forward pass at image size {settings.image_size}",
                 "use a smaller --image-size")
