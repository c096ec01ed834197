"""Launching units as local processes, watching them, and cleaning up.

:func:`measure_placed` spawns one process per unit (``spawn`` start method: a fresh
interpreter whose environment -- allocator settings, thread counts -- is fixed before it
starts), waits for unit 0's measurement and guarantees that no unit outlives the call:
a unit that dies or makes no progress for ``timeout_s`` ends the run with a
:class:`.failures.UnitFailed` naming it, and every process is killed and reaped.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import replace

import networkx as nx
import numpy as np
import pandas as pd

from ..errors import CnasError
from .failures import MasterPortTaken, OutputDiffers, OutputMismatch, PeerLost, PortTaken, UnitError, UnitFailed
from .options import check_transport
from .plan import PlacementPlan, Transfer
from .ports import free_port
from .simulate import TransferModel, fit_transfer_model
from .states import BUSY, IN_BARRIER, SETTING_UP
from .threads import host_load
from .worker import UnitConfig, unit_process_main

# glibc returns every large (> 128 KiB) freed block to the kernel and takes it back on the
# next inference: ~100k page faults per 224x224 image and 2-3x the latency. Keeping such
# blocks in the heap removes that; 32 MiB is the largest mmap threshold glibc accepts.
ALLOCATOR_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(1024 * 1024 * 1024),
    "MALLOC_TOP_PAD_": str(64 * 1024 * 1024),
}


SETUP_TIMEOUT_S = 180.0

# How long a shared-memory unit polls for a message before it sleeps, when every unit
# has a core (:meth:`.transport.ShmTransport.wait_any`). Most waits of a 32-224 px
# inference are shorter; a longer one pays the wake-up once.
SPIN_S = 0.05

# The chain of the message-cost probe: long enough for 20 messages, small maps (32 px),
# where what a message costs besides its bytes shows most.
PROBE_CHAIN_BLOCKS = 20
PROBE_CHAIN_IMAGE = 32


def spin_budget(units: int, threads: int, free_cores: int) -> float:
    """Seconds a waiting shm unit polls: :data:`SPIN_S` when ``units * threads`` cores are
    free (:func:`.threads.host_load`), else 0: a polling unit would take a core from a
    computing one, its own peer's or another program's."""
    return SPIN_S if units * threads <= free_cores else 0.0


@contextmanager
def unit_environment(threads: int):
    """Environment the unit processes start with (allocator, thread counts)."""
    env = dict(ALLOCATOR_ENV, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _culprit(states, dead: dict[int, int], errors: dict[int, UnitError], units: int) -> tuple[int, str]:
    """The unit to blame: a dead one, else the one the others' waits lead to."""
    silent = [r for r in sorted(dead) if r not in errors]
    if silent:
        return silent[0], f"died (exit code {dead[silent[0]]})"
    if errors:
        # Peers of a failed unit lose their connections to it; the unit whose own error
        # is not a lost peer is the cause.
        first = min(errors, key=lambda r: (isinstance(errors[r], PeerLost), r))
        return first, f"failed: {errors[first]}"
    state = [int(states[r]) for r in range(units)]
    r, seen = next((r for r in range(units) if state[r] >= 0), 0), set()
    while 0 <= state[r] < units and r not in seen:
        seen.add(r)
        r = state[r]
    busy = [u for u in range(units) if state[u] in (BUSY, SETTING_UP)]
    if state[r] in (BUSY, IN_BARRIER) and r in busy:
        return r, "hung (no progress while computing)"
    if busy:
        return busy[0], "hung (no progress while computing)"
    return r, "hung (no progress)"


def launch_units(cfg: UnitConfig, *, poll_s: float = 0.05) -> dict:
    """Run ``cfg.plan.units`` unit processes locally and return unit 0's measurement.

    Raises
    ------
    UnitFailed
        A unit died, failed or hung (named in the message); all units are gone by then.
        :class:`.failures.OutputMismatch` when a value of a placed inference (a message
        or the output) differed from the single-process output for that inference's
        input, naming the vertex and the unit; :class:`.failures.PortTaken` when another process took
        the master port first.
    """
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    units = 1 if cfg.mode == "threads" else cfg.plan.units
    queue = ctx.SimpleQueue()
    states = ctx.Array("i", [SETTING_UP] * units, lock=False)
    beats = ctx.Array("d", [time.monotonic()] * units, lock=False)
    doorbells = [ctx.Semaphore(0) for _ in range(units)]
    finished = ctx.Array("i", [0] * units, lock=False)  # last inference each unit has run (the fault seam's)
    shm_dir = None
    if cfg.transport == "shm" and units > 1:
        # Here, not at the top: .transport imports torch, and `cnas`'s parser imports this
        # package (its flags come from LatencyOptions) for every command.
        from .transport import init_flags, make_shm_directory

        shm_dir = make_shm_directory()
        init_flags(shm_dir, len(cfg.plan.transfers))
        cfg = replace(cfg, shm_dir=str(shm_dir))
    procs = []
    try:
        with unit_environment(cfg.threads):
            for rank in range(units):
                p = ctx.Process(target=unit_process_main, args=(rank, cfg, queue, states, beats, doorbells, finished),
                                name=f"cnas-unit-{rank}", daemon=True)
                p.start()
                procs.append(p)
        errors: dict[int, UnitError] = {}
        result = None
        while result is None:
            while not queue.empty():
                kind, rank, payload = queue.get()
                if kind == "result":
                    result = payload
                else:
                    errors[rank] = payload
            if result is not None:
                break
            dead = {r: p.exitcode for r, p in enumerate(procs) if p.exitcode not in (None, 0)}
            # Start-up (torch import, compiling) gets a longer allowance than a stalled run.
            setting_up = any(states[r] == SETTING_UP for r in range(units))
            limit = max(cfg.timeout_s, SETUP_TIMEOUT_S) if setting_up else cfg.timeout_s
            stalled = time.monotonic() - max(beats[r] for r in range(units)) > limit
            if errors or dead or stalled:
                if dead or errors:
                    time.sleep(0.3)  # let the peers' reports of the same failure arrive
                    while not queue.empty():
                        kind, rank, payload = queue.get()
                        if kind == "error":
                            errors[rank] = payload
                    dead = {r: p.exitcode for r, p in enumerate(procs) if p.exitcode not in (None, 0)}
                unit, what = _culprit(states, dead, errors, units)
                error = errors.get(unit)
                if isinstance(error, OutputDiffers):  # every unit reports the same wrong vertex
                    raise OutputMismatch(f"{error}; all units stopped", error.unit, error.vertex)
                failed = PortTaken if isinstance(error, MasterPortTaken) else UnitFailed
                raise failed(
                    f"unit {unit} of {units} {what}; all units stopped "
                    f"(timeout {cfg.timeout_s:g}s, set it with --timeout)",
                    unit,
                )
            if all(p.exitcode == 0 for p in procs) and result is None and queue.empty():
                raise CnasError("units finished without a measurement; re-run the command")
            time.sleep(poll_s)
        for p in procs:
            p.join(timeout=cfg.timeout_s)
        return result
    finally:
        stop_processes(procs)
        if shm_dir is not None:
            shutil.rmtree(shm_dir, ignore_errors=True)


def stop_processes(procs) -> None:
    """Kill and reap every process still alive (SIGKILL: a hung unit ignores nothing)."""
    for p in procs:
        if p.is_alive():
            p.kill()
    for p in procs:
        p.join(timeout=5)


def make_config(dag, settings, plan: PlacementPlan, *, mode="placed", transport="gloo", threads=1,
                repeats=50, warmup=10, seed=0, timeout_s=60.0, master=None, calibrate=False,
                free_cores: int = 0) -> UnitConfig:
    """A :class:`UnitConfig` with a free local port unless ``master`` is given.

    ``free_cores``: cores free of other work (:func:`.threads.host_load`); shared-memory
    units poll for messages when there is one per unit and thread (:func:`spin_budget`).
    """
    check_transport(transport)
    if repeats < 1 or warmup < 0:
        raise CnasError(f"--repeats must be >= 1 and --warmup >= 0, got {repeats} and {warmup}")
    if master is None:
        master = f"127.0.0.1:{free_port()}"
    return UnitConfig(dag=dag, settings=settings, plan=plan, mode=mode, transport=transport, threads=threads,
                      repeats=repeats, warmup=warmup, weights_seed=seed, input_seed=seed, master=master,
                      timeout_s=timeout_s, calibrate=calibrate,
                      spin_s=spin_budget(plan.units, threads, free_cores))


def measure_placed(cfg: UnitConfig, *, port_retries: int = 3) -> dict:
    """:func:`launch_units`, retrying on a fresh port when the chosen one was taken meanwhile."""
    for attempt in range(port_retries):
        try:
            return launch_units(cfg)
        except PortTaken:
            if attempt + 1 == port_retries:
                raise
            cfg = replace(cfg, master=f"127.0.0.1:{free_port()}")
    raise AssertionError("unreachable")


PROBE_SIZES = (4 * 1024, 64 * 1024, 512 * 1024, 2 * 1024 * 1024, 8 * 1024 * 1024)


def probe_transfers(transport: str = "gloo", *, sizes=PROBE_SIZES, repeats: int = 30, warmup: int = 5,
                    timeout_s: float = 60.0, chain: bool = True) -> tuple[TransferModel, pd.DataFrame]:
    """Measure message times between two local units and fit a transfer model.

    Ping-pongs of every size give latency, bandwidth and the sender's CPU time: there the
    receiver is waiting, hot, when a message lands. In a placed inference it has often
    been blocked for a while, and on this VM a gloo message then costs 0.2-0.5 ms more
    than its 0.1 ms ping-pong (benchmarks/results/latency_probe.md). So, with
    ``chain``, a chain of :data:`PROBE_CHAIN_BLOCKS` blocks is also run by the real units,
    once on unit 0 and once alternating between the units; what each message adds beyond
    the ping-pong model becomes ``wake_s``.

    Returns
    -------
    (TransferModel, pandas.DataFrame)
        The fitted model and the measured points (``transport, probe, bytes, messages,
        median_ms, p10_ms, p90_ms``; ``probe`` is ``pingpong`` (one-way times) or
        ``chain-one``/``chain-alternating`` (whole inferences)).
    """
    free = host_load()[1]
    transfers = []
    for i in range(len(sizes)):
        transfers += [Transfer(2 * i, 0, 1), Transfer(2 * i + 1, 1, 0)]
    plan = PlacementPlan(units=2, assignment={}, schedules=((), ()), transfers=tuple(transfers),
                         input_vertex=0, output_vertex=0, predecessors={})
    cfg = UnitConfig(dag=nx.DiGraph(), settings=None, plan=plan, mode="pingpong", transport=transport,
                     repeats=repeats, warmup=warmup, master=f"127.0.0.1:{free_port()}", timeout_s=timeout_s,
                     probe_sizes=tuple(int(s) for s in sizes), spin_s=spin_budget(2, 1, free))
    result = launch_units(cfg)

    def row(probe, nbytes, messages, seconds):
        ms = np.asarray(seconds) * 1e3
        return {"transport": transport, "probe": probe, "bytes": int(nbytes), "messages": int(messages),
                "median_ms": float(np.median(ms)), "p10_ms": float(np.percentile(ms, 10)),
                "p90_ms": float(np.percentile(ms, 90))}

    rows = [row("pingpong", size, 1, times) for size, times in result["one_way_s"].items()]
    pings = pd.DataFrame(rows)
    model = fit_transfer_model(pings["bytes"], pings["median_ms"] / 1e3,
                               send_cpu_s=float(np.median(result["send_cpu_s"])),
                               source=f"measured {transport} on this host")
    if chain:
        model, chain_rows = _chain_probe(transport, model, repeats=repeats, warmup=warmup, timeout_s=timeout_s,
                                         free_cores=free)
        rows += [row(*r) for r in chain_rows]
    return model, pd.DataFrame(rows)


def probe_chain() -> nx.DiGraph:
    """The message-cost probe's DAG: input, :data:`PROBE_CHAIN_BLOCKS` blocks, output, in a line."""
    dag = nx.path_graph(PROBE_CHAIN_BLOCKS + 2, create_using=nx.DiGraph)
    dag.graph.update(input=0, output=PROBE_CHAIN_BLOCKS + 1)
    return dag


def _chain_probe(transport, model: TransferModel, *, repeats, warmup, timeout_s, free_cores):
    """``model`` with ``wake_s`` from a chain run on one unit and alternating over two."""
    from ..shapes import CompileSettings
    from .plan import build_plan

    dag = probe_chain()
    settings = CompileSettings(image_size=PROBE_CHAIN_IMAGE)
    order = list(nx.topological_sort(dag))
    placements = {"chain-one": {v: 0 for v in order},
                  "chain-alternating": {v: i % 2 for i, v in enumerate(order)}}
    placements["chain-alternating"][order[-1]] = 0  # the output stays on unit 0
    out = []
    for name, assignment in placements.items():
        plan = build_plan(dag, assignment, 2)
        res = measure_placed(make_config(dag, settings, plan, transport=transport, repeats=repeats, warmup=warmup,
                                         timeout_s=timeout_s, free_cores=free_cores))
        out.append((name, plan.bytes_sent(res["out_bytes"], res["image_bytes"]), len(plan.transfers), res["latency_s"]))
    (_, _, _, one), (_, nbytes, messages, alternating) = out
    # What the ping-pong model already charges for these messages on the chain's path.
    charged = messages * (model.latency_s + model.send_cpu_s) + nbytes / model.bandwidth_Bps
    extra = (float(np.median(alternating)) - float(np.median(one)) - charged) / messages
    return replace(model, wake_s=max(extra, 0.0)), out
