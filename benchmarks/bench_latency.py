"""Single-input latency on this host: the README's numbers, produced with ``cnas latency``.

Three parts, each a sequence of plain ``cnas`` commands (printed as they run):

``headline``  DP-40 and a 40-block chain at 224x224 on 2 units (KaHyPar and paper
              placements, gloo and shared memory, threads in one process) against
              baseline (a) one unit with one thread and (b) one process with 2 intra-op
              threads, repeated ``--rounds`` times from scratch to show the spread.
``figures``   a few architectures per generator measured on 1-2 units and simulated on
              4-10 (paper Fig. 8 normalised to FB, Fig. 13 scaling).
``probe``     one-way message cost of gloo and shared memory between two processes.
``check``     what the correctness check adds to the timed path: CPU time per inference of
              copying the checked positions of every message (DP-40 at 224x224, 2 units).

Every part records the load average before and after, so a figure taken on a busy host
is recognisable. Results go to ``benchmarks/results/latency_<part>.md`` and ``.json``.

Usage::

    python benchmarks/bench_latency.py probe
    python benchmarks/bench_latency.py headline --rounds 3 --repeats 30
    python benchmarks/bench_latency.py figures --per-gen 3
    python benchmarks/bench_latency.py check
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from concurrent_nas.rundir import LATENCY, load_parquet

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
RUNS = Path("runs/bench-latency")


def sh(args: list[str]) -> None:
    print("$", shlex.join(args), flush=True)
    subprocess.run(args, check=True)


def load() -> float:
    return round(os.getloadavg()[0], 2)


def wait_quiet(threshold: float, max_wait_s: float) -> float:
    """Wait until the 1-minute load average is below ``threshold`` (or give up); return it."""
    start = time.monotonic()
    while load() > threshold and time.monotonic() - start < max_wait_s:
        time.sleep(10)
    return load()


def _plain(value):
    """JSON for what a table row holds besides plain numbers: arrays as lists, the rest as text."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def code_version() -> dict:
    """The git commit the measured code is at, and whether the package differed from it."""
    def git(*args):
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None

    changed = git("status", "--porcelain", "--", "../concurrent_nas", "bench_latency.py")
    return {"commit": git("rev-parse", "HEAD"), "changed_files": changed.splitlines() if changed else []}


def write(name: str, text: str, data: dict) -> None:
    version = code_version()
    dirty = f" plus uncommitted changes to {len(version['changed_files'])} file(s)" if version["changed_files"] else ""
    text += f"\nMeasured at git commit `{version['commit']}`{dirty}, finished {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n"
    data = {**data, "code": version, "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"latency_{name}.md").write_text(text)
    (RESULTS / f"latency_{name}.json").write_text(json.dumps(data, indent=2, default=_plain) + "\n")
    print(text)
    print(f"wrote {RESULTS / f'latency_{name}.md'}")


def sample(gen: str, n: int, nodes: int = 40) -> Path:
    out = RUNS / f"{gen}{nodes}"
    sh(["cnas", "sample", "--gen", gen, "--n", str(n), "--nodes", str(nodes), "--seed", "0", "--out-dir", str(out),
        "--force", "--discard-results"])  # a fresh run each time, even over an earlier one's latency table
    return out


def part_probe(args) -> None:
    from concurrent_nas.placement.distributed import probe_transfers

    before = wait_quiet(args.quiet, args.max_wait)
    tables, models = [], {}
    for transport in ("gloo", "shm"):
        model, table = probe_transfers(transport, repeats=50, warmup=10)
        tables.append(table)
        models[transport] = model
    table = pd.concat(tables, ignore_index=True)
    fits = "\n".join(
        f"- {t}: {m.latency_s * 1e3:.3f} ms per message + {m.bandwidth_Bps / 1e9:.2f} GB/s "
        f"(sender CPU {m.send_cpu_s * 1e3:.3f} ms; a message to a blocked unit {m.wake_s * 1e3:.3f} ms more, "
        f"from the chain rows)" for t, m in models.items()
    )
    text = (f"# One-way message cost between two local processes\n\nload average before {before}, after {load()}\n\n"
            f"```\n{table.round(4).to_string(index=False)}\n```\n\nFitted (relative least squares):\n{fits}\n")
    write("probe", text, {"table": table.to_dict("records"), "models": {t: vars(m) for t, m in models.items()},
                          "load_before": before})


def part_headline(args) -> None:
    runs = {"dp": sample("dp", 1), "chain": sample("chain", 1)}
    frames, loads = [], []
    for rnd in range(args.rounds):
        for name, run in runs.items():
            before = wait_quiet(args.quiet, args.max_wait)
            (run / LATENCY).unlink(missing_ok=True)
            sh(["cnas", "latency", str(run), "--ids", "0", "--units", "1,2",
                "--placement", args.placements, "--transport", args.transports, "--image-size", "224",
                "--repeats", str(args.repeats), "--warmup", str(args.warmup)])
            frame = load_parquet(run / LATENCY).assign(round=rnd, load_before=before, load_after=load())
            loads.append((before, load()))
            frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    keys = ["generator", "units", "placement", "transport", "threads"]
    summary = table.groupby(keys, sort=False).agg(
        median_ms=("median_ms", "median"), min_ms=("median_ms", "min"), max_ms=("median_ms", "max"),
        speedup_a=("speedup", "median"), speedup_b=("speedup_same_cores", "median"),
        messages=("messages", "first"), mbytes=("bytes_sent", lambda b: b.iloc[0] / 1e6),
        sim_error=("sim_error", "median"), sim_error_insitu=("sim_error_insitu", "median"),
        page_faults=("page_faults", "median"),
    ).reset_index()
    text = (
        "# Single-input latency, 224x224, 2 units on this 2-core host\n\n"
        f"{args.rounds} rounds, each a fresh `cnas latency` run with {args.repeats} timed inferences "
        f"({args.warmup} warm-up); load average before/after each run: {loads}.\n"
        "median_ms: median over rounds of each round's median; min/max: spread over rounds. "
        "speedup_a: vs one unit with one thread; speedup_b: vs one process with 2 intra-op threads. "
        "sim_error: simulator (solo and contended per-vertex times from the calibration passes between "
        "the row's inferences + measured transfer model) vs measured; sim_error_insitu: the same model "
        "fed with the per-vertex times of the placed inferences themselves.\n\n"
        f"```\n{summary.round(3).to_string(index=False)}\n```\n"
    )
    write("headline", text, {"summary": summary.to_dict("records"), "rows": table.drop(
        columns=[c for c in ("vertex_ms", "out_bytes") if c in table]).to_dict("records"), "loads": loads})


def part_figures(args) -> None:
    from concurrent_nas.analysis import tables as tbl

    frames = []
    for gen in ("dp", "er", "ba", "ws", "fb"):
        run = sample(gen, args.per_gen)
        (run / LATENCY).unlink(missing_ok=True)
        before = wait_quiet(args.quiet, args.max_wait)
        sh(["cnas", "latency", str(run), "--units", "1,2", "--placement", "kahypar,paper", "--image-size", "224",
            "--repeats", str(args.repeats), "--warmup", str(args.warmup), "--simulate-units", "4,6,8,10"])
        frames.append(load_parquet(run / LATENCY).assign(run=gen, load_before=before))
    table = pd.concat(frames, ignore_index=True)
    placed = table[table["placement"].isin(["kahypar", "paper"])]
    norm = tbl.normalized_latency(placed)
    fig8 = norm.groupby(["source", "placement", "units", "generator"])["normalized_time"].median().unstack("generator")
    fig13 = placed.groupby(["source", "placement", "generator", "units"])["median_ms"].median().unstack("units")
    single = table[(table.placement == "single") & (table.units == 1)].groupby("generator")["median_ms"].median()
    text = (
        "# Paper Fig. 8 and Fig. 13 on this host (224x224, 40 blocks)\n\n"
        f"{args.per_gen} architectures per generator; units 2 measured (2 processes, gloo), units 4-10 "
        "SIMULATED from each architecture's measured per-vertex times and the measured gloo transfer "
        "model (separate one-core units, no shared-host contention).\n\n"
        "## Fig. 8: median inference time normalised to FB (lower is better)\n\n"
        f"```\n{fig8.round(3).to_string()}\n```\n\n"
        "## Fig. 13: median latency (ms) by units\n\n"
        f"one unit (measured): {single.round(1).to_dict()}\n\n```\n{fig13.round(1).to_string()}\n```\n"
    )
    write("figures", text, {"rows": table.drop(columns=[c for c in ("vertex_ms", "out_bytes") if c in table])
                            .to_dict("records")})


def part_check(args) -> None:
    import torch

    import concurrent_nas as cnas
    from concurrent_nas.compiler import build_network
    from concurrent_nas.placement import IMAGE, build_plan, make_assignment
    from concurrent_nas.placement.check import Witness, make_input, sample_positions
    from concurrent_nas.shapes import CompileSettings

    torch.set_num_threads(1)
    before = load()
    settings = CompileSettings(image_size=224)
    dag = cnas.generate("dp", 40, seed=0)
    torch.manual_seed(0)
    net = build_network(dag, settings).eval()
    image = make_input(settings, 0, 1)
    acts = {IMAGE: image}
    with torch.inference_mode():
        for v in net.order:
            preds = sorted(dag.predecessors(v))
            acts[v] = net.blocks[str(v)]([image] if not preds else [acts[u] for u in preds])
    rows = []
    for placement in ("kahypar", "paper"):
        plan = build_plan(dag, make_assignment(dag, 2, placement, settings=settings), 2)
        messages = list(plan.transfers)
        witness = Witness({t.vertex: sample_positions(t.vertex, acts[t.vertex].numel()) for t in messages})
        n = 500
        with torch.inference_mode():
            for _ in range(20):  # warm up
                for t in messages:
                    witness.saw(t, acts[t.vertex])
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            for _ in range(n):
                for t in messages:
                    witness.saw(t, acts[t.vertex])
            cpu1, wall1 = time.thread_time(), time.perf_counter()
        rows.append({"placement": placement, "messages": len(messages),
                     "cpu_us_per_inference": (cpu1 - cpu0) / n * 1e6, "wall_us_per_inference": (wall1 - wall0) / n * 1e6})
    table = pd.DataFrame(rows)
    text = ("# What the correctness check adds to the timed path (DP-40, 224x224, 2 units)\n\n"
            "Copying the checked positions of every message of one inference as it is used "
            "(both units together; CPU time of this thread, steadier than wall time on a busy host). "
            f"Load average before {before}, after {load()}.\n\n"
            f"```\n{table.round(1).to_string(index=False)}\n```\n")
    write("check", text, {"rows": rows, "load_before": before})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["probe", "headline", "figures", "check"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--per-gen", type=int, default=3)
    parser.add_argument("--placements", default="kahypar,paper,kahypar-time,paper-time,threads")
    parser.add_argument("--transports", default="gloo,shm")
    parser.add_argument("--quiet", type=float, default=0.7, help="wait for a 1-minute load below this")
    parser.add_argument("--max-wait", type=float, default=0.0, help="seconds to wait for a quiet host")
    args = parser.parse_args()
    {"probe": part_probe, "headline": part_headline, "figures": part_figures, "check": part_check}[args.part](args)


if __name__ == "__main__":
    sys.exit(main())
