"""How well each accuracy estimate ranks architectures, and what it costs.

Samples 5 architectures of 40 blocks for each of 12 generator settings (ER p 0.1/0.2/0.3,
BA m 2/3/5, WS k/p 6/0.5, 4/0.75, 4/0.25, DP p 0.55/0.45/0.3: 60 architectures),
trains each for 20 epochs on digits at 16 px (``cnas train``, the ground truth), runs
every method of ``cnas estimate`` on each, and reports per method: seconds per
architecture and the Spearman rank correlation of the estimate with 20-epoch top-1.
For reference it also correlates the ground truth's own top-1 after its first epochs
(same initial weights as the truth, so an optimistic stand-in for short training).

Real commands, printed; ``--jobs`` of them at once (the ground truth dominates). Run
directories are kept under ``--runs``, so running again resumes the training from its
checkpoints and re-makes only what is missing.

    python benchmarks/bench_estimate.py --runs /tmp/cnas_est --merge sigmoid-weights

Writes ``benchmarks/results/bench_estimate.json`` and ``bench_estimate.md``, naming
the git commit they were made at.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from concurrent_nas.analysis.tables import markdown_table
from concurrent_nas.rundir import ACCURACY, HISTORY, load_parquet
from concurrent_nas.training.estimate import ESTIMATES, METHODS
from stamp import git_commit

RESULTS = Path(__file__).resolve().parent / "results"
# (generator, parameters): several settings per generator, not only the defaults.
CONFIGS = [
    ("er", {"p": 0.3}), ("er", {"p": 0.2}), ("er", {"p": 0.1}),
    ("ba", {"m": 5}), ("ba", {"m": 3}), ("ba", {"m": 2}),
    ("ws", {"k": 6, "p": 0.5}), ("ws", {"k": 4, "p": 0.75}), ("ws", {"k": 4, "p": 0.25}),
    ("dp", {"p": 0.55}), ("dp", {"p": 0.45}), ("dp", {"p": 0.3}),
]  # fmt: skip
TARGET = 0.6
MIN_N = 60
PREFIX_EPOCHS = (1, 2, 3, 5)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cnas(args: list[str]) -> None:
    command = ["cnas", *args]
    print("$", shlex.join(command), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def run_dir(runs: Path, gen: str, params: dict) -> Path:
    return runs / ("est-" + gen + "-" + "-".join(f"{k}{v}" for k, v in params.items()))


def compile_opts(args) -> list[str]:
    opts = ["--stem-channels", str(args.stem_channels), "--channel-cap", str(args.channel_cap)]
    return opts + (["--merge", args.merge] if args.merge else [])


def sample_commands(args) -> list[list[str]]:
    commands = []
    for gen, params in CONFIGS:
        out = run_dir(Path(args.runs), gen, params)
        if not (out / "architectures.parquet").exists():
            extra = [a for k, v in params.items() for a in ("--param", f"{k}={v}")]
            commands.append(["sample", "--gen", gen, "--n", str(args.per_config), "--nodes", "40",
                             "--seed", str(args.sample_seed), *extra, "--out-dir", str(out), "--force"])  # fmt: skip
    return commands


def train_command(args, run: Path) -> list[str]:
    return [
        "train", str(run), "--dataset", "digits", "--image-size", str(args.image_size),
        "--epochs", str(args.train_epochs or args.epochs), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
        "--torch-threads", "1", "--device", "cpu", *compile_opts(args),
    ]  # fmt: skip


def estimate_commands(args, run: Path) -> list[list[str]]:
    commands = []
    for m in args.methods:
        ids = ["--ids", args.short_ids] if m == "short-training" and args.short_ids else []
        commands.append(["estimate", str(run), "--method", m, "--image-size", str(args.image_size),
                         "--torch-threads", "1", *ids, *compile_opts(args)])  # fmt: skip
    return commands


def execute(args) -> list[str]:
    """Sample, then the ground truth and the estimates, ``--jobs`` commands at once."""
    runs = [run_dir(Path(args.runs), g, p) for g, p in CONFIGS]
    done: list[str] = []
    for c in sample_commands(args):
        cnas(c)
        done.append(shlex.join(["cnas", *c]))
    # One task per run directory and kind, so no two processes rewrite the same table.
    tasks = []
    if args.part in ("truth", "all") and args.round_robin:
        # Architecture i of every run before architecture i + 1 of any: a pass stopped
        # early still covers every generator setting.
        ids = range(args.per_config)
        tasks += [[[*train_command(args, r), "--ids", str(i)]] for i in ids for r in runs]
    elif args.part in ("truth", "all"):
        tasks += [[train_command(args, r)] for r in runs]
    if args.part in ("estimates", "all"):
        tasks += [estimate_commands(args, r) for r in runs]

    def work(commands: list[list[str]]) -> None:
        for c in commands:
            cnas(c)

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for f in [pool.submit(work, t) for t in tasks]:
            f.result()
    done += [shlex.join(["cnas", *c]) for t in tasks for c in t]
    return done


def collect(args, epochs: int) -> pd.DataFrame:
    """One row per architecture: run, generator, parameters, truth, prefix accuracies, estimates."""
    frames = []
    for gen, params in CONFIGS:
        run = run_dir(Path(args.runs), gen, params)
        acc = load_parquet(run / ACCURACY).query("dataset == 'digits' and kind == 'sampled'")
        table = acc[["arch_id", "generator", "params", "seconds_per_epoch"]].rename(columns={"params": "kparams"})
        table["kparams"] = table["kparams"] / 1e3
        history = load_parquet(run / HISTORY).query("dataset == 'digits'")
        # The truth is top-1 after epoch --epochs; read from the history, so a first pass
        # to fewer epochs (resumed later) leaves those architectures out, not wrong.
        truth = history[history["epoch"] == epochs].set_index("arch_id")["test_acc"]
        table.insert(2, "top1", table["arch_id"].map(truth))
        # Test accuracy jumps by several points from epoch to epoch at a constant
        # learning rate; the mean of the last three epochs is a steadier truth.
        last = history[history["epoch"].between(epochs - 2, epochs)]
        counts = last.groupby("arch_id")["test_acc"].count()
        steady = last.groupby("arch_id")["test_acc"].mean()[counts == 3]
        table.insert(3, "top1_last3", table["arch_id"].map(steady))
        for e in PREFIX_EPOCHS:
            at = history[history["epoch"] == e].set_index("arch_id")["test_acc"]
            table[f"top1_epoch{e}"] = table["arch_id"].map(at)
        if (run / ESTIMATES).exists():
            est = load_parquet(run / ESTIMATES).query("dataset == 'digits'")
            for method, rows in est.groupby("method"):
                rows = rows.set_index("arch_id")
                table[method] = table["arch_id"].map(rows["estimate"])
                table[f"{method}_seconds"] = table["arch_id"].map(rows["seconds"])
        table.insert(0, "run", run.name)
        table["truth_epochs"] = epochs
        table.insert(2, "setting", ", ".join(f"{k}={v}" for k, v in params.items()))
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def summarize(table: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """Per method: n, seconds per architecture, Spearman with the truth (overall, within generators)."""
    rows = []
    for method in [m for m in METHODS if f"{m}_seconds" in table.columns]:
        ok = table[["top1", method]].dropna()
        rho = spearmanr(ok[method], ok["top1"]).statistic if len(ok) > 2 else float("nan")
        steady = table[["top1_last3", method]].dropna()
        rho3 = spearmanr(steady[method], steady["top1_last3"]).statistic if len(steady) > 2 else float("nan")
        within = [
            spearmanr(g[method], g["top1"]).statistic
            for _, g in table.dropna(subset=[method]).groupby("generator") if len(g) > 2
        ]  # fmt: skip
        secs = table[f"{method}_seconds"].dropna()
        rows.append({
            "method": method, "n": len(ok), "spearman": round(float(rho), 3),
            "spearman_last3": round(float(rho3), 3),
            "mean_spearman_within_generator": round(float(pd.Series(within).mean()), 3),
            "median_s_per_arch": round(float(secs.median()), 3), "mean_s_per_arch": round(float(secs.mean()), 3),
        })  # fmt: skip
    prefix = []
    for e in PREFIX_EPOCHS:
        ok = table[["top1", f"top1_epoch{e}"]].dropna()
        if len(ok) < 3 or e >= table["truth_epochs"].iloc[0]:
            continue
        steady = table[["top1_last3", f"top1_epoch{e}"]].dropna()
        prefix.append({
            "truth_after_epochs": e, "n": len(ok),
            "spearman": round(float(spearmanr(ok[f"top1_epoch{e}"], ok["top1"]).statistic), 3),
            "spearman_last3": round(float(spearmanr(steady[f"top1_epoch{e}"], steady["top1_last3"]).statistic), 3),
            "median_s_per_arch": round(float(table["seconds_per_epoch"].median() * e), 3),
        })  # fmt: skip
    return rows, prefix


def choose_default(rows: list[dict]) -> tuple[str, str]:
    # Only a method measured on the whole study may become the default.
    passing = [r for r in rows if r["spearman"] >= TARGET and r["n"] >= MIN_N]
    if passing:
        best = min(passing, key=lambda r: r["median_s_per_arch"])
        return best["method"], f"cheapest method with Spearman >= {TARGET}"
    return "short-training", f"no method reached Spearman {TARGET} on {MIN_N} architectures: short training by rule"


def to_markdown(results: dict) -> str:
    s = results["settings"]
    lines = [
        "# bench_estimate", "",
        f"git commit `{results['commit']}` (+ the working tree's uncommitted changes of that moment, if any); "
        f"report made {results['finished']}; load average {results['load_end']} at the end (2 shared cores, "
        "other jobs running: costs are wall seconds on a busy machine).", "",
        f"Architectures: {results['n_sampled']} of 40 blocks, 5 per generator setting ({len(CONFIGS)} settings). "
        f"Ground truth: top-1 on the digits test split (360 images), {s['image_size']} px, batch {s['batch_size']}, "
        f"lr {s['lr']} constant, momentum 0.9, no augmentation, stem {s['stem_channels']} / cap {s['channel_cap']}, "
        f"merge `{s['merge_used']}` (the default at this commit: `{s['merge_default_at_commit']}`), one thread. "
        "`top1`: after the last epoch; `top1_last3`: mean of the last three epochs (test accuracy moves by "
        "several points from epoch to epoch at a constant learning rate).", "",
        f"Estimates: `cnas estimate` with its defaults ({s['estimate_config_default']}); short training uses "
        f"TrainConfig's defaults otherwise ({s['train_config_default']}).", "",
    ]  # fmt: skip
    for block in results["truths"]:
        lines += [
            f"## Against {block['epochs']}-epoch accuracy (n = {block['n']})", "",
            f"top1 from {block['range'][0]:.1f} to {block['range'][1]:.1f} % (median {block['median']:.1f}).", "",
            markdown_table(pd.DataFrame(block["methods"])), "",
        ]  # fmt: skip
        if block["prefix"]:
            lines += ["The truth's own first epochs (same initial weights and lr as the truth: an optimistic "
                      "stand-in for short training):", "", markdown_table(pd.DataFrame(block["prefix"])), ""]
    lines += [f"Default: **{results['default']}** ({results['default_reason']}).", ""]
    lines += ["## Per generator setting", "", markdown_table(pd.DataFrame(results["per_setting"])), ""]
    lines += ["## How it was made", ""] + [f"    {c}" for c in results["made_by"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("truth", "estimates", "report", "all"), default="all",
                   help="truth: sample + train; estimates: cnas estimate; report: tables only; all")
    p.add_argument("--runs", default="runs/bench-estimate", help="where the run directories go")
    p.add_argument("--per-config", type=int, default=5, help="architectures per generator setting")
    p.add_argument("--sample-seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=20, help="epochs the ground truth is trained to")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--stem-channels", type=int, default=8)
    p.add_argument("--channel-cap", type=int, default=32)
    p.add_argument("--merge", help="compile merge (default: CompileSettings' default)")
    p.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS))
    p.add_argument("--short-ids", help="architecture ids per run for short-training (default all)")
    p.add_argument("--train-epochs", type=int, help="train to this many epochs now (default --epochs; "
                   "a later call with more resumes)")
    p.add_argument("--round-robin", action="store_true",
                   help="train one architecture per run in turn (a pass stopped early covers every setting)")
    p.add_argument("--truth-epochs", type=lambda t: [int(x) for x in t.split(",")], default=[20],
                   help="report: epochs of the ground truth(s), the first decides the default")
    p.add_argument("--made-by", action="append", help="report: a command that made the runs (repeatable)")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()

    from concurrent_nas.shapes import CompileSettings
    from concurrent_nas.training.config import TrainConfig
    from concurrent_nas.training.estimate import EstimateConfig

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    commands = execute(args) if args.part != "report" else []
    if args.part != "report":
        print(f"{args.part}: {len(commands)} commands, {started} to {time.strftime('%H:%M:%S', time.gmtime())}")
        return
    truths, tables = [], {}
    for epochs in args.truth_epochs:
        table = collect(args, epochs)
        tables[epochs] = table
        methods, prefix = summarize(table)
        truths.append({
            "epochs": epochs, "n": int(table["top1"].notna().sum()),
            "range": [float(table["top1"].min()), float(table["top1"].max())],
            "median": float(table["top1"].median()), "methods": methods, "prefix": prefix,
        })  # fmt: skip
    primary = truths[0]
    default, reason = choose_default(primary["methods"])
    reason += f" against {primary['epochs']}-epoch accuracy, n = {primary['n']}"
    table = tables[args.truth_epochs[0]]
    per_setting = (
        table.groupby(["generator", "setting"], sort=False)
        .agg(n=("top1", "size"), mean_top1=("top1", "mean"), min_top1=("top1", "min"), max_top1=("top1", "max"),
             mean_kparams=("kparams", "mean"))
        .round(2).reset_index()
    )  # fmt: skip
    results = {
        "commit": git_commit(),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load_end": load_average(),
        "settings": {**{k: getattr(args, k) for k in ("batch_size", "lr", "image_size",
                                                     "stem_channels", "channel_cap", "per_config")},
                     "merge_used": args.merge or CompileSettings().merge,
                     "merge_default_at_commit": CompileSettings().merge,
                     "train_config_default": repr(TrainConfig()),
                     "estimate_config_default": repr(EstimateConfig())},  # fmt: skip
        "n_sampled": len(table),
        "truths": truths,
        "default": default,
        "default_reason": reason,
        "per_setting": per_setting.to_dict("records"),
        "made_by": args.made_by or [],
        "per_architecture": {str(e): t.round(6).to_dict("records") for e, t in tables.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_estimate.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (RESULTS / "bench_estimate.md").write_text(to_markdown(results))
    for block in truths:
        print(f"against {block['epochs']}-epoch accuracy, n = {block['n']}")
        print(markdown_table(pd.DataFrame(block["methods"])))
    print(f"default: {default} ({reason})")


if __name__ == "__main__":
    main()
