"""A discrete-event latency model for more units than the hardware has.

Fed by *measured* numbers: per-vertex compute times (from a real run of the network) and
a transfer model fitted to real messages (:class:`TransferModel`: a fixed cost per message
plus bytes / bandwidth, and the sender's CPU time per message). Units follow the same
policy as the real ones in :mod:`.worker`: each runs the first vertex of its schedule whose
inputs have arrived, one at a time; unit 0 scatters the image at time 0 and the latency is
the time the output vertex finishes there.

Bandwidth and latency are plain parameters, so the same architecture can be modelled on
an edge network (e.g. ``TransferModel.network(bandwidth_mbit=100, latency_ms=1)``).
Results of this module are always labelled ``simulated``.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .plan import IMAGE, PlacementPlan, Transfer


@dataclass(frozen=True)
class TransferModel:
    """One-way time of a message: ``latency_s + bytes / bandwidth_Bps``.

    Attributes
    ----------
    latency_s : float
        Fixed cost per message (software overhead, wake-up of the receiver, wire latency).
    bandwidth_Bps : float
        Bytes per second.
    send_cpu_s : float
        Time the *sender* is kept from computing per message (copy, hand-off); the rest
        of the transfer overlaps with its computation.
    source : str
        Where the numbers come from (``"measured gloo loopback"``, ``"assumed"``, ...).
    """

    latency_s: float
    bandwidth_Bps: float
    send_cpu_s: float = 0.0
    source: str = "assumed"

    def seconds(self, nbytes: int) -> float:
        """One-way time of a message of ``nbytes`` bytes."""
        return self.latency_s + nbytes / self.bandwidth_Bps

    @classmethod
    def network(cls, *, bandwidth_mbit: float, latency_ms: float, send_cpu_ms: float = 0.05) -> "TransferModel":
        """A network link given in Mbit/s and one-way milliseconds (edge-network what-ifs)."""
        return cls(latency_ms / 1e3, bandwidth_mbit * 1e6 / 8, send_cpu_ms / 1e3,
                   source=f"assumed {bandwidth_mbit:g} Mbit/s, {latency_ms:g} ms")


def fit_transfer_model(sizes, one_way_s, *, send_cpu_s: float = 0.0, source: str = "measured") -> TransferModel:
    """Least-squares fit of ``one_way = latency + bytes / bandwidth`` to measured points.

    Parameters
    ----------
    sizes : sequence of int
        Message sizes in bytes.
    one_way_s : sequence of float
        Measured one-way times (half a round trip), seconds.
    """
    x = np.asarray(sizes, dtype=float)
    y = np.asarray(one_way_s, dtype=float)
    # Relative residuals: small messages (most of them) count as much as large ones.
    slope, intercept = np.polyfit(x, y, 1, w=1.0 / y)
    slope = max(slope, 1e-15)
    return TransferModel(max(float(intercept), 0.0), float(1.0 / slope), send_cpu_s, source)


@dataclass(frozen=True)
class SimulatedRun:
    """Outcome of :func:`simulate`: latency, per-unit busy time, traffic."""

    latency_s: float
    busy_s: tuple[float, ...]
    bytes_sent: int
    messages: int
    finish_s: dict


def simulate(
    plan: PlacementPlan,
    vertex_s: Mapping[int, float],
    out_bytes: Mapping[int, int],
    image_bytes: int,
    transfer: TransferModel,
    *,
    compute_scale: float = 1.0,
) -> SimulatedRun:
    """Latency of one inference of ``plan`` under the model.

    Parameters
    ----------
    plan : PlacementPlan
        Schedules and transfers.
    vertex_s : mapping int -> float
        Compute time of every vertex on one unit, seconds (measured).
    out_bytes : mapping int -> int
        Bytes of every vertex's output.
    image_bytes : int
        Bytes of the input image (the scatter).
    transfer : TransferModel
        Cost of a message.
    compute_scale : float
        Multiplies every compute time (e.g. the slowdown of units sharing one host's
        memory bandwidth; 1 for separate devices).

    Returns
    -------
    SimulatedRun
    """
    units = plan.units
    src = plan.input_vertex
    pending = [list(s) for s in plan.schedules]
    avail: list[dict[int, float]] = [dict() for _ in range(units)]  # unit -> vertex -> time there
    sends = [plan.sends(u) for u in range(units)]
    free_at = [0.0] * units
    idle = [True] * units
    busy = [0.0] * units
    finish: dict[int, float] = {}
    events: list[tuple[float, int, int, str, int]] = []  # (time, seq, unit, kind, vertex)
    seq = 0
    nbytes = 0
    messages = 0

    def push(t, unit, kind, v):
        nonlocal seq
        heapq.heappush(events, (t, seq, unit, kind, v))
        seq += 1

    def ship(unit, v, t):
        # The sender pays send_cpu_s per message, one after another; the wire time
        # overlaps with whatever it computes next.
        nonlocal nbytes, messages
        for dst in sends[unit].get(v, []):
            size = image_bytes if v == IMAGE else int(out_bytes[v])
            t += transfer.send_cpu_s
            busy[unit] += transfer.send_cpu_s
            push(t + transfer.seconds(size) - transfer.send_cpu_s, dst, "arrive", v)
            nbytes += size
            messages += 1
        return t

    avail[0][IMAGE] = 0.0
    free_at[0] = ship(0, IMAGE, 0.0)
    for u in range(units):
        push(free_at[u], u, "wake", -2)

    def inputs_of(v):
        return [IMAGE] if v == src else plan.predecessors[v]

    def try_start(u, now):
        if not idle[u] or not pending[u]:
            return
        if free_at[u] > now:  # still sending: decide when done, knowing what arrived by then
            push(free_at[u], u, "wake", -2)
            return
        start = now
        for v in pending[u]:
            if all(p in avail[u] and avail[u][p] <= start for p in inputs_of(v)):
                pending[u].remove(v)
                dur = float(vertex_s[v]) * compute_scale
                idle[u] = False
                busy[u] += dur
                push(start + dur, u, "finish", v)
                return

    while events:
        t, _, u, kind, v = heapq.heappop(events)
        if kind == "arrive":
            avail[u][v] = t
        elif kind == "finish":
            finish[v] = t
            avail[u][v] = t
            idle[u] = True
            free_at[u] = ship(u, v, t)
        try_start(u, t)
    unfinished = [v for s in pending for v in s]
    if unfinished:
        raise RuntimeError(f"simulation stalled with vertices {unfinished[:5]} unscheduled")
    return SimulatedRun(finish[plan.output_vertex], tuple(busy), nbytes, messages, finish)


def relative_error(simulated_s: float, measured_s: float) -> float:
    """``(simulated - measured) / measured``: positive when the model is pessimistic."""
    return (simulated_s - measured_s) / measured_s


def transfers_of(plan: PlacementPlan, unit: int) -> list[Transfer]:
    """Messages ``unit`` sends in one inference (convenience for reports)."""
    return [t for t in plan.transfers if t.src == unit]
