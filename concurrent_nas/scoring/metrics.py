"""Metrics of one partition (paper §3.3): pure functions on plain numbers.

``delta_w`` (load variability), ``Lambda`` (communication), ``eta`` (longest path
relative to the vertices per unit), the concurrency score ``CS`` and the normalised
Shannon entropy of the part weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def part_weights(weights: Sequence[int], parts: Sequence[int], units: int) -> list[int]:
    """Total weight of each of the ``units`` parts (empty parts weigh 0)."""
    totals = [0] * units
    for w, p in zip(weights, parts):
        totals[p] += w
    return totals


def load_variability(weights: Sequence[float]) -> float:
    """``delta_w`` = heaviest part / average part (1 = perfectly balanced).

    ``weights`` has one entry per unit, empty units included. A zero total gives 1.
    """
    total = sum(weights)
    if total <= 0:
        return 1.0
    return max(weights) / (total / len(weights))


def communication(
    hyperedges: Sequence[Sequence[int]], costs: Sequence[float], parts: Sequence[int]
) -> float:
    """``Lambda = sum over cut hyperedges of cost_j * (gamma_j - 1)`` (paper eq. 3).

    Parameters
    ----------
    hyperedges : sequence of sequences of int
        Vertex indices of each hyperedge.
    costs : sequence of number
        Cost of each hyperedge.
    parts : sequence of int
        Part of every vertex index.
    """
    total = 0
    for edge, cost in zip(hyperedges, costs):
        gamma = len({parts[i] for i in edge})
        total += cost * (gamma - 1)
    return total


def longest_path_ratio(longest_path: int, num_vertices: int, units: int) -> float:
    """``eta = longest input-to-output path / (|V| / n)`` (paper eq. 2).

    ``longest_path`` counts vertices (input and output included), as in the paper's
    worked examples: n = 3, a path of 6 among 9 vertices gives 2; a chain of 7 gives 3.
    """
    return longest_path / (num_vertices / units)


def concurrency_score(
    delta_w: float, comm_norm: float, eta: float, a: float = 1.0, b: float = 1.5, c: float = 1.0
) -> float:
    """``CS = (delta_w**a * Lambda'**b * eta**c) ** (1/3)`` (paper eq. 4); lower is better."""
    return (delta_w**a * comm_norm**b * eta**c) ** (1.0 / 3.0)


def normalized_entropy(weights: Sequence[float]) -> float:
    """Shannon entropy of the part-weight shares divided by ``log(len(weights))``.

    1 means perfectly balanced parts (paper Fig. 12), 0 everything on one part. With
    one part, or a zero total, it is 1 by convention (nothing to balance).
    """
    n = len(weights)
    total = sum(weights)
    if n <= 1 or total <= 0:
        return 1.0
    h = -sum((w / total) * math.log(w / total) for w in weights if w > 0)
    return h / math.log(n)
