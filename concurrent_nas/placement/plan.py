"""Per-unit schedules and transfers derived from an assignment: plain data, no torch.

A :class:`PlacementPlan` says, for every unit, which vertices it computes (in topological
order) and which feature maps travel between units. A cut hyperedge -- a vertex whose
consumers sit on other units -- is one transfer to each *unit* that needs it, however many
consumers sit there. The image is scattered from unit 0 to every other unit that runs the
(common) input vertex; the output vertex gathers on unit 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx

from .. import dag as dagmod
from .assign import normalize_assignment

IMAGE = -1
"""Pseudo-vertex id of the image in a :class:`Transfer` (the scatter of the input)."""


@dataclass(frozen=True)
class Transfer:
    """One message: the output of ``vertex`` (or the image, ``IMAGE``) from ``src`` to ``dst``."""

    vertex: int
    src: int
    dst: int

    @property
    def tag(self) -> int:
        """Message tag: 0 for the image, ``vertex + 1`` for a feature map."""
        return 0 if self.vertex == IMAGE else self.vertex + 1


@dataclass(frozen=True)
class PlacementPlan:
    """Where everything runs.

    Attributes
    ----------
    units : int
        Number of units (processes); unit 0 holds the image and gathers the output.
    assignment : dict int -> int
        Normalized assignment (output vertex on unit 0).
    schedules : tuple of tuple of int
        Per unit, the vertices it computes in topological order; the input vertex appears
        on every unit that consumes its output locally.
    transfers : tuple of Transfer
        Every message of one inference: the image scatter first, then feature maps in
        topological order of their vertex, by ascending destination.
    """

    units: int
    assignment: dict[int, int]
    schedules: tuple[tuple[int, ...], ...]
    transfers: tuple[Transfer, ...]
    input_vertex: int
    output_vertex: int
    predecessors: dict[int, tuple[int, ...]] = field(repr=False)

    def sends(self, unit: int) -> dict[int, list[int]]:
        """Vertex (or ``IMAGE``) -> destination units, for messages ``unit`` sends."""
        out: dict[int, list[int]] = {}
        for t in self.transfers:
            if t.src == unit:
                out.setdefault(t.vertex, []).append(t.dst)
        return out

    def receives(self, unit: int) -> list[Transfer]:
        """Messages ``unit`` receives, in plan order."""
        return [t for t in self.transfers if t.dst == unit]

    def needs_image(self, unit: int) -> bool:
        """Whether ``unit`` runs the input vertex (and so needs the image)."""
        return self.input_vertex in self.schedules[unit]

    def bytes_sent(self, out_bytes: Mapping[int, int], image_bytes: int) -> int:
        """Total bytes of one inference's messages, given each vertex's output bytes."""
        return sum(image_bytes if t.vertex == IMAGE else int(out_bytes[t.vertex]) for t in self.transfers)


class PlanBuilder:
    """:func:`build_plan` for many assignments of one DAG: the graph is read once.

    A placement search builds a plan per candidate move; reading the DAG's order,
    predecessors and successors again each time cost more than simulating the plan.
    """

    def __init__(self, dag: nx.DiGraph) -> None:
        self.dag = dag
        self.order = dagmod.topological_order(dag)
        self.src, self.dst = dagmod.input_vertex(dag), dagmod.output_vertex(dag)
        self.successors = {v: tuple(dag.successors(v)) for v in dag}
        self.predecessors = {v: tuple(sorted(dag.predecessors(v))) for v in dag}

    def __call__(self, assignment: Mapping[int, int], units: int) -> PlacementPlan:
        """The plan of ``assignment`` on ``units`` units (see :func:`build_plan`)."""
        assignment = normalize_assignment(self.dag, assignment, units, order=self.order)
        src = self.src
        # The stem is common: every unit with a local consumer of it computes it, the image
        # is what travels. Its own entry in the assignment only books where it is "owned".
        runs_stem = {assignment[w] for w in self.successors[src]}
        schedules: list[list[int]] = [[] for _ in range(units)]
        for v in self.order:
            if v == src:
                for u in sorted(runs_stem):
                    schedules[u].append(v)
            else:
                schedules[assignment[v]].append(v)
        transfers = [Transfer(IMAGE, 0, u) for u in sorted(runs_stem) if u != 0]
        for v in self.order:
            if v == src:
                continue
            home = assignment[v]
            for u in sorted({assignment[w] for w in self.successors[v]} - {home}):
                transfers.append(Transfer(v, home, u))
        return PlacementPlan(
            units=units,
            assignment=assignment,
            schedules=tuple(tuple(s) for s in schedules),
            transfers=tuple(transfers),
            input_vertex=src,
            output_vertex=self.dst,
            predecessors=self.predecessors,
        )


def build_plan(dag: nx.DiGraph, assignment: Mapping[int, int], units: int) -> PlacementPlan:
    """Derive schedules and transfers from an assignment.

    Parameters
    ----------
    dag : networkx.DiGraph
        Validated architecture DAG.
    assignment : mapping int -> int
        Unit of every vertex; normalized here (output vertex moved to unit 0).
    units : int
        Number of units.

    Returns
    -------
    PlacementPlan
    """
    return PlanBuilder(dag)(assignment, units)
