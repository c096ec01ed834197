"""Non-random reference architectures for the width/depth comparison (paper Fig. 10)."""

from __future__ import annotations

import networkx as nx
import numpy as np

from .registry import register

# Bottleneck blocks per stage of ResNet-50 (He et al. 2016).
RESNET50_BLOCKS = (3, 4, 6, 3)


@register(
    "chain",
    color="#7F7F7F",
    summary="a plain chain of blocks: the single-chain extreme, no concurrency at all",
    family="reference",
    random=False,
    builds_dag=True,
)
def chain(n: int, rng: np.random.Generator) -> nx.DiGraph:
    """Blocks 0 -> 1 -> ... -> n-1."""
    return nx.path_graph(n, create_using=nx.DiGraph)


@register(
    "resnet50",
    color="#000000",
    summary="ResNet-50 at block level: 16 bottlenecks (1x1, 3x3, 1x1, add) with residual branches",
    family="reference",
    random=False,
    builds_dag=True,
    fixed_size=True,
)
def resnet50(n: int, rng: np.random.Generator) -> nx.DiGraph:
    """ResNet-50's block graph; ``n`` is ignored (always 68 blocks).

    Each bottleneck is three convolution vertices and an add vertex; the add also takes
    the shortcut: the previous add (identity) or, in the first block of a stage, a
    projection vertex. The 3x3 convolution and the projection of the first block of
    stages 2-4 carry ``stage=True`` (stride 2, channels doubled).
    """
    dag = nx.DiGraph()
    previous = None  # vertex whose output enters the next block (None: the stem)
    counter = iter(range(10**6))
    for stage, blocks in enumerate(RESNET50_BLOCKS):
        for block in range(blocks):
            a, b, c, add = (next(counter) for _ in range(4))
            dag.add_nodes_from((a, b, c, add))
            dag.add_edges_from([(a, b), (b, c), (c, add)])
            if block == 0:
                proj = next(counter)
                dag.add_edge(proj, add)
                if previous is not None:
                    dag.add_edges_from([(previous, a), (previous, proj)])
                if stage > 0:
                    dag.nodes[b]["stage"] = True
                    dag.nodes[proj]["stage"] = True
            else:
                dag.add_edges_from([(previous, a), (previous, add)])
            previous = add
    return dag
