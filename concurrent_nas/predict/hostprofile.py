"""``cnas profile``: measure the ``this-host`` device profile.

Blocks are timed on a grid of channels x feature-map sizes x input counts (the shapes
that occur in compiled networks), one intra-op thread, and the compute model
``overhead + FLOPs / rate + bytes / bandwidth`` is fitted to them by non-negative least
squares. The probe the latency experiments already use
(:func:`concurrent_nas.placement.distributed.probe_transfers`) gives the links, gloo and
shared memory between two local processes (the profile's link is the one named by
``transport``, the other is kept in its sources), and, from a chain run by a unit
process, what a block costs there beyond its isolated time (added to ``overhead_us``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import networkx as nx
import numpy as np

from ..errors import CnasError
from ..rundir import atomic_output
from ..shapes import CompileSettings, plan_network
from .predict import bytes_moved
from .profiles import ComputeModel, DeviceProfile, LinkModel, profile_to_toml

#: The grid ``cnas profile`` times: channels x sizes x inputs per block.
CHANNELS = (16, 32, 64, 128, 256)
SIZES = (8, 16, 32, 56)
INPUTS = (1, 3)


@dataclass(frozen=True)
class ProfileOptions:
    """What ``cnas profile`` measures.

    Attributes
    ----------
    out : str
        TOML file to write.
    force : bool
        Replace an existing file.
    repeats : int
        Timed runs per block shape (the median is kept).
    units : int
        Units the profile describes (processes of this host).
    transport : str
        Link of the profile: gloo or shm (both are measured).
    quick : bool
        A small grid (channels 16/128, sizes 8/32) and few repeats, for tests.
    """

    out: str = "this-host.toml"
    force: bool = False
    repeats: int = 20
    units: int = 2
    transport: str = "gloo"
    quick: bool = False


def _fan_dag(inputs: int) -> nx.DiGraph:
    """input -> ``inputs`` blocks -> one merging block -> output: every shape a block can see."""
    dag = nx.DiGraph()
    merge, out = inputs + 1, inputs + 2
    for i in range(1, inputs + 1):
        dag.add_edge(0, i)
        dag.add_edge(i, merge)
    dag.add_edge(merge, out)
    return dag


def time_blocks(channels=CHANNELS, sizes=SIZES, inputs=INPUTS, *, repeats: int = 20) -> list[dict]:
    """Median one-thread time of a block for every (channels, size, inputs) of the grid.

    Returns
    -------
    list of dict
        ``channels, size, inputs, flops, bytes, seconds`` per block shape.
    """
    import torch

    from ..compiler.blocks import build_block

    torch.set_num_threads(1)
    rows = []
    for c in channels:
        for s in sizes:
            for k in inputs:
                settings = CompileSettings(image_size=s, stem_channels=c, channel_cap=c, staging="uniform")
                plan = plan_network(_fan_dag(k), settings)[-2]  # the merging block
                block = build_block(plan, settings).eval()
                xs = [torch.randn(1, c, s, s) for _ in range(k)]
                times = []
                with torch.no_grad():
                    for i in range(repeats + 3):
                        start = time.perf_counter()
                        block(xs)
                        if i >= 3:
                            times.append(time.perf_counter() - start)
                rows.append({"channels": c, "size": s, "inputs": k, "flops": plan.flops,
                             "bytes": bytes_moved(plan, settings.bytes_per_element),
                             "seconds": float(np.median(times))})
    return rows


def fit_compute_model(rows: list[dict]) -> ComputeModel:
    """Non-negative least squares of ``seconds = overhead + flops * a + bytes * b`` over timed blocks.

    Relative residuals, so small blocks (most of a network) weigh as much as large ones.
    """
    from scipy.optimize import nnls

    y = np.array([r["seconds"] for r in rows])
    x = np.array([[1.0, r["flops"], r["bytes"]] for r in rows]) / y[:, None]
    coef, _ = nnls(x, np.ones(len(rows)))
    if coef[1] <= 0:  # bytes explained all of it (small grids, noise): FLOPs alone then
        coef, _ = nnls(x[:, :2], np.ones(len(rows)))
        coef = np.append(coef, 0.0)
    overhead, per_flop, per_byte = coef
    if per_flop <= 0:
        raise CnasError("block times do not grow with FLOPs on this host; re-run `cnas profile` on a quieter host")
    return ComputeModel(float(1.0 / per_flop), float(1.0 / per_byte) if per_byte > 0 else 0.0, float(overhead))


def unit_overhead_s(compute: ComputeModel, chain_s: float) -> float:
    """Seconds per block a unit process spends beyond the isolated block times.

    ``chain_s``: one inference of the transfer probe's chain on one unit
    (:func:`concurrent_nas.placement.distributed.probe_transfers`, ``chain-one``). In a
    network the weights of the other blocks have pushed a block's own out of the caches,
    and the unit's scheduler runs between blocks; timed alone, in a loop, a block has
    neither (122 us a block beyond the isolated 143 us on this host, 2026-12-02).
    """
    from ..placement.distributed import PROBE_CHAIN_IMAGE, probe_chain

    settings = CompileSettings(image_size=PROBE_CHAIN_IMAGE)
    plans = plan_network(probe_chain(), settings)
    model_s = sum(compute.seconds(p.flops, bytes_moved(p, settings.bytes_per_element)) for p in plans)
    return max(0.0, (chain_s - model_s) / len(plans))


def measure_host_profile(options: ProfileOptions | None = None) -> tuple[DeviceProfile, Path]:
    """Measure this host and write its profile to ``options.out``.

    Raises
    ------
    CnasError
        ``out`` exists and ``force`` is not set, or a bad option (before anything runs).
    """
    from ..placement.distributed import probe_transfers
    from ..placement.options import check_transport

    options = options if options is not None else ProfileOptions()
    out = Path(options.out)
    if out.exists() and not options.force:
        raise CnasError(f"{out} exists; pass --force to replace it")
    if options.transport not in ("gloo", "shm"):
        check_transport(options.transport)
        raise CnasError(f"--transport {options.transport} cannot be profiled here; use gloo or shm")
    if options.units < 1 or options.repeats < 1:
        raise CnasError("--units and --repeats must be >= 1")
    if options.quick:
        # Still a 64x span of FLOPs: with only tiny blocks the fixed overhead and the noise
        # of a busy host hid the FLOP term (a test failed that way under a parallel suite).
        rows = time_blocks((16, 128), (8, 32), (1, 3), repeats=min(options.repeats, 5))
    else:
        rows = time_blocks(repeats=options.repeats)
    compute = fit_compute_model(rows)
    repeats = 5 if options.quick else 30
    probes = {t: probe_transfers(t, repeats=repeats, warmup=2) for t in ("gloo", "shm")}
    models = {t: model for t, (model, _) in probes.items()}
    table = probes[options.transport][1]
    chain_s = float(table.loc[table["probe"] == "chain-one", "median_ms"].iloc[0]) / 1e3
    isolated_overhead = compute.overhead_s
    compute = replace(compute, overhead_s=isolated_overhead + unit_overhead_s(compute, chain_s))
    chosen = models[options.transport]
    link = LinkModel(chosen.latency_s, chosen.bandwidth_Bps, chosen.send_cpu_s, "switch", wake_s=chosen.wake_s)
    other = "shm" if options.transport == "gloo" else "gloo"
    o = models[other]
    sources = {
        "compute": f"measured by cnas profile: {len(rows)} block shapes, one thread, median of "
                   f"{min(options.repeats, 5) if options.quick else options.repeats} runs, non-negative least squares "
                   f"(overhead {isolated_overhead * 1e6:.4g} us); plus "
                   f"{(compute.overhead_s - isolated_overhead) * 1e6:.4g} us per block that a unit process spent "
                   "beyond those times in a 20-block chain (the transfer probe's)",
        "link": f"measured by cnas profile: {options.transport} ping-pong between two local processes; wake_ms: "
                "what a message adds beyond that in a 20-block chain alternating between two unit processes",
        other: f"also measured: latency_ms = {o.latency_s * 1e3:.4g}, bandwidth_mbit = {o.bandwidth_Bps * 8 / 1e6:.4g}, "
               f"send_cpu_ms = {o.send_cpu_s * 1e3:.4g}, wake_ms = {o.wake_s * 1e3:.4g}",
        "units": "processes of this host; more than its cores share them",
    }
    profile = DeviceProfile("this-host", tuple(f"unit{i}" for i in range(options.units)), compute, link,
                            description=f"this host, measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
                            sources=sources)
    with atomic_output(out, what="profile") as tmp:
        Path(tmp).write_text(profile_to_toml(profile))
    return profile, out
