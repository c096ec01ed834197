"""Pareto fronts and hypervolume of objective vectors: pure functions on arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import CnasError


def as_minimized(points, directions: Sequence[str]) -> np.ndarray:
    """``points`` (rows of objective values) with maximised columns negated."""
    values = np.asarray(points, dtype=float).reshape(-1, len(directions))
    signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    return values * signs


def pareto_mask(points, directions: Sequence[str]) -> np.ndarray:
    """True for every row no other row dominates (better or equal everywhere, better somewhere).

    Duplicated non-dominated rows are all kept.
    """
    values = as_minimized(points, directions)
    keep = np.ones(len(values), dtype=bool)
    for i, row in enumerate(values):
        dominated = np.all(values <= row, axis=1) & np.any(values < row, axis=1)
        keep[i] = not dominated.any()
    return keep


def hypervolume(points, reference, directions: Sequence[str]) -> float:
    """Area dominated by ``points`` and bounded by ``reference``, for two objectives.

    Points that do not dominate the reference add nothing. For two objectives the front is
    swept in order of the first: each point adds the rectangle between it, the previous
    point's second objective and the reference.

    Examples
    --------
    >>> hypervolume([[1, 3], [2, 1]], [4, 4], ["minimize", "minimize"])
    7.0
    """
    if len(directions) != 2:
        raise CnasError(f"hypervolume is implemented for two objectives, got {len(directions)}")
    values = as_minimized(points, directions)
    ref = as_minimized([reference], directions)[0]
    values = values[np.all(values < ref, axis=1)]
    if not len(values):
        return 0.0
    values = values[pareto_mask(values, ["minimize", "minimize"])]
    values = values[np.lexsort((values[:, 1], values[:, 0]))]
    area, ceiling = 0.0, ref[1]
    for x, y in values:
        if y < ceiling:
            area += (ref[0] - x) * (ceiling - y)
            ceiling = y
    return float(area)
