"""Benchmark of `cnas score`: the paper's Fig. 9 sweep, and the fast vs quality preset.

Usage::

    python benchmarks/bench_score.py sweep     # sample (if missing) + score 5 generators x {40, 80}
    python benchmarks/bench_score.py presets   # per-call time and Lambda, fast vs quality preset
    python benchmarks/bench_score.py fig9      # table of median / IQR of best CS from the runs
    python benchmarks/bench_score.py dpsweep --archs 100   # DP (p, alpha, beta) grid at 40 nodes
    python benchmarks/bench_score.py dpsweep --fine --archs 200 --sample-seed 2   # refine p
    python benchmarks/bench_score.py pool --n 200 --repeat 3 --workers 2 --label pebble   # local pool throughput
    python benchmarks/bench_score.py balance --archs 100   # eps bound: KaHyPar alone vs rebalanced

``sweep`` times every `cnas score` call (a subprocess; wall clock) and the peak memory of
its whole process tree (the CLI plus its workers, resident set summed, polled every
0.1 s), and resumes: a run already scored is reported from its ``scores.json``.
Numbers go to ``benchmarks/results/bench_score_<mode>.json`` and a Markdown table to
``benchmarks/results/bench_score_<mode>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from concurrent_nas.rundir import load_parquet
from stamp import git_commit, rows_to_markdown

GENERATORS = ["er", "ba", "ws", "dp", "fb"]
SIZES = [40, 80]
RESULTS = Path(__file__).parent / "results"


def run_dir(gen: str, nodes: int, root: str) -> Path:
    return Path(root) / f"fig9-{gen}{nodes}"


def _tree_rss(proc) -> int:
    import psutil

    try:
        p = psutil.Process(proc.pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def timed(cmd: list[str]) -> tuple[float, int, int]:
    """(seconds, peak tree RSS bytes, return code) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc))
        time.sleep(0.1)
    return time.perf_counter() - start, peak, proc.returncode


def sweep(args) -> dict:
    rows = []
    for nodes in args.sizes or SIZES:
        for gen in GENERATORS:
            run = run_dir(gen, nodes, args.root)
            if not (run / "architectures.parquet").exists():
                subprocess.run(
                    ["cnas", "sample", "--gen", gen, "--n", str(args.n), "--nodes", str(nodes), "--out-dir", str(run)],
                    check=True,
                )
            cmd = ["cnas", "score", str(run), "--units", "4,6,8,10", "--eps", "0.03,0.1,0.2,0.3,0.5"]
            if args.workers:
                cmd += ["--processes", str(args.workers)]
            if args.force:
                cmd += ["--force"]
            load = os.getloadavg()[0]
            seconds, peak, rc = timed(cmd)
            side = json.loads((run / "scores.json").read_text()) if (run / "scores.json").exists() else {}
            rows.append(
                {
                    "generator": gen,
                    "nodes": nodes,
                    "archs": side.get("architectures"),
                    "partitions": side.get("rows"),
                    "failed": side.get("failed"),
                    "wall_s": round(seconds, 2),
                    "scored_s": side.get("seconds_this_call"),
                    "peak_rss_mb": round(peak / 2**20, 1),
                    "load_before": round(load, 2),
                    "rc": rc,
                }
            )
            print(rows[-1], flush=True)
    return {"rows": rows, "total_wall_s": round(sum(r["wall_s"] for r in rows), 1),
            "max_peak_rss_mb": max(r["peak_rss_mb"] for r in rows)}


def pool(args) -> dict:
    """Wall time of `cnas score --force` on one DP-40 run, repeated, and a hash of its table.

    Run it once per pool implementation (``--label``), alternating on a busy host; equal
    ``table_sha256`` values mean the tables are equal in content.
    """
    import hashlib

    run = Path(args.root) / f"pool-dp40-{args.n}"
    if not (run / "architectures.parquet").exists():
        subprocess.run(["cnas", "sample", "--gen", "dp", "--n", str(args.n), "--nodes", "40", "--out-dir", str(run)],
                       check=True)
    cmd = [sys.executable, "-m", "concurrent_nas.cli.main", "score", str(run), "--force",
           "--processes", str(args.workers or 2)]
    rows = []
    import resource

    for i in range(args.repeat):
        load = os.getloadavg()[0]
        # CPU time of the CLI and its workers: less at the mercy of a busy host than wall time.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds, peak, rc = timed(cmd)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        table = load_parquet(run / "scores.parquet")
        digest = hashlib.sha256(table.to_json(orient="split").encode()).hexdigest()[:16]
        rows.append({"label": args.label, "repeat": i, "wall_s": round(seconds, 2), "cpu_s": round(cpu, 2),
                     "scored_s": json.loads((run / "scores.json").read_text())["seconds_this_call"],
                     "peak_rss_mb": round(peak / 2**20, 1), "load_before": round(load, 2), "rc": rc,
                     "table_sha256": digest})
        print(rows[-1], flush=True)
    return {"rows": rows, "median_wall_s": statistics.median(r["wall_s"] for r in rows),
            "median_cpu_s": statistics.median(r["cpu_s"] for r in rows)}


def dp_sweep(args) -> dict:
    """Median best CS of DP over a grid of (p, alpha, beta), beside its graph shape."""
    import itertools

    from concurrent_nas.sampling import sample_architectures
    from concurrent_nas.scoring import ScoreConfig, architecture_records, run_scoring

    rows = []
    if args.fine:
        # p and beta only enter as p**beta: with beta = 1 and alpha = 1 the edge at ring
        # distance d has probability p**d, so this refines the one parameter that matters.
        grid = [(p, 1.0, 1.0) for p in (0.4, 0.45, 0.5, 0.55, 0.6, 0.65)] + [(0.3, 1.0, 0.5)]
    else:
        grid = itertools.product([0.3, 0.5, 0.7], [0.5, 1.0], [0.5, 1.0, 2.0])
    for p, alpha, beta in grid:
        params = {"p": p, "alpha": alpha, "beta": beta}
        table = sample_architectures("dp", args.archs, nodes=40, seed=args.sample_seed, params=params)
        scores = run_scoring(architecture_records(table), ScoreConfig(), workers=args.workers).table
        best = scores[scores["best"]]
        med = best.groupby("units")["cs"].median()
        rows.append({"p": p, "alpha": alpha, "beta": beta,
                     "edges_per_vertex": float((table["edges"] / table["vertices"]).mean()),
                     "depth": float(table["depth"].median()), "max_width": float(table["max_width"].median()),
                     **{f"cs_n{k}": float(v) for k, v in med.items()},
                     "cs_mean_over_units": float(med.mean())})
        print(rows[-1], flush=True)
    return {"rows": rows, "archs_per_setting": args.archs, "nodes": 40, "sample_seed": args.sample_seed}


def presets(args) -> dict:
    """Per-call time and Lambda of both presets on the same hypergraphs."""
    from concurrent_nas import generate
    from concurrent_nas.scoring import DEFAULT_EPS, build_hypergraph, communication, partition_hypergraph

    out = []
    for nodes in SIZES:
        for gen in GENERATORS:
            graphs = [build_hypergraph(generate(gen, nodes, 0, index=i)) for i in range(args.archs)]
            for preset in ("fast", "quality"):
                times, lambdas = [], []
                for hg in graphs:
                    for k in (4, 6, 8, 10):
                        for eps in DEFAULT_EPS:
                            t = time.perf_counter()
                            parts = partition_hypergraph(hg, k, eps, seed=0, preset=preset)
                            times.append(time.perf_counter() - t)
                            lambdas.append(communication(hg.hyperedges, hg.costs, parts))
                out.append({"generator": gen, "nodes": nodes, "preset": preset, "calls": len(times),
                            "median_ms": statistics.median(times) * 1e3, "mean_ms": statistics.fmean(times) * 1e3,
                            "mean_lambda": statistics.fmean(lambdas)})
                print(out[-1], flush=True)
    by = {(r["generator"], r["nodes"], r["preset"]): r for r in out}
    ratios = []
    for gen in GENERATORS:
        for nodes in SIZES:
            f, q = by[(gen, nodes, "fast")], by[(gen, nodes, "quality")]
            ratios.append({"generator": gen, "nodes": nodes,
                           "lambda_fast_over_quality": f["mean_lambda"] / q["mean_lambda"],
                           "speedup": q["median_ms"] / f["median_ms"]})
    total_f = sum(r["mean_lambda"] for r in out if r["preset"] == "fast")
    total_q = sum(r["mean_lambda"] for r in out if r["preset"] == "quality")
    return {"rows": out, "ratios": ratios, "overall_lambda_ratio": total_f / total_q,
            "archs_per_cell": args.archs, "loadavg": os.getloadavg()}


def balance(args) -> dict:
    """How often KaHyPar's partition breaks the eps bound, and what :func:`rebalance` changes.

    Per cell (generator, size, preset): every (units, eps) of the Fig. 9 sweep on the same
    architectures, KaHyPar's own partition against the rebalanced one the package returns.
    ``shift`` rows: median best CS per units, both ways, i.e. how Fig. 9 would move.
    """
    import math

    from concurrent_nas import generate
    from concurrent_nas.scoring import DEFAULT_EPS, DEFAULT_UNITS, build_hypergraph, data_unit
    from concurrent_nas.scoring.metrics import (
        communication, concurrency_score, load_variability, longest_path_ratio, part_weights,
    )
    from concurrent_nas.scoring.partition import KahyparInput, block_limits, kahypar_parts, rebalance
    from concurrent_nas.dag import longest_path_vertices

    unit_bytes = data_unit()
    out, shift = [], []
    for nodes in args.sizes or [40]:
        for gen in GENERATORS:
            dags = [generate(gen, nodes, 0, index=i) for i in range(args.archs)]
            for preset in args.presets:
                calls = over_raw = over_after = changed = 0
                worst_raw = worst_after = 0.0
                lam_raw = lam_after = 0.0
                seconds = 0.0
                best = {"raw": {}, "rebalanced": {}}
                for i, dag in enumerate(dags):
                    hg = build_hypergraph(dag)
                    arrays = KahyparInput.of(hg)
                    total, heaviest = sum(arrays.vertex_weights), max(arrays.vertex_weights)
                    path = longest_path_vertices(dag)
                    for k in DEFAULT_UNITS:
                        eta = longest_path_ratio(path, hg.num_vertices, k)
                        for eps in DEFAULT_EPS:
                            limit = block_limits(arrays.vertex_weights, k, eps)[0]
                            raw = kahypar_parts(hg, k, eps, preset=preset, prepared=arrays)
                            t = time.perf_counter()
                            after = rebalance(raw, arrays.vertex_weights, hg.hyperedges, arrays.edge_weights, k, limit)
                            seconds += time.perf_counter() - t
                            calls += 1
                            for name, parts in (("raw", raw), ("rebalanced", after)):
                                top = max(part_weights(arrays.vertex_weights, parts, k))
                                excess = top / limit - 1
                                lam = communication(hg.hyperedges, hg.costs, parts)
                                if name == "raw":
                                    over_raw += top > limit
                                    worst_raw = max(worst_raw, excess)
                                else:
                                    over_after += top > limit
                                    worst_after = max(worst_after, excess)
                                    # The documented fallback bound must hold everywhere.
                                    assert top <= max(limit, total // k + heaviest), (gen, i, k, eps)
                                if raw != after:
                                    lam_raw += lam if name == "raw" else 0
                                    lam_after += lam if name != "raw" else 0
                                delta_w = load_variability(part_weights(hg.weights, parts, k))
                                cs = concurrency_score(delta_w, lam / (unit_bytes * k), eta)
                                key = (i, k)
                                best[name][key] = min(best[name].get(key, math.inf), cs)
                            changed += raw != after
                out.append({"generator": gen, "nodes": nodes, "preset": preset, "partitions": calls,
                            "over_kahypar": over_raw, "over_rebalanced": over_after,
                            "worst_excess_kahypar": worst_raw, "worst_excess_rebalanced": worst_after,
                            "changed": changed,
                            "lambda_changed_ratio": lam_after / lam_raw if lam_raw else 1.0,
                            "rebalance_ms_per_call": seconds / calls * 1e3})
                print(out[-1], flush=True)
                for k in DEFAULT_UNITS:
                    raw_cs = [v for (i, kk), v in best["raw"].items() if kk == k]
                    new_cs = [v for (i, kk), v in best["rebalanced"].items() if kk == k]
                    shift.append({"generator": gen, "nodes": nodes, "preset": preset, "units": k,
                                  "cs_median_kahypar": statistics.median(raw_cs),
                                  "cs_median_rebalanced": statistics.median(new_cs),
                                  "archs_best_cs_changed": sum(a != b for a, b in zip(raw_cs, new_cs))})
    return {"rows": out, "shift": shift, "archs_per_cell": args.archs, "loadavg": os.getloadavg()}


def fig9(args) -> dict:
    rows = []
    for nodes in args.sizes or SIZES:
        for gen in GENERATORS:
            path = run_dir(gen, nodes, args.root) / "scores.parquet"
            if not path.exists():
                continue
            t = load_parquet(path)
            best = t[t["best"]]
            for k, g in best.groupby("units"):
                q25, med, q75 = g["cs"].quantile([0.25, 0.5, 0.75])
                rows.append({"generator": gen, "nodes": nodes, "units": int(k), "archs": len(g),
                             "cs_median": med, "cs_q25": q25, "cs_q75": q75,
                             "eta": g["eta"].median(), "comm_norm": g["comm_norm"].median(),
                             "delta_w": g["delta_w"].median(), "entropy": g["entropy"].median()})

    scoring_code = ["concurrent_nas/scoring", "concurrent_nas/generators", "concurrent_nas/shapes.py", "concurrent_nas/dag.py"]
    return {"rows": rows, "readme": readme_fig9(rows), "commit": git_commit(scoring_code, short=True)}


def readme_fig9(rows: list[dict]) -> list[dict]:
    """The README's Fig. 9 table: median [IQR] per generator, the lowest median in bold."""
    cells: dict[tuple[int, int], dict[str, str]] = {}
    lowest: dict[tuple[int, int], str] = {}
    for r in rows:
        key = (r["nodes"], r["units"])
        cells.setdefault(key, {})[r["generator"]] = r
        if key not in lowest or r["cs_median"] < cells[key][lowest[key]]["cs_median"]:
            lowest[key] = r["generator"]
    table = []
    for (nodes, units), by_gen in sorted(cells.items()):
        line = {"nodes": nodes, "n": units}
        for gen in GENERATORS:
            if gen in by_gen:
                r = by_gen[gen]
                median = f"{r['cs_median']:.2f}"
                line[gen.upper()] = (f"**{median}**" if gen == lowest[(nodes, units)] else median) + \
                    f" [{r['cs_q25']:.2f}–{r['cs_q75']:.2f}]"
        table.append(line)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["sweep", "presets", "fig9", "dpsweep", "pool", "balance"])
    parser.add_argument("--root", default="runs", help="where the fig9-<gen><nodes> runs live")
    parser.add_argument("--n", type=int, default=1000, help="architectures per run (sweep)")
    parser.add_argument("--workers", type=int, help="--processes for cnas score (default all cores)")
    parser.add_argument("--archs", type=int, default=20, help="architectures per cell (presets, dpsweep)")
    parser.add_argument("--fine", action="store_true", help="dpsweep: refine p with alpha = beta = 1")
    parser.add_argument("--sample-seed", type=int, default=1, help="dpsweep: seed of the sampled populations")
    parser.add_argument("--force", action="store_true", help="sweep: re-score runs already scored (to time them)")
    parser.add_argument("--repeat", type=int, default=3, help="pool: timed calls")
    parser.add_argument("--label", default="now", help="pool: name of the implementation measured")
    parser.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")],
                        help="block counts, comma-separated (balance: default 40; sweep, fig9: default 40,80, "
                        "and the results file is named after them)")
    parser.add_argument("--presets", type=lambda v: v.split(","), default=["fast"],
                        help="balance: presets, comma-separated (default fast)")
    args = parser.parse_args()
    modes = {"sweep": sweep, "presets": presets, "fig9": fig9, "dpsweep": dp_sweep, "pool": pool, "balance": balance}
    result = modes[args.mode](args)
    result["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    RESULTS.mkdir(exist_ok=True)
    name = args.mode + ("_fine" if getattr(args, "fine", False) else "") + (f"_{args.label}" if args.mode == "pool" else "")
    if args.sizes and args.mode in ("sweep", "fig9"):
        name += "_" + "_".join(map(str, args.sizes))
    (RESULTS / f"bench_score_{name}.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    md = (f"Commit {result['commit']}.\n\n" if "commit" in result else "") + rows_to_markdown(result["rows"])
    if "readme" in result:
        md += "\nREADME table (median best CS [IQR], lowest median in bold):\n\n" + rows_to_markdown(result["readme"])
    if "ratios" in result:
        md += "\n" + rows_to_markdown(result["ratios"]) + f"\noverall mean Lambda fast / quality: {result['overall_lambda_ratio']:.4f}\n"
    if "shift" in result:
        md += "\n" + rows_to_markdown(result["shift"])
    if "total_wall_s" in result:
        md += f"\ntotal wall: {result['total_wall_s']} s, max peak RSS (CLI + workers): {result['max_peak_rss_mb']} MB\n"
    md += f"\n{result['uptime']}\n"
    (RESULTS / f"bench_score_{name}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
