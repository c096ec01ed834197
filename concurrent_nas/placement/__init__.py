"""Placing an architecture on several units and measuring single-input latency (SPEC §5).

* :mod:`.assign` -- which unit runs which vertex (KaHyPar, the paper's heuristic, single);
* :mod:`.plan` -- per-unit schedules and the transfers between units (plain data);
* :mod:`.worker`, :mod:`.transport`, :mod:`.distributed` -- one OS process per unit,
  torch.distributed (gloo/nccl) or shared memory between them, launched and watched;
* :mod:`.threads` -- concurrent branches inside one process;
* :mod:`.simulate` -- a discrete-event model for more units than the hardware has;
* :mod:`.measure` -- the measurement of one (architecture, units, placement) as a row.

Only :mod:`.assign`, :mod:`.plan` and :mod:`.simulate` are importable without torch.
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
from .plan import IMAGE, PlacementPlan, Transfer, build_plan

__all__ = [
    "IMAGE",
    "PLACEMENTS",
    "PlacementPlan",
    "Transfer",
    "build_plan",
    "kahypar_assignment",
    "make_assignment",
    "normalize_assignment",
    "paper_assignment",
    "parts_to_assignment",
    "sequential_groups",
    "single_assignment",
]
