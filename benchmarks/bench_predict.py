"""Benchmark of predicted latency (issue #15): cost, placement quality, validation, Fig. 8.

Usage::

    python benchmarks/bench_predict.py cost --n 1000          # cnas score vs cnas score --profile paper, DP-40, units 4,6,8,10
    python benchmarks/bench_predict.py placement --n 100      # predicted vs paper greedy vs lowest-CS, DP/WS/ER, 3 profiles
    python benchmarks/bench_predict.py fig8 --n 100           # Fig. 8: latency normalised to FB on the paper profile
    python benchmarks/bench_predict.py validate               # QUIET HOST: CS and predicted vs measured 2-unit latency

``cost`` times two `cnas score` subprocesses (wall clock; the ratio is what counts, and
it is only meaningful on a quiet host). ``placement`` and ``fig8`` are counts and
predictions, not timings. ``validate`` measures real processes (`cnas profile`, then
`cnas latency --units 2 --placement kahypar,paper,predicted`): run it alone on a quiet
host. Results go to ``benchmarks/results/bench_predict_<mode>.json`` and ``.md``, with
the commit they were made at.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from stamp import git_commit, rows_to_markdown

RESULTS = Path(__file__).parent / "results"
# (label, generator, --param values, compile flags) of the Fig. 8 populations.
FIG8 = [
    ("ER", "er", [], []), ("BA", "ba", [], []), ("WS", "ws", [], []), ("DP", "dp", [], []), ("FB", "fb", [], []),
    ("DP p=0.4", "dp", ["p=0.4"], []), ("DP p=0.3", "dp", ["p=0.3"], []),
    ("DP uniform", "dp", [], ["--staging", "uniform"]), ("DP p=0.3 uniform", "dp", ["p=0.3"], ["--staging", "uniform"]),
]
# Validation: generators and parameters spread so that latencies differ.
VALIDATE = [("dp", ["p=0.3"]), ("dp", ["p=0.45"]), ("dp", []), ("ws", []), ("er", []), ("ba", [])]


#: The code a prediction result depends on.
MEASURED_CODE = ["concurrent_nas/predict", "concurrent_nas/placement", "concurrent_nas/scoring", "concurrent_nas/shapes.py"]


def cnas(*args: str) -> float:
    """Run `cnas ARGS` (output kept out of the way); its wall seconds."""
    start = time.perf_counter()
    subprocess.run(["cnas", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def sample(root: Path, name: str, gen: str, n: int, nodes: int, params=(), seed: int = 0) -> Path:
    run = root / name
    if not (run / "architectures.parquet").exists():
        extra = [a for p in params for a in ("--param", p)]
        cnas("sample", "--gen", gen, "--n", str(n), "--nodes", str(nodes), "--seed", str(seed), "--out-dir", str(run), *extra)
    return run


def cost(args) -> dict:
    run = sample(Path(args.root), f"predict-cost-dp40-n{args.n}", "dp", args.n, 40)
    units = ["--units", "4,6,8,10"]
    workers = ["--workers", str(args.workers)] if args.workers else []
    cs = [cnas("score", str(run), *units, *workers, "--force") for _ in range(args.repeat)]
    pred = [cnas("score", str(run), *units, *workers, "--force", "--profile", args.profile) for _ in range(args.repeat)]
    row = {"archs": args.n, "units": "4,6,8,10", "profile": args.profile, "cs_s": min(cs), "cs_and_pred_s": min(pred),
           "ratio": min(pred) / min(cs), "target": "<= 2"}
    return {"rows": [row], "runs": {"cs_s": cs, "cs_and_pred_s": pred}}


def _profiles(args) -> list[str]:
    return args.profiles.split(",")


def placement(args) -> dict:
    from concurrent_nas.predict import load_profile

    rows, per_pair = [], []
    for gen in ("dp", "ws", "er"):
        run = sample(Path(args.root), f"predict-place-{gen}40-n{args.n}", gen, args.n, 40)
        for profile in _profiles(args):
            cnas("score", str(run), "--units", "4,6,8,10", "--force", "--profile", profile,
                 *(["--processes", str(args.workers)] if args.workers else []))
            name = load_profile(profile).name
            t = pd.read_parquet(run / "predicted.parquet")
            t = t[t["profile"] == name]
            other = t[["paper_ms", "kahypar_best_ms"]].min(axis=1)
            beats = (t["pred_latency_ms"] < other * (1 - 1e-9))
            gain = other / t["pred_latency_ms"]
            rows.append({"generator": gen, "profile": name,
                         "pairs": len(t), "beats_both": float(beats.mean()), "median_gain": float(gain.median()),
                         "median_gain_over_kahypar": float((t["kahypar_best_ms"] / t["pred_latency_ms"]).median()),
                         "median_gain_over_paper": float((t["paper_ms"] / t["pred_latency_ms"]).median()),
                         "split_pays": float((t["pred_speedup"] > 1 + 1e-9).mean()),
                         "median_pred_speedup": float(t["pred_speedup"].median()),
                         "median_cp_bound": float(t["cp_bound"].median()),
                         "winner_heft": float(t["placement"].str.startswith("heft").mean()),
                         "winner_moved": float(t["placement"].str.endswith("+moves").mean())})
            per_pair.append(t.assign(profile_file=profile))
    total = pd.concat(per_pair)
    other = total[["paper_ms", "kahypar_best_ms"]].min(axis=1)
    overall = {"pairs": len(total), "beats_both": float((total["pred_latency_ms"] < other * (1 - 1e-9)).mean()),
               "median_gain": float((other / total["pred_latency_ms"]).median()), "target": ">= 0.8"}
    return {"rows": rows, "overall": overall}


def fig8(args) -> dict:
    from concurrent_nas import CompileSettings
    from concurrent_nas.predict import predict_latency
    from concurrent_nas.rundir import load_architectures
    from concurrent_nas.shapes import totals

    rows = []
    for label, gen, params, flags in FIG8:
        run = sample(Path(args.root), f"predict-fig8-{label.replace(' ', '').replace('=', '').replace('.', '')}-n{args.n}",
                     gen, args.n, 40, params)
        settings = CompileSettings(image_size=args.image_size,
                                   staging=flags[1] if flags else CompileSettings().staging)
        for arch_id, _, dag in load_architectures(run):
            t = totals(dag, settings)
            for units in (4, 6, 8, 10):
                p = predict_latency(dag, units, args.profile, settings=settings)
                rows.append({"population": label, "arch_id": arch_id, "units": units, "params": t["params"],
                             "flops": t["flops"], "pred_latency_ms": p.pred_latency_ms, "single_ms": p.single_ms,
                             "pred_speedup": p.pred_speedup, "cp_ms": p.cp_ms, "cp_bound": p.cp_bound})
    table = pd.DataFrame(rows)
    med = table.groupby(["population", "units"]).median(numeric_only=True).reset_index()
    fb = med[med["population"] == "FB"].set_index("units")
    out = []
    for r in med.itertuples(index=False):
        out.append({"population": r.population, "units": r.units, "archs": args.n,
                    "latency_vs_fb": fb.loc[r.units, "pred_latency_ms"] / r.pred_latency_ms,
                    "cp_vs_fb": fb.loc[r.units, "cp_ms"] / r.cp_ms,
                    "pred_speedup": r.pred_speedup, "cp_bound": r.cp_bound,
                    "pred_latency_ms": r.pred_latency_ms, "params_M": r.params / 1e6, "mflops": r.flops / 1e6})
    order = {label: i for i, (label, *_) in enumerate(FIG8)}
    out.sort(key=lambda r: (order[r["population"]], r["units"]))
    return {"rows": out, "profile": args.profile, "image_size": args.image_size}


def validate(args) -> dict:
    from scipy.stats import spearmanr

    root = Path(args.root)
    profile = root / "predict-validate-this-host.toml"
    if not profile.exists():
        cnas("profile", "--out", str(profile), *(["--quick"] if args.tiny else []))
    tables = []
    for gen, params in VALIDATE:
        name = f"predict-validate-{gen}{''.join(p.replace('=', '').replace('.', '') for p in params)}-n{args.per}"
        run = sample(root, name, gen, args.per, args.nodes, params, seed=7)
        cnas("score", str(run), "--units", "2", "--profile", str(profile), "--force", "--image-size", str(args.image_size))
        cnas("latency", str(run), "--units", "2", "--placement", "kahypar,paper,predicted", "--repeats", str(args.repeats),
             "--image-size", str(args.image_size))
        scores = pd.read_parquet(run / "scores.parquet")
        best = scores[scores["best"] & (scores["units"] == 2)][["arch_id", "cs"]]
        pred = pd.read_parquet(run / "predicted.parquet")
        pred = pred[pred["units"] == 2][["arch_id", "pred_latency_ms", "kahypar_best_ms", "paper_ms"]]
        lat = pd.read_parquet(run / "latency.parquet")
        lat = lat[(lat["units"] == 2) & (lat["source"] == "measured")]
        wide = lat.pivot_table(index="arch_id", columns="placement", values="median_ms").reset_index()
        tables.append(best.merge(pred, on="arch_id").merge(wide, on="arch_id").assign(population=name))
    t = pd.concat(tables, ignore_index=True)
    rho = lambda a, b: float(spearmanr(t[a], t[b]).statistic)  # noqa: E731
    rows = [
        {"truth": "measured kahypar 2 units", "score": "CS", "spearman": rho("cs", "kahypar")},
        {"truth": "measured kahypar 2 units", "score": "predicted (same partition)", "spearman": rho("kahypar_best_ms", "kahypar")},
        {"truth": "measured predicted 2 units", "score": "CS", "spearman": rho("cs", "predicted")},
        {"truth": "measured predicted 2 units", "score": "predicted", "spearman": rho("pred_latency_ms", "predicted")},
    ]
    no_worse = (t["predicted"] <= t[["kahypar", "paper"]].min(axis=1) * 1.0).mean()
    no_worse_each = ((t["predicted"] <= t["kahypar"]) & (t["predicted"] <= t["paper"])).mean()
    return {"rows": rows, "architectures": len(t), "predicted_no_worse_than_both": float(no_worse_each),
            "predicted_no_worse_than_best_of_both": float(no_worse), "per_architecture": t.to_dict(orient="records")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["cost", "placement", "fig8", "validate"])
    parser.add_argument("--root", default="runs", help="where the benchmark's runs live")
    parser.add_argument("--n", type=int, default=100, help="architectures per population (cost, placement, fig8)")
    parser.add_argument("--workers", type=int, help="--processes of cnas score (default all cores)")
    parser.add_argument("--repeat", type=int, default=1, help="cost: timed calls of each (the fastest counts)")
    parser.add_argument("--profile", default="paper", help="cost, fig8: profile")
    parser.add_argument("--profiles", default="paper,edge", help="placement: profiles, comma-separated (names or .toml)")
    parser.add_argument("--image-size", type=int, default=32, help="fig8, validate: image size")
    parser.add_argument("--per", type=int, default=2, help="validate: architectures per population (6 populations)")
    parser.add_argument("--nodes", type=int, default=40, help="validate: blocks per architecture")
    parser.add_argument("--repeats", type=int, default=30, help="validate: timed inferences per measurement")
    parser.add_argument("--tiny", action="store_true", help="validate: quick profile (a smoke test, not a result)")
    parser.add_argument("--label", default="", help="suffix of the results file name")
    args = parser.parse_args()
    result = {"mode": args.mode, "argv": sys.argv[1:], **globals()[args.mode](args), "commit": git_commit(MEASURED_CODE, short=True),
              "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}
    RESULTS.mkdir(exist_ok=True)
    name = f"bench_predict_{args.mode}" + (f"_{args.label}" if args.label else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    md = render(result)
    (RESULTS / f"{name}.md").write_text(md)
    print(md)


def render(result: dict) -> str:
    """The Markdown report of one mode's ``result`` (its JSON file)."""
    md = f"Commit {result['commit']}; `python benchmarks/bench_predict.py {' '.join(result['argv'])}`.\n\n"
    md += rows_to_markdown(result["rows"])
    for key in ("overall", "architectures", "predicted_no_worse_than_both", "predicted_no_worse_than_best_of_both"):
        if key in result:
            md += f"\n{key}: {result[key]}\n"
    if result.get("per_architecture"):
        cols = ["population", "arch_id", "cs", "pred_latency_ms", "kahypar", "paper", "predicted"]
        rows = [{k: (round(r[k], 3) if isinstance(r[k], float) else r[k]) for k in cols} for r in result["per_architecture"]]
        md += ("\nPer architecture (ms; `kahypar`, `paper`, `predicted`: measured 2-unit medians of those "
               "placements, gloo; `pred_latency_ms`: predicted from the profile, best placement):\n\n")
        md += rows_to_markdown(rows)
    md += f"\n{result['uptime']}\n"
    return md


if __name__ == "__main__":
    main()
