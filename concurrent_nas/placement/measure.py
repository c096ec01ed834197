"""One architecture measured on every requested (units, placement, transport): table rows.

Every row carries its own baselines from the same invocation: ``single_unit_ms`` (one
unit, one intra-op thread: the paper's one-vCPU framing) and ``same_cores_ms`` (one
process with as many intra-op threads as there are units: what a user with one
multi-core box compares against). Simulated rows (more units than the host has) use
the per-vertex times of the one-unit run and a measured transfer model, and say so in
``source``; measured rows carry the simulator's prediction beside them (``simulated_ms``,
``sim_error``) so the model's error is always visible. For those measured rows the
model also knows that the units share this host. With ``calibrate`` (the default) each
placed inference is followed by the whole network on unit 0 alone and then on every unit
at once (:class:`.worker.UnitConfig`): the model's solo and contended per-vertex times come
from the same minutes as the row itself, so a drift of the host's speed between rows does
not enter the model's error.

Every measured row also records the host's load before it (``load_before``: cores busy
with other work in the half second before the units start, :func:`.threads.host_load`,
and ``free_cores``) and after it (``load_avg``, the 1-minute load average), and a ``flags`` column
(:func:`measurement_flags`): ``host-busy`` when the row used more cores than were free,
``wide-spread`` when a baseline's p90/p10 exceeds :data:`SPREAD_LIMIT`,
``b-slower-than-a`` when one process on n threads was slower than on one, and
``baseline-suspect`` on rows whose speedups divide by a flagged baseline. Each flagged
row is also reported through ``warn`` as it is measured.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import replace

import networkx as nx
import numpy as np

from .. import dag as dagmod
from .assign import TIMED_PLACEMENTS, make_assignment
from .distributed import make_config, measure_placed
from .options import LatencyOptions
from .plan import build_plan
from .simulate import TransferModel, simulate
from .threads import host_load
from .timed import timed_assignment

BASELINE = "1 unit x 1 intra-op thread"

#: Columns that identify a row: a re-run skips rows whose key is already in the table.
KEY = ("arch_id", "units", "placement", "transport", "threads", "image_size", "source")


#: A baseline whose 90th percentile exceeds its 10th by more than this factor is flagged.
SPREAD_LIMIT = 2.0
#: Flags that make every speedup divided by the row's latency suspect.
SUSPECT = ("host-busy", "wide-spread", "b-slower-than-a")


def cores_used(row: dict) -> int:
    """Cores a row's measurement kept busy: threads of one process, or units x threads."""
    threads = int(row.get("threads") or 1)
    if row.get("placement") == "single":
        return threads
    if row.get("placement") == "threads":
        return int(row["units"])
    return int(row["units"]) * threads


def measurement_flags(row: dict, baseline_flags: str = "") -> str:
    """Comma-separated warnings about one latency row ("" when none apply).

    Parameters
    ----------
    row : dict
        A measured row: ``placement, units, threads, median_ms, p10_ms, p90_ms,
        single_unit_ms`` and, when known, ``free_cores`` (before the row).
    baseline_flags : str
        Flags of the baselines this row's speedups divide by.

    Returns
    -------
    str
        ``host-busy`` (more cores used than were free), ``wide-spread`` (a baseline with
        p90/p10 above :data:`SPREAD_LIMIT`), ``b-slower-than-a`` (one process with n
        threads slower than with one), ``baseline-suspect`` (``baseline_flags`` has any
        of these), in that order.
    """
    flags = []
    free = row.get("free_cores")
    if free is not None and np.isfinite(free) and cores_used(row) > int(free):
        flags.append("host-busy")
    single = row.get("placement") == "single"
    p10, p90 = row.get("p10_ms"), row.get("p90_ms")
    if single and p10 and p90 and p90 / p10 > SPREAD_LIMIT:
        flags.append("wide-spread")
    if single and int(row.get("threads") or 1) > 1 and row["median_ms"] > row["single_unit_ms"]:
        flags.append("b-slower-than-a")
    if any(f in baseline_flags.split(",") for f in SUSPECT):
        flags.append("baseline-suspect")
    return ",".join(flags)


def describe_flags(row: dict) -> str:
    """One line saying why a row is flagged, for the screen."""
    what = (f"arch {row['arch_id']}: {row['placement']} on {row['units']} unit(s), "
            f"{row['threads']} thread(s), {row['median_ms']:.3g} ms")
    reasons = []
    for flag in row["flags"].split(","):
        if flag == "host-busy":
            reasons.append(f"load {row['load_before']:.1f} left {row['free_cores']} core(s) free, it used {cores_used(row)}")
        elif flag == "wide-spread":
            reasons.append(f"p90/p10 = {row['p90_ms'] / row['p10_ms']:.1f}")
        elif flag == "b-slower-than-a":
            reasons.append(f"slower than 1 thread ({row['single_unit_ms']:.3g} ms)")
        elif flag == "baseline-suspect":
            reasons.append("its speedups divide by a flagged baseline")
    return f"{what}: {'; '.join(reasons)} (numbers from a busy host mislead: measure again on an idle one)"


def _print_warning(message: str) -> None:
    print(f"cnas: warning: {message}", file=sys.stderr, flush=True)


def summarize(latency_s) -> dict:
    """Median, 10th and 90th percentile of latencies in seconds, as ``*_ms`` columns."""
    ms = np.asarray(latency_s) * 1e3
    return {"median_ms": float(np.median(ms)), "p10_ms": float(np.percentile(ms, 10)),
            "p90_ms": float(np.percentile(ms, 90))}


def _vertex_ms(result) -> dict[int, float]:
    out: dict[int, float] = {}
    for unit in result["units"]:
        for v, samples in unit["vertex_s"].items():
            out.setdefault(int(v), float(np.median(samples)) * 1e3)
    return out


def calibration_s(result) -> tuple[dict[int, float], dict[int, float]]:
    """Median solo and contended seconds per vertex from a calibrated placed run.

    The contended samples of every unit are pooled: each ran the same whole network.
    """
    solo = {int(v): float(np.median(s)) for v, s in result["solo_vertex_s"].items()}
    pooled: dict[int, list[float]] = {}
    for unit in result["units"]:
        for v, s in unit["contended_vertex_s"].items():
            pooled.setdefault(int(v), []).extend(s)
    return solo, {v: float(np.median(s)) for v, s in pooled.items()}


def assignment_column(plan) -> list[int]:
    """The ``assignment`` column: the unit of every vertex, in ascending vertex order."""
    return [int(plan.assignment[v]) for v in sorted(plan.assignment)]


def measured_row(result: dict, **identity) -> dict:
    """A table row from one measurement (unit 0's result of :func:`.worker.run_unit`).

    ``identity`` gives the key columns (``arch_id, generator, nodes, units, placement,
    transport, threads, image_size, repeats``). Baselines are added by the caller.
    """
    per_unit = result["units"]
    return {
        **identity,
        **summarize(result["latency_s"]),
        "bytes_sent": int(sum(np.median(u["bytes"]) for u in per_unit if u["bytes"])),
        "messages": int(sum(np.median(u["messages"]) for u in per_unit if u["messages"])),
        "busy_ms": [float(np.median(u["busy_s"])) * 1e3 for u in per_unit],
        "page_faults": int(sum(np.median(u["faults"]) for u in per_unit)),
        # Largest difference of unit 0's logits from the single-process logits of the same
        # input over every inference; any difference beyond tolerance (of the output or of a
        # message) fails the measurement instead of making a row (see .check).
        "max_abs_diff": float(result["max_abs_diff"]),
        "source": "measured",
        "load_avg": float(os.getloadavg()[0]),
    }


def measure_architecture(
    arch_id: int,
    generator: str,
    dag: nx.DiGraph,
    settings,
    options: LatencyOptions,
    *,
    done: set | None = None,
    existing: dict | None = None,
    emit: Callable[[dict], None] = lambda row: None,
    transfer_model: Callable[[str], TransferModel | None] = lambda transport: None,
    parts: Callable[[int], Iterable[int] | None] | None = None,
    progress: Callable[[str], None] = lambda what: None,
    warn: Callable[[str], None] = _print_warning,
) -> list[dict]:
    """Measure (and simulate) one architecture; ``emit`` each row as soon as it exists.

    Parameters
    ----------
    done : set of tuple, optional
        Keys (:data:`KEY`) already measured; they are not measured again.
    existing : dict, optional
        Rows already in the table by key, to reuse the baselines of a resumed run.
    transfer_model : callable transport -> TransferModel or None
        Measured transfer model of a transport (for ``simulated_ms`` and simulated rows);
        called only when a row needs it.
    parts : callable units -> parts or None
        A scored run's partition for ``units`` (KaHyPar is run when it gives ``None``).
    warn : callable str -> None
        Receives one line per flagged row (default: printed to stderr).
    """
    done = done or set()
    existing = existing or {}
    nodes = dagmod.block_count(dag)
    image = settings.image_size
    rows: list[dict] = []

    def key(units, placement, transport, threads, source="measured"):
        return (arch_id, units, placement, transport, threads, image, source)

    def assignment_for(units, placement, model):
        if placement in TIMED_PLACEMENTS:
            return timed_assignment(dag, units, placement, {v: ms / 1e3 for v, ms in vertex_ms.items()},
                                    out_bytes, image_bytes, model, seed=options.seed)
        return make_assignment(dag, units, placement, settings=settings, seed=options.seed,
                               parts=parts(units) if parts and placement == "kahypar" else None)

    def run(units, placement, transport, threads, mode="placed"):
        model = transfer_model(transport) if placement in TIMED_PLACEMENTS else None
        assignment = assignment_for(units, placement, model)
        plan = build_plan(dag, assignment, 1 if placement == "single" else units)
        progress(f"arch {arch_id}: {placement} on {units} unit(s), {transport}")
        before = host_load()  # before the units start: their own load is not "other work"
        cfg = make_config(dag, settings, plan, mode=mode, transport="gloo" if transport == "none" else transport,
                          threads=threads, repeats=options.repeats, warmup=options.warmup,
                          seed=options.seed, timeout_s=options.timeout_s, free_cores=before[1],
                          calibrate=options.calibrate)  # the units skip it where it does not apply
        if mode == "threads":
            cfg = replace(cfg, plan=replace(plan, units=units))
        result = measure_placed(cfg)
        result["host_before"] = before
        return plan, result

    def base_row(units, placement, transport, threads, result, plan):
        row = measured_row(result, arch_id=arch_id, generator=generator, nodes=nodes, units=units,
                           placement=placement, transport=transport, threads=threads, image_size=image,
                           repeats=options.repeats)
        row["assignment"] = assignment_column(plan) if placement not in ("single", "threads") else None
        row["load_before"], row["free_cores"] = result.get("host_before", (None, None))
        return row

    # Baseline (a): one unit, one intra-op thread. Its per-vertex times feed the simulator.
    k = key(1, "single", "none", 1)
    if k in existing:
        single = existing[k]
        vertex_ms = {v: single["vertex_ms"][i] for i, v in enumerate(sorted(dag))}
        out_bytes = {v: int(single["out_bytes"][i]) for i, v in enumerate(sorted(dag))}
        image_bytes = int(single["image_bytes"])
    else:
        plan1, res1 = run(1, "single", "none", 1)
        single = base_row(1, "single", "none", 1, res1, plan1)
        vertex_ms = _vertex_ms(res1)
        out_bytes = {int(v): b for v, b in res1["out_bytes"].items()}
        image_bytes = int(res1["image_bytes"])
        single.update(vertex_ms=[vertex_ms[v] for v in sorted(dag)],
                      out_bytes=[out_bytes[v] for v in sorted(dag)], image_bytes=image_bytes)
    single_ms = single["median_ms"]

    def finish(row):
        row["single_unit_ms"] = single_ms
        row["speedup"] = single_ms / row["median_ms"]
        row["baseline"] = BASELINE
        same = same_cores.get(row["threads"] if row["placement"] == "single" else row["units"])
        row["same_cores_ms"] = same
        row["speedup_same_cores"] = None if same is None else same / row["median_ms"]
        row.setdefault("vertex_ms", None)
        row.setdefault("out_bytes", None)
        row.setdefault("image_bytes", image_bytes)
        row.setdefault("simulated_ms", None)
        row.setdefault("sim_error", None)
        row.setdefault("sim_insitu_ms", None)
        row.setdefault("sim_error_insitu", None)
        row.setdefault("transfer_model", None)
        row.setdefault("assignment", None)
        row.setdefault("load_before", None)
        row.setdefault("free_cores", None)
        if row["placement"] == "single":
            behind = "" if row is single else single_flags
        else:
            behind = ",".join([single_flags, same_flags.get(row["units"], "")])
        row["flags"] = measurement_flags(row, behind)
        if row["placement"] == "single" and row is not single:
            same_flags[row["threads"]] = row["flags"]
        if row["flags"]:
            warn(describe_flags(row))
        rows.append(row)
        emit(row)

    same_cores: dict[int, float] = {1: single_ms}
    # Flags of baseline (a), and of each (b) by thread count, for the rows that divide by them.
    single_flags = single.get("flags")
    if not isinstance(single_flags, str):  # measured now, or by a version without flags
        single_flags = measurement_flags({**single, "single_unit_ms": single_ms})
    same_flags: dict[int, str] = {}

    if k not in done:
        finish(single)
    # Baseline (b): one process with as many intra-op threads as units.
    for units in options.units:
        if units == 1:
            continue
        # One process, so one unit: the row says units=1 with `units` threads.
        kb = key(1, "single", "none", units)
        if kb in existing:
            same_cores[units] = existing[kb]["median_ms"]
            same_flags[units] = existing[kb].get("flags") if isinstance(existing[kb].get("flags"), str) else ""
            continue
        plan, res = run(1, "single", "none", units)
        same_cores[units] = summarize(res["latency_s"])["median_ms"]
        finish(base_row(1, "single", "none", units, res, plan))

    for units in options.units:
        if units == 1:
            continue
        for placement in options.placements:
            if placement == "single":
                continue
            transports = ("none",) if placement == "threads" else options.transports
            for transport in transports:
                kp = key(units, placement, transport, options.threads)
                if kp in done:
                    continue
                mode = "threads" if placement == "threads" else "placed"
                plan, res = run(units, placement, transport, options.threads, mode)
                row = base_row(units, placement, transport, options.threads, res, plan)
                calibrated = bool(res.get("solo_vertex_s"))  # CPU units with options.calibrate
                model = transfer_model(transport) if calibrated else None
                if model is not None:
                    # These units share this host: the model gets per-vertex times of the
                    # whole network alone and with every unit computing at once, measured
                    # between this row's own inferences, and charges the copying of every
                    # message to its sender. gloo units block on the most urgent message
                    # (see .transport).
                    solo_s, shared_s = calibration_s(res)
                    policy = dict(hosts=[0] * units, wait_any=transport != "gloo")
                    sim = simulate(plan, solo_s, out_bytes, image_bytes, model, contended_s=shared_s, **policy)
                    row["simulated_ms"] = sim.latency_s * 1e3
                    row["sim_error"] = (row["simulated_ms"] - row["median_ms"]) / row["median_ms"]
                    # The same model fed with the vertex times of this run itself separates
                    # compute-time error (contention between units) from the transfer and
                    # scheduling part of the model.
                    insitu = {v: ms / 1e3 for v, ms in {**vertex_ms, **_vertex_ms(res)}.items()}
                    sim = simulate(plan, insitu, out_bytes, image_bytes, model, **policy)
                    row["sim_insitu_ms"] = sim.latency_s * 1e3
                    row["sim_error_insitu"] = (row["sim_insitu_ms"] - row["median_ms"]) / row["median_ms"]
                finish(row)

    todo = [u for u in options.simulate_units for p in options.placements if p not in ("single", "threads")
            and key(u, p, "model", 1, "simulated") not in done]
    model = None
    if todo:
        model = options.network or transfer_model(options.transports[0])
    if model is not None:
        for units in options.simulate_units:
            for placement in options.placements:
                if placement in ("single", "threads"):
                    continue
                ks = key(units, placement, "model", 1, "simulated")
                if ks in done:
                    continue
                plan = build_plan(dag, assignment_for(units, placement, model), units)
                sim = simulate(plan, {v: ms / 1e3 for v, ms in vertex_ms.items()}, out_bytes, image_bytes, model)
                ms = sim.latency_s * 1e3
                finish({
                    "arch_id": arch_id, "generator": generator, "nodes": nodes, "units": units,
                    "placement": placement, "transport": "model", "threads": 1, "image_size": image,
                    "median_ms": ms, "p10_ms": ms, "p90_ms": ms, "bytes_sent": sim.bytes_sent,
                    "messages": sim.messages, "busy_ms": [b * 1e3 for b in sim.busy_s],
                    "page_faults": None, "max_abs_diff": None, "assignment": assignment_column(plan),
                    "repeats": 0, "source": "simulated", "load_avg": None,
                    "simulated_ms": ms, "transfer_model": model.source,
                })
    return rows
