"""FB: the prior-work baseline, RandWire's random wiring cut into chained stages."""

from __future__ import annotations

import networkx as nx
import numpy as np

from .. import dag as dagmod
from ..errors import CnasError
from .registry import get_generator, register

# Parameters of the base generator that FB passes through.
_BASE_KEYS = {"er": ("p",), "ba": ("m",), "ws": ("k", "p"), "dp": ("p",)}


@register(
    "fb",
    color="#CC79A7",
    summary="RandWire baseline: random stages chained in series through merge + downsample vertices",
    family="prior work (staged)",
    defaults={"stages": 3, "base": "ws", "k": 4, "p": 0.75, "m": 5, "orientation": "dfs"},
    builds_dag=True,
)
def staged_randwire(
    n: int,
    rng: np.random.Generator,
    *,
    stages: int,
    base: str,
    k: int,
    p: float,
    m: int,
    orientation: str,
    scaling: str = "prescribed",
    name: str = "fb",
) -> nx.DiGraph:
    """``stages`` random graphs from ``base`` chained one after another.

    Of the n blocks, ``stages - 1`` are merge vertices between stages (``stage=True``:
    every output of a stage is gathered, downsampled and widened there); the rest are
    split as evenly as possible over the stages. Each stage draws from its own child
    random stream, so stages differ from each other. Each stage is oriented by
    ``orientation`` (``dfs`` or ``index``, as the undirected generators). ``scaling``
    becomes ``dag.graph["scaling"]`` (see :mod:`concurrent_nas.dag`): ``fb`` keeps
    ``prescribed``, staging at its merge vertices only, so its numbers and its
    ``params`` stay what every results file measured; ``fb-randwire`` passes its own
    (``per-block`` by default). ``name`` is the generator that errors name.
    """
    if base not in _BASE_KEYS:
        raise CnasError(
            f"parameter 'base' of generator '{name}' must be one of {', '.join(_BASE_KEYS)}, got '{base}'"
        )
    if scaling not in dagmod.SCALINGS:
        raise CnasError(
            f"parameter 'scaling' of generator '{name}' must be one of {', '.join(dagmod.SCALINGS)}, got '{scaling}'"
        )
    if stages < 1:
        raise CnasError(f"parameter 'stages' of generator '{name}' must be at least 1, got {stages}")
    random_blocks = n - (stages - 1)
    sizes = [random_blocks // stages + (i < random_blocks % stages) for i in range(stages)]
    if min(sizes) < 2:
        raise CnasError(
            f"generator '{name}' needs at least 2 blocks per stage: {n} nodes cannot hold {stages} stages"
        )
    spec = get_generator(base)
    values = {"k": k, "p": p, "m": m}
    base_params = spec.resolve_params({key: values[key] for key in _BASE_KEYS[base]})
    base_params.pop("orientation", None)
    dag = nx.DiGraph(scaling=scaling)
    offset = 0
    previous_merge = None
    for stage, (size, child) in enumerate(zip(sizes, rng.spawn(stages))):
        try:
            undirected = spec.build(size, child, **base_params)
        except CnasError as exc:
            raise CnasError(
                f"generator '{name}': stage {stage} has {size} blocks, too few for its base '{base}' ({exc}); "
                "use more nodes or fewer stages"
            ) from None
        part = dagmod.orient(undirected, orientation)
        part = nx.relabel_nodes(part, {v: v + offset for v in part})
        dag.add_nodes_from(part)
        dag.add_edges_from(part.edges)
        heads = [v for v in part if part.in_degree(v) == 0]
        tails = [v for v in part if part.out_degree(v) == 0]
        offset += size
        if previous_merge is not None:
            dag.add_edges_from((previous_merge, v) for v in heads)
        if stage < stages - 1:
            merge = offset
            offset += 1
            dag.add_node(merge, stage=True)
            dag.add_edges_from((v, merge) for v in tails)
            previous_merge = merge
    return dag
