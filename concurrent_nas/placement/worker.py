"""One unit: a process that runs its share of an architecture for one input at a time.

:func:`run_unit` is the whole life of a unit: build the network (same weights on every
unit: rank 0 broadcasts them), derive shapes from a reference forward pass, join the
process group, then for every inference run its schedule *data-driven*: the first vertex
of its schedule whose inputs are all there runs next, and when none is ready the unit
waits for a message -- there is no barrier per layer, only one between inferences
(outside the timed region). Unit 0 holds the images (one per inference), starts the
clock, scatters the image, gathers the output and stops the clock. Every inference is
checked against the single-process outputs for its image (:mod:`.check`); the barrier
between inferences is where the units learn each other's verdict.

Tests make units fail on purpose through :mod:`.faults` (``CNAS_TEST_FAULT``).

The same entry point serves local launches (:mod:`.distributed` spawns one process per
unit and watches them) and remote ones (``cnas latency --master HOST:PORT --rank R`` on
each machine).
"""

from __future__ import annotations

import datetime
import os
import resource
import time
from dataclasses import dataclass

import networkx as nx
import numpy as np

from .. import dag as dagmod
from ..orphans import die_with_parent
from .assign import single_assignment
from .check import (Witness, agree, all_right, check_inference, make_input, reference_outputs,
                    topological_positions, verdict_error)
from .failures import MasterPortTaken, PeerLost, describe, peer_calls, reported
from .faults import FAULT_ENV, FAULT_KINDS, MESSAGE_FAULTS, FaultyTransport, fault_spec, injected_fault
from .plan import IMAGE, PlacementPlan, Transfer, build_plan
from .ports import port_in_use
from .states import BUSY, FINISHED, IN_BARRIER, SETTING_UP


@dataclass
class UnitConfig:
    """Everything a unit needs; plain picklable data."""

    dag: nx.DiGraph
    settings: object  # CompileSettings
    plan: PlacementPlan
    mode: str = "placed"  # "placed" | "threads" | "pingpong"
    transport: str = "gloo"  # "gloo" | "nccl" | "shm"
    threads: int = 1
    repeats: int = 50
    warmup: int = 10
    weights_seed: int = 0
    input_seed: int = 0
    master: str = "127.0.0.1:29500"
    timeout_s: float = 60.0
    shm_dir: str | None = None
    rtol: float = 1e-4
    atol: float = 1e-5
    probe_sizes: tuple[int, ...] = ()
    # Shared memory: how long a unit waiting for a message polls before it sleeps (0:
    # sleep at once; set when every unit has a core of its own).
    spin_s: float = 0.0
    # Mode "placed", CPU units: after every placed inference, unit 0 runs the whole network
    # alone, then every unit runs it at the same time (outside the timed region), so the
    # simulator gets its solo and contended per-vertex times from the same minutes as the
    # placed inferences: this host's speed drifts by up to a third between runs.
    calibrate: bool = False


class _Status:
    """Writes this unit's state, a heartbeat and its progress where the launcher can see them."""

    def __init__(self, rank: int, states=None, beats=None, finished=None):
        self.rank, self.states, self.beats, self.progress = rank, states, beats, finished

    def set(self, state: int) -> None:
        if self.states is not None:
            self.states[self.rank] = state
            self.beats[self.rank] = time.monotonic()

    def finished(self, inference: int) -> None:
        """This unit has run its whole schedule of ``inference``."""
        if self.progress is not None:
            self.progress[self.rank] = inference


def reference_pass(net, image):
    """Run every block once in order: (logits, {vertex: output shape})."""
    import torch

    acts, shapes = {}, {}
    with torch.inference_mode():
        for v in net.order:
            preds = sorted(net.dag.predecessors(v))
            inputs = [image] if not preds else [acts[u] for u in preds]
            acts[v] = net.blocks[str(v)](inputs)
            shapes[v] = tuple(acts[v].shape)
    return acts[net.order[-1]], shapes


def run_schedule(plan: PlacementPlan, rank: int, blocks, transport, image, status: _Status,
                 vertex_seconds: dict[int, float], witness: Witness | None = None):
    """One inference on one unit; returns the logits on unit 0, else ``None``.

    Parameters
    ----------
    plan : PlacementPlan
    rank : int
        This unit.
    blocks : nn.ModuleDict
        The compiled network's blocks (``blocks[str(v)](inputs)``).
    transport : DistTransport or ShmTransport or None
        ``None`` when the plan has a single unit.
    image : Tensor or None
        The image (unit 0 only).
    status : _Status
    vertex_seconds : dict
        Filled with each computed vertex's compute time.
    witness : Witness, optional
        Copies the checked positions of every message as it is used (see :mod:`.check`).
    """
    from time import perf_counter

    schedule = list(plan.schedules[rank])
    src = plan.input_vertex
    receives = plan.receives(rank) if transport is not None else []
    by_vertex = {t.vertex: t for t in receives}
    for t in receives:
        transport.post_recv(t)
    sends = plan.sends(rank) if transport is not None else {}
    have = {}
    if image is not None:
        have[IMAGE] = image
        for dst in sends.get(IMAGE, []):
            transport.send(image, Transfer(IMAGE, rank, dst))
    # Local uses left of every available tensor, so activations are freed early.
    uses: dict[int, int] = {}
    for v in schedule:
        for p in ([IMAGE] if v == src else plan.predecessors[v]):
            uses[p] = uses.get(p, 0) + 1

    def inputs_of(v):
        return [IMAGE] if v == src else plan.predecessors[v]

    def arrived(p) -> bool:
        if p in have:
            return True
        t = by_vertex.get(p)
        if t is not None and transport.done(t):
            have[p] = transport.tensor(t)
            if witness is not None:
                witness.saw(t, have[p])
            return True
        return False

    logits = None
    while schedule:
        ready = next((v for v in schedule if all(arrived(p) for p in inputs_of(v))), None)
        if ready is None:
            needed = [by_vertex[p] for v in schedule for p in inputs_of(v)
                      if p not in have and p in by_vertex]
            needed = list(dict.fromkeys(needed))
            status.set(needed[0].src)
            transport.wait_any(needed)
            status.set(BUSY)
            continue
        v = ready
        schedule.remove(v)
        start = perf_counter()
        out = blocks[str(v)]([have[p] for p in inputs_of(v)])
        vertex_seconds[v] = perf_counter() - start
        for dst in sends.get(v, []):
            transport.send(out, Transfer(v, rank, dst))
        for p in inputs_of(v):
            uses[p] -= 1
            if uses[p] == 0:
                del have[p]
        if v == plan.output_vertex:
            logits = out
        elif uses.get(v, 0) > 0:
            have[v] = out
    return logits


def _whole_network_plan(dag) -> PlacementPlan:
    return build_plan(dag, single_assignment(dag), 1)


def _barrier() -> None:
    import torch.distributed as dist

    with peer_calls():
        dist.barrier()


def _calibrate(whole: PlacementPlan, rank: int, blocks, image, status: _Status, keep: bool,
               solo_samples: dict, shared_samples: dict) -> None:
    """The whole network on unit 0 alone, then on every unit at once (see ``calibrate``)."""
    for together in (False, True):
        status.set(IN_BARRIER)
        _barrier()
        status.set(BUSY)
        if not together and rank != 0:
            continue
        seconds: dict[int, float] = {}
        run_schedule(whole, 0, blocks, None, image, status, seconds)
        if not keep:
            continue
        for v, s in seconds.items():
            (shared_samples if together else solo_samples).setdefault(v, []).append(s)


def _parse_master(master: str) -> tuple[str, int]:
    host, _, port = master.rpartition(":")
    return host or "127.0.0.1", int(port)


def _join_group(rank: int, world: int, master: str, backend: str, timeout: datetime.timedelta) -> None:
    """Open the rendezvous store (unit 0 listens, the others connect) and the process group."""
    import torch.distributed as dist

    host, port = _parse_master(master)
    try:
        store = dist.TCPStore(host, port, world, rank == 0, timeout=timeout)
    except RuntimeError as exc:
        if rank != 0:
            raise PeerLost(describe(exc)) from exc  # unit 0, which listens, is not there
        # The launcher picked a free port, but another process may have taken it since.
        if port_in_use(host, port):
            raise MasterPortTaken(describe(exc)) from exc
        raise
    with peer_calls():
        dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)


def run_unit(rank: int, cfg: UnitConfig, queue=None, states=None, beats=None, doorbells=None,
             finished=None) -> dict | None:
    """The life of one unit; returns the measurement on unit 0 (``None`` elsewhere).

    Errors are reported on ``queue`` as ``("error", rank, UnitError)`` when a launcher
    watches (:func:`.failures.reported`: the type says what kind of failure it was); the
    measurement of unit 0 is put there as ``("result", 0, dict)``. A wrong value in any
    inference raises :class:`.failures.OutputDiffers` on every unit (see :mod:`.check`).
    """
    try:
        result = _run_unit(rank, cfg, states, beats, doorbells, finished)
    except BaseException as exc:  # report, then let the launcher clean up
        if queue is not None:
            queue.put(("error", rank, reported(exc)))
            raise SystemExit(1) from None
        raise
    if queue is not None and result is not None:
        queue.put(("result", rank, result))
    return result


def _run_unit(rank, cfg: UnitConfig, states, beats, doorbells, finished):
    import torch
    import torch.distributed as dist

    from ..compiler import build_network as compile_net
    from .threads import threaded_forward
    from .transport import DistTransport, ShmTransport

    status = _Status(rank, states, beats, finished)
    status.set(SETTING_UP)
    torch.set_num_threads(cfg.threads)
    if cfg.mode == "pingpong":
        return _pingpong(rank, cfg, doorbells)
    plan, units = cfg.plan, cfg.plan.units
    device = "cpu"
    if cfg.transport == "nccl":
        device = f"cuda:{rank % max(1, torch.cuda.device_count())}"
    torch.manual_seed(cfg.weights_seed)
    net = compile_net(cfg.dag, cfg.settings).eval().to(device)
    total = cfg.warmup + cfg.repeats
    # Inference i (1-based) uses images[i - 1]: a different input each time, so a unit that
    # uses an earlier inference's message computes with wrong values (see .check).
    images = [make_input(cfg.settings, cfg.input_seed, i).to(device) for i in range(1, total + 1)]
    _, shapes = reference_pass(net, images[0])
    world = units if cfg.mode == "placed" else 1
    if world > 1:
        # The launcher names a hung unit after timeout_s without progress; the group's
        # own timeout is longer so that the diagnosis, not a peer's time-out, comes first.
        group_timeout = datetime.timedelta(seconds=2 * cfg.timeout_s + 10)
        _join_group(rank, world, cfg.master, "nccl" if cfg.transport == "nccl" else "gloo", group_timeout)
        with torch.no_grad(), peer_calls():  # same weights everywhere, whatever each unit's RNG did
            for tensor in net.state_dict().values():
                dist.broadcast(tensor, 0)
    plan_receives = plan.receives(rank) if world > 1 else []
    # Every unit computes the single-process outputs it will compare with, before timing.
    reference = reference_outputs(net, images, [t.vertex for t in plan_receives], keep_logits=rank == 0,
                                  on_pass=lambda: status.set(SETTING_UP))
    order = topological_positions(dagmod.topological_order(cfg.dag))
    witness = Witness(reference.positions) if plan_receives else None
    receives = [(t, images[0].shape if t.vertex == IMAGE else shapes[t.vertex]) for t in plan_receives]
    transport = None
    if world > 1 and cfg.transport == "shm":
        transport = ShmTransport(rank, receives, cfg.shm_dir, doorbells, list(plan.transfers), cfg.spin_s)
        _barrier()  # every receiver's buffers exist before anyone sends
    elif world > 1:
        transport = DistTransport(rank, receives, device=device)
    spec = fault_spec()
    if transport is not None and spec is not None and spec[1] in MESSAGE_FAULTS:
        transport = FaultyTransport(transport, rank, spec, states, finished, hold_s=cfg.timeout_s / 2)

    status.set(BUSY)
    latencies, busy, faults, sent_bytes, sent_msgs = [], [], [], [], []
    vertex_samples: dict[int, list[float]] = {}
    max_diff = 0.0
    blocks = net.blocks
    calibrate = cfg.calibrate and cfg.mode == "placed" and world > 1 and device == "cpu"
    whole = _whole_network_plan(cfg.dag) if calibrate else None
    solo_samples: dict[int, list[float]] = {}
    shared_samples: dict[int, list[float]] = {}
    fault = injected_fault(rank)
    verdict = all_right()

    def settle(index: int) -> None:
        """Every unit learns every unit's verdict on inference ``index``; raise if one was wrong."""
        if world > 1:
            with peer_calls():
                verdicts = agree(verdict, device)
        else:
            verdicts = [verdict]
        error = verdict_error(index, verdicts, plan, order)
        if error is not None:
            raise error

    with torch.inference_mode():
        for it in range(1, total + 1):
            if fault is not None and fault[1] == it:
                if fault[0] == "die":
                    os._exit(17)
                if fault[0] == "corrupt":
                    for tensor in net.state_dict().values():
                        tensor.add_(1)
                elif fault[0] == "hang":
                    status.set(BUSY)
                    time.sleep(3600)
            status.set(IN_BARRIER)
            if world > 1:  # the barrier before each inference, with the verdicts of the last one
                settle(it - 1)
            status.set(BUSY)
            if transport is not None:
                transport.begin(it)
                m0, b0 = transport.messages, transport.bytes
            if witness is not None:
                witness.seen.clear()
            image = images[it - 1]
            vertex_seconds: dict[int, float] = {}
            flt0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            if device != "cpu":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            if cfg.mode == "threads":
                logits = threaded_forward(net, image, workers=units, vertex_seconds=vertex_seconds)
            else:
                logits = run_schedule(plan, rank, blocks, transport, image if rank == 0 else None, status,
                                      vertex_seconds, witness)
            if device != "cpu":
                torch.cuda.synchronize(device)
            t1 = time.perf_counter()
            status.finished(it)
            if transport is not None:
                transport.flush()
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - flt0)
            verdict = check_inference(it, rank, world, plan, order, reference, logits=logits, witness=witness,
                                      buffers={t: transport.tensor(t) for t in plan_receives} if transport else None,
                                      rtol=cfg.rtol, atol=cfg.atol)
            if rank == 0:
                max_diff = max(max_diff, float((logits - reference.logits[it - 1]).abs().max()))
            if world == 1:
                settle(it)
            if it > cfg.warmup:
                latencies.append(t1 - t0)
                busy.append(sum(vertex_seconds.values()))
                if transport is not None:
                    sent_msgs.append(transport.messages - m0)
                    sent_bytes.append(transport.bytes - b0)
                for v, s in vertex_seconds.items():
                    vertex_samples.setdefault(v, []).append(s)
            if calibrate and it >= cfg.warmup:  # the last warm-up inference warms it up
                _calibrate(whole, rank, blocks, image, status, it > cfg.warmup, solo_samples, shared_samples)
    status.set(IN_BARRIER)
    if world > 1:
        settle(total)
    mine = {
        "busy_s": busy, "faults": faults[cfg.warmup:], "bytes": sent_bytes, "messages": sent_msgs,
        "vertex_s": vertex_samples, "contended_vertex_s": shared_samples,
    }
    gathered = [mine]
    if world > 1:
        gathered = [None] * world if rank == 0 else None
        with peer_calls():
            dist.gather_object(mine, gathered, dst=0)
            dist.destroy_process_group()
    status.set(FINISHED)
    if rank != 0:
        return None
    return {
        "latency_s": latencies,
        "max_abs_diff": max_diff,
        "checked_inferences": total,
        "out_bytes": {v: int(np.prod(shape)) * 4 for v, shape in shapes.items()},
        "image_bytes": int(images[0].numel()) * images[0].element_size(),
        "units": gathered,
        "solo_vertex_s": solo_samples,
        "pid": os.getpid(),
    }


def _pingpong(rank: int, cfg: UnitConfig, doorbells):
    """Round trips of every message size in ``cfg.plan`` between units 0 and 1.

    The plan holds, per size, a message 0 -> 1 (even vertex id, size in its shape) and
    the reply 1 -> 0. Returns, on unit 0, ``{size_bytes: [one-way seconds, ...]}`` and the
    sender's CPU time per message.
    """
    import torch
    import torch.distributed as dist

    from .transport import DistTransport, ShmTransport

    plan = cfg.plan
    _join_group(rank, 2, cfg.master, "gloo", datetime.timedelta(seconds=cfg.timeout_s))
    sizes = cfg.probe_sizes
    receives = [(t, (sizes[t.vertex // 2] // 4,)) for t in plan.transfers if t.dst == rank]
    if cfg.transport == "shm":
        transport = ShmTransport(rank, receives, cfg.shm_dir, doorbells, list(plan.transfers), cfg.spin_s)
    else:
        transport = DistTransport(rank, receives)
    _barrier()
    payload = {i: torch.randn(s // 4) for i, s in enumerate(sizes)}
    one_way: dict[int, list[float]] = {s: [] for s in sizes}
    send_cpu: list[float] = []
    it = 0
    for i, size in enumerate(sizes):
        there, back = Transfer(2 * i, 0, 1), Transfer(2 * i + 1, 1, 0)
        for rep in range(cfg.warmup + cfg.repeats):
            it += 1
            _barrier()
            transport.begin(it)
            if rank == 0:
                transport.post_recv(back)
                t0 = time.perf_counter()
                transport.send(payload[i], there)
                t1 = time.perf_counter()
                transport.wait_any([back])
                t2 = time.perf_counter()
                if rep >= cfg.warmup:
                    one_way[size].append((t2 - t0) / 2)
                    send_cpu.append(t1 - t0)
            else:
                transport.post_recv(there)
                transport.wait_any([there])
                transport.send(transport.tensor(there), back)
            transport.flush()
    with peer_calls():
        dist.destroy_process_group()
    if rank != 0:
        return None
    return {"one_way_s": one_way, "send_cpu_s": send_cpu}


def unit_process_main(rank, cfg, queue, states, beats, doorbells, finished=None):
    """Entry point of a spawned unit process."""
    die_with_parent()  # no orphans, even when the launcher is SIGKILLed
    run_unit(rank, cfg, queue, states, beats, doorbells, finished)
