"""Capacity matching: widen or narrow a sampled network until it has a baseline's parameters.

The paper compares its sampled architectures with CifarNet "at roughly equal parameter
counts" (Table 5). :func:`match_channels` gives each architecture the compile settings
whose parameter count is closest to a target: it scales the stem width and the channel
cap together by one integer step of the stem (the cap keeps its ratio to the stem), and
counts parameters with the torch-free shape pass, so a search over every width costs
a fraction of a second. :func:`parameter_target` turns ``--match-params`` (a baseline's
name or a number) into the target.

Probabilistic staging draws its coin from each vertex's input channels, so a wider
network of the same DAG may stage at other vertices: parameters are therefore not
monotone in the width, which is why every width is counted rather than bisected.
"""

from __future__ import annotations

import networkx as nx

from ..errors import CnasError
from ..shapes import CompileSettings, count_params

#: Relative distance to the target a matched network may keep (the issue's ±10 %).
TOLERANCE = 0.10
#: Widest stem the search tries; with the default cap ratio of 8 that is a cap of 8192.
MAX_STEM = 1024


def baseline_parameters(name: str, num_classes: int, image_size: int, in_channels: int = 3) -> int:
    """Trainable parameters of baseline ``name`` built for this data (on the meta device: no weights).

    Raises
    ------
    CnasError
        For an unknown baseline.
    """
    import torch

    from .baselines import build_baseline
    from .loop import count_parameters

    with torch.device("meta"):
        return count_parameters(build_baseline(name, num_classes, image_size, in_channels))


def parse_target(text: str) -> str | int:
    """``--match-params``'s value: a baseline name, or a parameter count (``1760000``, ``1.76M``, ``250k``).

    Raises
    ------
    CnasError
        For a name that is no baseline and no positive count.
    """
    from .baselines import BASELINES

    value = text.strip()
    if value.lower() in BASELINES:
        return value.lower()
    scale = {"k": 1e3, "m": 1e6}.get(value[-1:].lower(), 1)
    number = value[:-1] if scale != 1 else value
    try:
        count = float(number) * scale
    except ValueError:
        raise CnasError(
            f"--match-params: unknown baseline '{text}'; give one of {', '.join(BASELINES)} "
            "or a parameter count such as 1.76M"
        ) from None
    if not count >= 1:
        raise CnasError(f"--match-params must be a positive parameter count, got '{text}'")
    return int(round(count))


def parameter_target(match: str | int, num_classes: int, image_size: int) -> int:
    """The parameter count ``match`` names for this data: a baseline's, or the number itself."""
    target = parse_target(match) if isinstance(match, str) else int(match)
    if isinstance(target, str):
        return baseline_parameters(target, num_classes, image_size)
    return target


def width_options(settings: CompileSettings, max_stem: int = MAX_STEM) -> list[CompileSettings]:
    """Every stem width 1..``max_stem`` with the cap at the same ratio to the stem as in ``settings``."""
    ratio = settings.channel_cap / settings.stem_channels
    return [
        settings.replace(stem_channels=stem, channel_cap=max(stem, round(stem * ratio)))
        for stem in range(1, max_stem + 1)
    ]


def match_channels(
    dag: nx.DiGraph,
    settings: CompileSettings,
    target: int,
    *,
    tolerance: float = TOLERANCE,
    max_stem: int = MAX_STEM,
) -> CompileSettings:
    """The width of ``dag``'s network whose parameter count is closest to ``target``.

    Parameters
    ----------
    dag : networkx.DiGraph
        The architecture.
    settings : CompileSettings
        Everything but the widths; its cap-to-stem ratio is kept.
    target : int
        Parameters to match.
    tolerance : float
        Largest accepted ``|params - target| / target``.
    max_stem : int
        Widest stem tried.

    Returns
    -------
    CompileSettings
        ``settings`` with ``stem_channels`` and ``channel_cap`` replaced; among widths
        equally close, the narrowest.

    Raises
    ------
    CnasError
        When no width brings the network within ``tolerance`` of ``target`` (the
        message gives the closest one), or no width compiles at this image size.
    """
    best: tuple[int, CompileSettings] | None = None
    for option in width_options(settings, max_stem):
        try:
            params = count_params(dag, option)
        except CnasError:  # a width whose staging needs a larger image: not an option
            continue
        if best is None or abs(params - target) < abs(best[0] - target):
            best = (params, option)
    if best is None:
        raise CnasError(f"no channel setting compiles at image size {settings.image_size}")
    params, option = best
    if abs(params - target) > tolerance * target:
        raise CnasError(
            f"no channel setting brings this architecture within ±{tolerance:.0%} of "
            f"{target:,} parameters (closest: stem {option.stem_channels}, cap {option.channel_cap}, "
            f"{params:,}); choose another target"
        )
    return option
