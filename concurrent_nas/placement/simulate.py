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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .plan import IMAGE, PlacementPlan


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
    wake_s : float
        Added to a message that reaches a unit with nothing to compute, blocked waiting:
        the operating system's time to wake it (0 for a unit that polls).
    """

    latency_s: float
    bandwidth_Bps: float
    send_cpu_s: float = 0.0
    source: str = "assumed"
    wake_s: float = 0.0

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


@dataclass
class _Running:
    """A vertex being computed in the simulation: solo seconds of work left, since when."""

    vertex: int
    left_s: float
    updated: float
    start: float
    speed: float = 1.0


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
    contended_s: Mapping[int, float] | None = None,
    hosts: Sequence[int] | None = None,
    wait_any: bool = True,
    links: Mapping[tuple[int, int], TransferModel] | None = None,
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
        Multiplies every compute time (1 for the measured speed).
    contended_s : mapping int -> float, optional
        Compute time of every vertex while the other units of its host compute too
        (measured by the calibration passes of :class:`.worker.UnitConfig`). Units that share a host
        share its caches and memory bandwidth: a vertex progresses at
        ``vertex_s / contended_s`` of its solo speed while another unit of its host is
        busy and at full speed while it is alone, re-evaluated whenever a unit of the
        host starts or finishes a vertex.
    hosts : sequence of int, optional
        The host of every unit (default: every unit on its own host). Units of one host
        slow each other down as ``contended_s`` says, and a message between them costs
        its sender the copying time (``bytes / bandwidth``) besides ``send_cpu_s``.
    wait_any : bool
        True: a unit uses a message as soon as it arrives (shared memory). False: the
        gloo policy of :mod:`.transport` -- a unit computes what is ready and then blocks
        on the most urgent missing message, even if another has arrived meanwhile.
    links : mapping (int, int) -> TransferModel, optional
        Cost of a message from unit ``src`` to unit ``dst`` where it differs from
        ``transfer`` (units on a line or a star, where a message crosses several hops).
        Waking a blocked receiver is the receiver's cost: ``transfer.wake_s`` for every link.

    Returns
    -------
    SimulatedRun
    """
    units = plan.units
    src = plan.input_vertex
    pending = [list(s) for s in plan.schedules]
    avail: list[dict[int, float]] = [dict() for _ in range(units)]  # unit -> vertex -> time there
    sends = [plan.sends(u) for u in range(units)]
    host = list(hosts) if hosts is not None else list(range(units))
    free_at = [0.0] * units
    busy = [0.0] * units
    running: list[_Running | None] = [None] * units  # the vertex each unit computes
    version = [0] * units
    finish: dict[int, float] = {}
    events: list[tuple[float, int, int, str, int, int]] = []  # (time, seq, unit, kind, vertex, version)
    seq = 0
    nbytes = 0
    messages = 0

    def push(t, unit, kind, v, ver=0):
        nonlocal seq
        heapq.heappush(events, (t, seq, unit, kind, v, ver))
        seq += 1

    def speed(u) -> float:
        v = running[u].vertex
        alone = not any(running[w] is not None for w in range(units) if w != u and host[w] == host[u])
        if contended_s is None or alone:
            return 1.0
        return float(vertex_s[v]) / max(float(contended_s[v]), 1e-12)

    def reschedule(h, now):
        # Bring every running vertex of host h up to `now` at the speed it had, then
        # re-plan its finish at the speed the host's new state gives.
        for u in range(units):
            r = running[u]
            if r is None or host[u] != h:
                continue
            r.left_s -= (now - r.updated) * r.speed
            r.updated = now
            r.speed = speed(u)
            version[u] += 1
            push(now + max(r.left_s, 0.0) / r.speed, u, "finish", r.vertex, version[u])

    def ship(unit, v, t):
        # The sender pays send_cpu_s per message, one after another; the wire time
        # overlaps with whatever it computes next. Between units of one host there is no
        # wire: the bytes part of the time is copying by the host's CPUs, so the sender
        # pays it too (it no longer overlaps with computing).
        nonlocal nbytes, messages
        for dst in sends[unit].get(v, []):
            size = image_bytes if v == IMAGE else int(out_bytes[v])
            link = links.get((unit, dst), transfer) if links else transfer
            cpu = link.send_cpu_s
            if host[unit] == host[dst]:
                cpu += link.seconds(size) - link.latency_s
            push(t + link.seconds(size), dst, "arrive", v)
            t += cpu
            busy[unit] += cpu
            nbytes += size
            messages += 1
        return t

    # Where a vertex's output can come from on each unit: computed there, or a message.
    remote = [{tr.vertex for tr in plan.transfers if tr.dst == u} for u in range(units)]
    taken: list[set] = [set() for _ in range(units)]

    def usable(u, p, now):
        if not (p in avail[u] and avail[u][p] <= now):
            return False
        return wait_any or p not in remote[u] or p in taken[u]

    avail[0][IMAGE] = 0.0
    free_at[0] = ship(0, IMAGE, 0.0)
    for u in range(units):
        push(free_at[u], u, "wake", -2)

    def inputs_of(v):
        return [IMAGE] if v == src else plan.predecessors[v]

    def try_start(u, now):
        if running[u] is not None or not pending[u]:
            return
        if free_at[u] > now:  # still sending: decide when done, knowing what arrived by then
            push(free_at[u], u, "wake", -2)
            return
        while True:
            for v in pending[u]:
                if all(usable(u, p, now) for p in inputs_of(v)):
                    pending[u].remove(v)
                    running[u] = _Running(v, float(vertex_s[v]) * compute_scale, now, now)
                    if contended_s is None:  # speeds never change: plan this finish only
                        push(now + running[u].left_s, u, "finish", v, version[u])
                    else:
                        reschedule(host[u], now)
                    return
            if wait_any:
                return
            # Blocking receives: take the most urgent missing message if it is there,
            # else stay blocked on it (an arrival calls try_start again).
            urgent = next((p for v in pending[u] for p in inputs_of(v)
                           if p in remote[u] and p not in taken[u]), None)
            if urgent is None or not (urgent in avail[u] and avail[u][urgent] <= now):
                return
            taken[u].add(urgent)

    waking = [-1.0] * units  # when a unit blocked for a message is awake again

    while events:
        t, _, u, kind, v, ver = heapq.heappop(events)
        if kind == "arrive":
            if transfer.wake_s > 0 and running[u] is None and free_at[u] <= t and pending[u]:
                # Blocked with nothing to do: the unit sleeps and wakes wake_s later
                # (once, however many messages arrive meanwhile).
                if waking[u] < t:
                    waking[u] = t + transfer.wake_s
                    push(waking[u], u, "wake", -2)
                avail[u][v] = waking[u]
            else:
                avail[u][v] = t
        elif kind == "finish":
            if ver != version[u]:
                continue  # superseded by a change of speed
            busy[u] += t - running[u].start
            running[u] = None
            finish[v] = t
            avail[u][v] = t
            free_at[u] = ship(u, v, t)
            if contended_s is not None:
                reschedule(host[u], t)
        try_start(u, t)
    unfinished = [v for s in pending for v in s]
    if unfinished:
        raise RuntimeError(f"simulation stalled with vertices {unfinished[:5]} unscheduled")
    return SimulatedRun(finish[plan.output_vertex], tuple(busy), nbytes, messages, finish)
