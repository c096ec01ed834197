"""FB as RandWire builds it: N random vertices in every stage, widths doubling per stage.

``fb`` splits the requested block count over its stages (40 blocks: three WS stages of
12-13 vertices), which makes it a small network with cheap cuts between stages.
RandWire (Xie et al. 2019) instead gives *every* stage N vertices (N = 32 there) and
doubles the channels from one stage to the next; ``fb-randwire`` does the same.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from .registry import register
from .staged import staged_randwire


@register(
    "fb-randwire",
    color="#882255",
    summary="RandWire's FB: nodes = N random vertices per stage, each stage after a merge + downsample vertex "
            "(x2 channels); blocks inside stages stage as the compile settings say",
    family="prior work (staged)",
    defaults={"stages": 3, "base": "ws", "k": 4, "p": 0.75, "m": 5, "orientation": "index", "scaling": "per-block"},
    builds_dag=True,
)
def randwire_stages(
    n: int,
    rng: np.random.Generator,
    *,
    stages: int,
    base: str,
    k: int,
    p: float,
    m: int,
    orientation: str,
    scaling: str,
) -> nx.DiGraph:
    """``stages`` random graphs of ``n`` vertices each, chained as in RandWire.

    The DAG has ``stages * (n + 1)`` blocks: a merge vertex before every stage and
    ``n`` vertices drawn from ``base`` in it, oriented by ``orientation`` (RandWire's
    lower id -> higher id by default). Merge vertices carry ``stage=True``: the compiler
    downsamples and multiplies the channels by ``channel_multiplier`` (2) there, so the
    stages run at 2C, 4C, 8C from the stem's C (64, 128, 256 at the defaults, the last at
    the cap), as RandWire's conv3-conv5 run at C, 2C, 4C after a downsampling stem.
    The wiring inside and between stages is ``fb``'s with ``n`` vertices per stage.

    With ``scaling="per-block"`` (the default) the blocks inside the stages are scaling
    blocks as every other generator's: under the compile settings' staging mode
    (probabilistic by default) they may downsample and widen too, up to the channel cap,
    as the paper says of its FB ("All generators use probabilistic scaling blocks. FB
    represents prior work in unbiased NAS with staging blocks", §4.1). ``"prescribed"``
    stages at the merge vertices only, RandWire's own rule.
    """
    chained = staged_randwire(stages * n + stages - 1, rng, stages=stages, base=base, k=k, p=p, m=m,
                              orientation=orientation, scaling=scaling, name="fb-randwire")
    dag = nx.relabel_nodes(chained, {v: v + 1 for v in chained})
    heads = [v for v in dag if dag.in_degree(v) == 0]
    dag.add_node(0, stage=True)
    dag.add_edges_from((0, v) for v in heads)
    return dag
