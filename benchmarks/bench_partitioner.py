"""KaHyPar against Mt-KaHyPar on the Fig. 9 sweep: time per partition, Lambda and best CS.

Usage::

    nice -n 10 python benchmarks/bench_partitioner.py --archs 20          # ~10 min on a loaded 2-core host
    python benchmarks/bench_partitioner.py --archs 2 --units 4 --label tiny   # seconds: a smoke test

Every cell (generator x partitioner x preset) partitions the same hypergraphs (the first
``--archs`` architectures of seed 0 at ``--nodes`` blocks) at every (units, eps) of the
Fig. 9 sweep, as ``cnas score`` does: each partition is rebalanced to the eps bound.
The reference is KaHyPar's ``quality`` preset: per cell the mean Lambda and the median
best CS (lowest CS over eps, per architecture and units) are divided by the reference's.
Times are the partitioner call alone, single-threaded, in this process (measured under
whatever load the host has; the load average is recorded). Numbers go to
``benchmarks/results/bench_partitioner[_LABEL].json`` and ``.md``, with the git commit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path
from stamp import git_commit, rows_to_markdown

GENERATORS = ["er", "ba", "ws", "dp", "fb"]
EPS = (0.03, 0.1, 0.2, 0.3, 0.5)
RESULTS = Path(__file__).parent / "results"
#: (partitioner, preset) pairs measured; the last is the reference.
CELLS = [("kahypar", "fast"), ("mtkahypar", "fast"), ("mtkahypar", "quality"), ("kahypar", "quality")]


#: The code this measurement depends on (others' uncommitted work does not make it dirty).
MEASURED_CODE = ["concurrent_nas/scoring", "concurrent_nas/generators", "concurrent_nas/shapes.py",
                 "benchmarks/bench_partitioner.py"]


def measure(gen: str, args) -> list[dict]:
    """One row per (partitioner, preset) of generator ``gen``."""
    from concurrent_nas import generate
    from concurrent_nas.dag import longest_path_vertices
    from concurrent_nas.scoring import build_hypergraph, data_unit
    from concurrent_nas.scoring.metrics import (
        communication, concurrency_score, load_variability, longest_path_ratio, part_weights,
    )
    from concurrent_nas.scoring.partition import KahyparInput, partition_hypergraph

    unit_bytes = data_unit()
    dags = [generate(gen, args.nodes, 0, index=i) for i in range(args.archs)]
    prepared = [(build_hypergraph(d), longest_path_vertices(d)) for d in dags]
    rows = []
    for partitioner, preset in CELLS:
        seconds, lambdas, best = [], [], {}
        for i, (hg, path) in enumerate(prepared):
            arrays = KahyparInput.of(hg)
            for k in args.units:
                eta = longest_path_ratio(path, hg.num_vertices, k)
                for eps in EPS:
                    start = time.perf_counter()
                    parts = partition_hypergraph(hg, k, eps, seed=0, preset=preset, prepared=arrays,
                                                 partitioner=partitioner)
                    seconds.append(time.perf_counter() - start)
                    lam = communication(hg.hyperedges, hg.costs, parts)
                    lambdas.append(lam)
                    cs = concurrency_score(load_variability(part_weights(hg.weights, parts, k)),
                                           lam / (unit_bytes * k), eta)
                    best[(i, k)] = min(best.get((i, k), math.inf), cs)
        rows.append({"generator": gen, "nodes": args.nodes, "partitioner": partitioner, "preset": preset,
                     "partitions": len(seconds), "median_ms": statistics.median(seconds) * 1e3,
                     "total_s": sum(seconds), "mean_lambda": statistics.fmean(lambdas),
                     "median_best_cs": statistics.median(best.values()), "_best": best})
        print({k: v for k, v in rows[-1].items() if k != "_best"}, flush=True)
    reference = rows[-1]
    for row in rows:
        row["lambda_vs_quality"] = row["mean_lambda"] / reference["mean_lambda"]
        pairs = [(row["_best"][key], reference["_best"][key]) for key in reference["_best"]]
        row["median_cs_ratio_vs_quality"] = statistics.median(a / b for a, b in pairs)
        row["archs_units_better_cs"] = sum(a < b - 1e-12 for a, b in pairs)
        row["archs_units_worse_cs"] = sum(a > b + 1e-12 for a, b in pairs)
        del row["_best"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=20, help="architectures per generator (default 20)")
    parser.add_argument("--nodes", type=int, default=40, help="blocks per architecture (default 40)")
    parser.add_argument("--units", type=lambda v: [int(x) for x in v.split(",")], default=[4, 6, 8, 10],
                        help="unit counts, comma-separated (default 4,6,8,10)")
    parser.add_argument("--generators", type=lambda v: v.split(","), default=GENERATORS)
    parser.add_argument("--label", default="", help="suffix of the results files")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    rows = [row for gen in args.generators for row in measure(gen, args)]

    result = {"commit": git_commit(MEASURED_CODE, short=True), "archs": args.archs, "nodes": args.nodes, "units": args.units,
              "eps": list(EPS), "reference": "kahypar quality", "wall_s": time.perf_counter() - start,
              "loadavg_before": load_before, "loadavg_after": os.getloadavg()[0], "cpus": os.cpu_count(),
              "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    name = "bench_partitioner" + (f"_{args.label}" if args.label else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    head = (f"Commit {result['commit']}, {args.archs} architectures x {args.nodes} blocks per generator, "
            f"units {args.units}, eps {list(EPS)}; load average {load_before:.1f} -> "
            f"{result['loadavg_after']:.1f} on {os.cpu_count()} CPUs (times measured under that load).\n\n")
    (RESULTS / f"{name}.md").write_text(head + rows_to_markdown(rows))
    print(rows_to_markdown(rows))


if __name__ == "__main__":
    main()
