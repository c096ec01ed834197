"""Scoring settings: the one place their defaults are typed and their values checked.

``cnas score`` derives its flags from :class:`ScoreConfig` (defaults and help text),
so every message here names the flag a user would change. :func:`data_unit` is the
default of ``unit_bytes``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CnasError
from .hypergraph import COSTS, UC_MODES, check_costs
from .partition import DEFAULT_PARTITIONER, DEFAULT_PRESET, PRESETS, REBALANCE_VERSION, check_partitioner, preset_path

DEFAULT_UNITS = (4, 6, 8, 10)
DEFAULT_EPS = (0.03, 0.1, 0.2, 0.3, 0.5)
DEFAULT_CHUNK = 20
# Seconds one architecture may take before its worker is taken for hung. A 82-vertex
# architecture takes about 0.1 s for 20 partitions; the limit is for hangs, not for speed.
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class ScoreConfig:
    """Everything that determines the scores of a run (and so its checkpoints).

    Fields mirror :func:`~concurrent_nas.scoring.score_architecture`.

    Parameters
    ----------
    units : tuple of int, default (4, 6, 8, 10)
        Unit counts n to partition each architecture over.
    eps : tuple of float, default (0.03, 0.1, 0.2, 0.3, 0.5)
        KaHyPar imbalance bounds, one partition per (units, eps).
    costs : {"flops", "uniform"}, default "flops"
        Vertex weight = FLOPs and hyperedge cost = output bytes, or all 1.
    a : float, default 1.0
        Exponent of delta_w in CS.
    b : float, default 1.5
        Exponent of Lambda' in CS.
    c : float, default 1.0
        Exponent of eta in CS.
    seed : int, default 0
        KaHyPar seed.
    preset : {"fast", "quality"}, default "fast"
        KaHyPar configuration: fast (coarsening to 3k vertices, 1 initial partitioning
        run) or quality (the stock sea20: 20 runs).
    partitioner : {"kahypar", "mtkahypar"}, default "kahypar"
        Partitioning library: KaHyPar, or Mt-KaHyPar in its deterministic mode (the
        mtkahypar extra; docs/scoring.md says which to use where).
    unit_bytes : float, optional
        U_c in bytes for Lambda' (default: the stem feature map). Must be positive.
    uc : {"global", "generator"}, default "global"
        U_c: one unit for every architecture (``unit_bytes``, default the stem map), or
        the paper's "smallest communication of an edge": the cheapest feature map each
        architecture sends (excludes ``unit_bytes``).
    settings : CompileSettings, optional
        Compile settings behind the FLOPs and bytes (``None``: the defaults).
    chunk : int, default 20
        Architectures per checkpointed task.

    Raises
    ------
    CnasError
        If a value is out of range; the message names the ``cnas score`` flag.
    """

    units: tuple[int, ...] = DEFAULT_UNITS
    eps: tuple[float, ...] = DEFAULT_EPS
    costs: str = "flops"
    a: float = 1.0
    b: float = 1.5
    c: float = 1.0
    seed: int = 0
    preset: str = DEFAULT_PRESET
    partitioner: str = DEFAULT_PARTITIONER
    unit_bytes: float | None = None
    uc: str = "global"
    settings: Any = None
    chunk: int = DEFAULT_CHUNK

    def __post_init__(self):
        # Lists are accepted from callers; the frozen config keeps tuples (hashable).
        object.__setattr__(self, "units", as_tuple(self.units, "--units"))
        object.__setattr__(self, "eps", as_tuple(self.eps, "--eps"))
        for k in self.units:
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise CnasError(f"--units: units must be a positive integer, got {k!r}")
        for e in self.eps:
            if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e) or e <= 0:
                raise CnasError(f"--eps: eps must be a positive number (allowed imbalance, e.g. 0.03), got {e!r}")
        if self.costs not in COSTS:
            raise CnasError(f"--costs must be one of {', '.join(COSTS)}, got {self.costs!r}")
        if self.preset not in PRESETS:
            raise CnasError(f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        check_partitioner(self.partitioner)
        if isinstance(self.chunk, bool) or not isinstance(self.chunk, int) or self.chunk < 1:
            raise CnasError(f"--chunk-size must be at least 1, got {self.chunk}")
        for name in ("a", "b", "c"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise CnasError(f"--{name}: exponent {name} must be a finite number, got {value}")
        # 0 B would make every Lambda' infinite and every row drop out as NaN.
        if self.unit_bytes is not None and not (math.isfinite(self.unit_bytes) and self.unit_bytes > 0):
            raise CnasError(f"--unit-bytes must be a positive number of bytes, got {self.unit_bytes:g}")
        if self.uc not in UC_MODES:
            raise CnasError(f"--uc must be one of {', '.join(UC_MODES)}, got {self.uc!r}")
        if self.uc != "global" and self.unit_bytes is not None:
            raise CnasError(f"--unit-bytes sets a global U_c; drop it or use --uc global (got --uc {self.uc})")

    def describe(self) -> dict:
        """Plain-JSON form (the compile settings as a dict) for manifests and hashing."""
        out = dataclasses.asdict(dataclasses.replace(self, settings=None))
        out["units"], out["eps"] = list(self.units), list(self.eps)
        settings = self.settings
        if settings is None and self.costs == "flops":
            from ..shapes import CompileSettings

            settings = CompileSettings()
        out["settings"] = dataclasses.asdict(settings) if settings is not None else None
        out["unit_bytes"] = self.unit_bytes if self.unit_bytes is not None else data_unit(self.costs, self.settings)
        if self.uc != "global":
            out["unit_bytes"] = None  # per architecture: its smallest hyperedge cost
        # The preset's content, not just its name: an edited preset must not pass old
        # checkpoints or an old scores.parquet off as current.
        out["preset_sha256"] = hashlib.sha256(Path(preset_path(self.preset)).read_bytes()).hexdigest()[:16]
        if self.partitioner == DEFAULT_PARTITIONER:
            del out["partitioner"]  # so scores and checkpoints made before the choice existed still match
        out["rebalance"] = REBALANCE_VERSION  # partitions are KaHyPar's, then rebalanced
        return out


def data_unit(costs: str = "flops", settings=None) -> int:
    """U_c, the unit of data that normalises ``Lambda`` into ``Lambda'``, in bytes.

    For ``costs="flops"`` it is the stem's output feature map under ``settings``:
    ``image_size**2 * stem_channels * bytes_per_element`` (128 KiB with the default
    settings). Every architecture sends it (the input vertex feeds every first-level
    block), it depends only on the compile settings, never on the sampled wiring or the
    population, so scores stay comparable across runs, generators and sizes. The
    paper's choice ("the smallest communication of an edge in a generator") is
    ``ScoreConfig(uc="generator")``: it rescales each CS by ``U_c**(-b/3)``, which keeps
    the order within a generator whose smallest edge is the same for every
    architecture, but not the order across generators (at the defaults FB's smallest
    edge is 32 KiB, the others' 16 KiB).
    For ``costs="uniform"`` every feature map costs 1 and U_c = 1.
    """
    check_costs(costs)
    if costs == "uniform":
        return 1
    from ..shapes import CompileSettings

    s = settings if settings is not None else CompileSettings()
    return int(s.image_size) ** 2 * int(s.stem_channels) * int(s.bytes_per_element)


def as_tuple(values, flag: str) -> tuple:
    """``values`` (one number or several) as a non-empty tuple without repeats; errors name ``flag``."""
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = (values,)
    values = tuple(values)
    if not values:
        raise CnasError(f"{flag} needs at least one value")
    if len(set(values)) != len(values):
        raise CnasError(f"{flag} has a repeated value: {list(values)}")
    return values


def check_timeout(timeout: float | None) -> float | None:
    """``timeout`` as seconds, or ``None`` for "never" (``None`` or 0).

    Raises
    ------
    CnasError
        If it is negative, infinite or not a number.
    """
    if timeout is not None and (not math.isfinite(timeout) or timeout < 0):
        raise CnasError(f"--timeout must be a number of seconds >= 0 (0: never), got {timeout}")
    return timeout or None


def check_workers(workers: int | None) -> None:
    """Raise a one-line error for a worker count below 1 (``None``: all cores)."""
    if workers is not None and workers < 1:
        raise CnasError(f"--workers must be at least 1, got {workers}")
