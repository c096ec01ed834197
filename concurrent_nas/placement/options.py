"""What a latency experiment measures: :class:`LatencyOptions` and the transports it knows.

The options check themselves when made, with the one-line messages of ``cnas latency``
(they name its flags), so a notebook gets the same errors as the command line.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CnasError
from .assign import PLACEMENTS
from .simulate import TransferModel

#: How units exchange feature maps (see :mod:`.transport`).
TRANSPORTS = ("gloo", "shm", "nccl")


def check_transport(transport: str) -> str:
    """``transport`` if it is one of :data:`TRANSPORTS`, else a :class:`CnasError`."""
    if transport not in TRANSPORTS:
        choices = f"{', '.join(TRANSPORTS[:-1])} or {TRANSPORTS[-1]}"
        raise CnasError(f"unknown transport '{transport}'; choose {choices}")
    return transport


#: The smallest image (side, pixels) the latency experiments measure.
MIN_IMAGE_SIZE = 8


def check_image_size(image_size: int) -> int:
    """``image_size`` if a latency experiment accepts it, else a :class:`CnasError`."""
    if image_size < MIN_IMAGE_SIZE:
        raise CnasError(f"--image-size must be at least {MIN_IMAGE_SIZE}, got {image_size}")
    return image_size


@dataclass(frozen=True)
class LatencyOptions:
    """What to measure for each architecture.

    Attributes
    ----------
    units : tuple of int
        Unit counts to measure.
    placements : tuple of str
        Comma-separated: kahypar (scoring's partition), paper (appendix 6.1 heuristic),
        kahypar-time and paper-time (both balanced by measured vertex times), predicted (the
        lowest simulated latency of those, a HEFT schedule and local moves), threads (one
        process, concurrent branches), single. One of :data:`.assign.PLACEMENTS` each.
    transports : tuple of str
        Comma-separated: gloo, shm (same host), nccl (GPUs, one per unit).
    threads : int
        Intra-op threads per unit.
    repeats : int
        Timed inferences per measurement.
    warmup : int
        Untimed inferences first.
    seed : int
        Seed of weights, image and KaHyPar.
    timeout_s : float
        Seconds without progress before a unit counts as hung.
    simulate_units : tuple of int
        Also simulate these unit counts, such as 4,6,8,10 (labelled simulated rows).
    network : TransferModel or None
        Message cost of the simulated units; ``None``: the measured model of the first
        transport on this host.
    calibrate : bool
        Run the whole network between the placed inferences (alone, then on every unit at
        once) so that measured rows get the simulator's error; without it placed rows do
        about a third of the compute. See :mod:`.measure`.
    """

    units: tuple[int, ...] = (1, 2)
    placements: tuple[str, ...] = ("kahypar",)
    transports: tuple[str, ...] = ("gloo",)
    threads: int = 1
    repeats: int = 50
    warmup: int = 10
    seed: int = 0
    timeout_s: float = 60.0
    simulate_units: tuple[int, ...] = ()
    network: TransferModel | None = None
    calibrate: bool = True

    def __post_init__(self) -> None:
        for flag, counts in (("--units", self.units), ("--simulate-units", self.simulate_units)):
            if (flag == "--units" and not counts) or any(isinstance(u, bool) or not isinstance(u, int) or u < 1
                                                         for u in counts):
                raise CnasError(f"{flag} must be positive, got {','.join(map(str, counts)) or 'none'}")
        bad = [p for p in self.placements if p not in PLACEMENTS]
        if bad or not self.placements:
            raise CnasError(f"unknown placement '{bad[0] if bad else ''}'; choose from {', '.join(PLACEMENTS)}")
        if not self.transports:
            check_transport("")
        for transport in self.transports:
            check_transport(transport)
        if "nccl" in self.transports:
            import torch  # only here: the options are plain data everywhere else

            if not torch.cuda.is_available():
                raise CnasError("--transport nccl needs GPUs (one per unit); none found here, use gloo or shm")
        for flag, value, low, ok in (
            ("--repeats", self.repeats, ">= 1", self.repeats >= 1),
            ("--threads", self.threads, ">= 1", self.threads >= 1),
            ("--warmup", self.warmup, ">= 0", self.warmup >= 0),
            ("--timeout", self.timeout_s, "> 0", self.timeout_s > 0),
        ):
            if not ok:
                raise CnasError(f"{flag} must be {low}, got {value}")
        if self.network is not None and not (self.network.bandwidth_Bps > 0 and self.network.latency_s >= 0):
            raise CnasError("--bandwidth-mbit must be > 0 and --latency-ms >= 0")
