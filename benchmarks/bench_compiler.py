"""Compiler and shape-pass speed: build time, shape pass on 1000 DAGs, CPU forward latency.

Usage::

    python benchmarks/bench_compiler.py            # full run (about a minute)
    python benchmarks/bench_compiler.py --quick    # fewer repeats

Prints a table and writes ``benchmarks/results/compiler.md`` and ``compiler.json``.
The machine is shared, so every number comes with its spread (p10/median/p90 over
repeats) and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import concurrent_nas as cn
from concurrent_nas.analysis.tables import markdown_table
from concurrent_nas.compiler import build_network
from concurrent_nas.shapes import CompileSettings, count_params, shape_pass, vertex_costs

RESULTS = Path(__file__).parent / "results"


def spread(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples)
    return {"p10": float(np.percentile(a, 10)), "median": float(np.median(a)),
            "p90": float(np.percentile(a, 90)), "n": len(samples)}


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def results_table(rows: list[dict]) -> str:
    """The measurements as a markdown table, three decimals."""
    frame = pd.DataFrame.from_records(rows).rename(columns={"what": "measurement"})
    frame = frame[["measurement", "p10", "median", "p90", "unit", "n"]]
    return markdown_table(frame, float_format=lambda v: f"{v:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    reps = 3 if args.quick else 7
    load_before = os.getloadavg()
    rows = []

    # 1. shape pass over 1000 architectures (250 of each random generator, 40 blocks)
    dags = [cn.generate(g, nodes=40, seed=0, index=i) for g in ("er", "ba", "ws", "dp") for i in range(250)]
    for name, fn in [
        ("vertex_costs x1000", lambda: [vertex_costs(d) for d in dags]),
        ("count_params x1000", lambda: [count_params(d) for d in dags]),
        ("shape_pass (DataFrame) x1000", lambda: [shape_pass(d) for d in dags]),
    ]:
        rows.append({"what": name, "unit": "s", **spread(timed(fn, reps))})

    # 2. building a 40-block model (torch module construction, random init)
    torch.set_num_threads(1)
    for gen in ("er", "ba", "ws", "dp"):
        models = [cn.generate(gen, nodes=40, seed=0, index=i) for i in range(10)]
        build_network(models[0])  # warm-up: first construction pays torch's lazy imports
        samples = [s for d in models for s in timed(lambda d=d: build_network(d), max(1, reps // 3))]
        rows.append({"what": f"compile {gen}-40", "unit": "ms", **{k: (v * 1e3 if k != "n" else v)
                                                                  for k, v in spread(samples).items()}})

    # 3. single-image forward latency of DP-40 (architecture 0), eval mode, no grad
    dag = cn.generate("dp", nodes=40, seed=0, index=0)
    for size in (32, 224):
        settings = CompileSettings(image_size=size)
        net = build_network(dag, settings, init_seed=0).eval()
        x = torch.randn(1, 3, size, size)
        gflops = shape_pass(dag, settings)["flops"].sum() / 1e9
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.no_grad():
                for _ in range(3):
                    net(x)
                n = (30 if size == 32 else 10) if not args.quick else 5
                samples = timed(lambda: net(x), n)
            rows.append({"what": f"forward dp-40 {size}px batch 1, {threads} thread(s) ({gflops:.2f} GFLOPs)",
                         "unit": "ms", **{k: (v * 1e3 if k != "n" else v) for k, v in spread(samples).items()}})
    load_after = os.getloadavg()

    header = f"{'measurement':<62} {'p10':>9} {'median':>9} {'p90':>9} unit  n"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['what']:<62} {r['p10']:>9.3f} {r['median']:>9.3f} {r['p90']:>9.3f} {r['unit']:<4} {r['n']}")
    context = (f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
               f"{os.cpu_count()} cores; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print("\n".join(lines))
    print(context)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compiler.json").write_text(json.dumps(
        {"rows": rows, "load_before": load_before, "load_after": load_after, "torch": torch.__version__,
         "cores": os.cpu_count(), "quick": args.quick}, indent=1) + "\n")
    (RESULTS / "compiler.md").write_text(
        results_table(rows) + f"\n\n{context}\n\nCommand: `python benchmarks/bench_compiler.py`\n"
    )


if __name__ == "__main__":
    main()
