"""Placing an architecture on several units and measuring single-input latency (SPEC §5).

* :mod:`.assign` -- which unit runs which vertex (KaHyPar, the paper's heuristic, single);
* :mod:`.plan` -- per-unit schedules and the transfers between units (plain data);
* :mod:`.simulate` -- a discrete-event model for more units than the hardware has;
* :mod:`.timed` -- placements balanced by measured time and ranked by the simulator;
* :mod:`.worker`, :mod:`.transport`, :mod:`.distributed` -- one OS process per unit,
  torch.distributed (gloo/nccl) or shared memory between them, launched and watched;
  :mod:`.failures` names what goes wrong there, :mod:`.ports` the rendezvous port;
* :mod:`.threads` -- concurrent branches inside one process;
* :mod:`.measure` -- the measurement of one (architecture, units, placement) as a row;
* :mod:`.options`, :mod:`.experiment` -- what ``cnas latency`` does, as
  :class:`LatencyOptions` and :func:`latency_run`.

Importing this package does not import torch (the units and the transports do).
"""

from .assign import (
    PLACEMENTS,
    kahypar_assignment,
    make_assignment,
    normalize_assignment,
    paper_assignment,
    parts_to_assignment,
    sequential_groups,
    single_assignment,
)
from .experiment import LatencyResult, latency_run, latency_unit
from .options import TRANSPORTS, LatencyOptions
from .plan import IMAGE, PlacementPlan, Transfer, build_plan
from .simulate import SimulatedRun, TransferModel, simulate
from .timed import timed_assignment

__all__ = [
    "IMAGE",
    "PLACEMENTS",
    "TRANSPORTS",
    "LatencyOptions",
    "LatencyResult",
    "PlacementPlan",
    "SimulatedRun",
    "Transfer",
    "TransferModel",
    "build_plan",
    "kahypar_assignment",
    "latency_run",
    "latency_unit",
    "make_assignment",
    "normalize_assignment",
    "paper_assignment",
    "parts_to_assignment",
    "sequential_groups",
    "simulate",
    "single_assignment",
    "timed_assignment",
]
