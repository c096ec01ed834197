"""Capacity-matched accuracy (paper Table 5, Fig. 2): sampled networks sized to CifarNet's parameters.

For each generator, the same 5 architectures of 40 blocks (``cnas sample --seed 0``) are
trained with ``cnas train --match-params cifarnet`` (every network's stem width and
channel cap chosen so that its parameter count is within 10 % of CifarNet's) and compared
with CifarNet itself, over several training seeds. Every setting not named below is
``cnas train``'s default. Jobs (one ``cnas train`` process per generator and seed, each
in its own run directory) run ``--jobs`` at a time in priority order: seed 0 of
everything first, then DP and CifarNet on the other seeds, then the rest, so a run cut
short still holds the comparison that matters most. Running the script again resumes
(``cnas train`` resumes from its checkpoints; finished models are not retrained).

    python benchmarks/bench_match.py --runs runs/match --image-size 8 --epochs 20 --seeds 0,1,2

Writes ``benchmarks/results/bench_match.{json,md}`` (with the git commit it ran at) and
``docs/figures/fig02_matched_accuracy_params.png``.
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

from concurrent_nas.analysis.tables import markdown_table
from concurrent_nas.rundir import ACCURACY, load_parquet
from stamp import git_commit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FIGURE = ROOT / "docs" / "figures" / "fig02_matched_accuracy_params.png"


#: The code a training result depends on; other packages' uncommitted work does not make it dirty.
TRAINING_CODE = ["concurrent_nas/shapes.py", "concurrent_nas/compiler", "concurrent_nas/training",
                 "concurrent_nas/cli/train.py"]  # fmt: skip


def jobs(args) -> list[tuple[str, int, str, list[list[str]]]]:
    """``(model, seed, ids, commands)`` in priority order (``ids`` "" = all architectures).

    Default order: seed 0 of everything (DP and the baseline first), then the baseline's
    other seeds (cheap), then DP's, then the rest. ``--order dp:0,ws:0:0-2,...`` replaces
    it (a job ``model:seed`` or ``model:seed:first-last``; a job may be split in two).
    """
    runs = Path(args.runs)
    common = ["--dataset", "digits", "--image-size", str(args.image_size), "--epochs", str(args.epochs),
              "--torch-threads", str(args.threads), "--device", "cpu"]  # fmt: skip

    def job(model: str, seed: int, ids: str = "") -> tuple[str, int, str, list[list[str]]]:
        run = runs / f"s{seed}" / model
        if model == args.baseline:
            sample = ["sample", "--gen", "chain", "--n", "1", "--nodes", "4", "--out-dir", str(run)]
            train = ["train", str(run), *common, "--model-seed", str(seed), "--ids", "none", "--baseline", model]
            return model, seed, ids, [sample, train]
        sample = ["sample", "--gen", model, "--n", str(args.archs), "--nodes", "40", "--seed", "0", "--out-dir", str(run)]
        train = ["train", str(run), *common, "--model-seed", str(seed), "--match-params", args.baseline]
        if ids:
            first, last = (int(x) for x in ids.split("-"))
            train += ["--ids", ",".join(str(i) for i in range(first, last + 1))]
        return model, seed, ids, [sample, train]

    if args.order:
        return [job(*(int(p) if i == 1 else p for i, p in enumerate(item.split(":")))) for item in args.order.split(",")]
    models = ["dp", args.baseline, *[g for g in args.generators if g != "dp"]]
    first = [(m, args.seeds[0]) for m in models]
    key = [(args.baseline, s) for s in args.seeds[1:]] + [("dp", s) for s in args.seeds[1:] if "dp" in args.generators]
    rest = [(m, s) for s in args.seeds[1:] for m in args.generators if m != "dp"]
    return [job(m, s) for m, s in first + key + rest]


def run_jobs(todo, width: int, logs: Path) -> list[dict]:
    """Run each job's commands in order, ``width`` jobs at a time; a sample is skipped if its run exists.

    Two jobs never share a run directory at once (its tables are rewritten after every
    epoch). ``logs/jobs`` (a number), when present, overrides ``width`` while the
    benchmark runs: on a shared machine the free cores change.
    """
    logs.mkdir(parents=True, exist_ok=True)
    pending, active, done = list(todo), [], []
    while pending or active:
        override = logs / "jobs"
        if override.exists():
            width = int(override.read_text().strip() or width)
        busy = {(a[1], a[2]) for a in active}
        ready = [j for j in pending if (j[0], j[1]) not in busy]
        while ready and len(active) < width:
            model, seed, ids, commands = ready.pop(0)
            pending.remove((model, seed, ids, commands))
            busy.add((model, seed))
            ready = [j for j in ready if (j[0], j[1]) not in busy]
            steps = [c for c in commands if not (c[0] == "sample" and Path(c[c.index("--out-dir") + 1]).exists())]
            script = " && ".join(shlex.join(["cnas", *c]) for c in steps)
            print(f"$ {script}", flush=True)
            log = open(logs / f"{model}-s{seed}{'-' + ids if ids else ''}.log", "w")
            proc = subprocess.Popen(["bash", "-c", script], stdout=log, stderr=subprocess.STDOUT)
            active.append((proc, model, seed, time.time(), log))
        time.sleep(2)
        for item in list(active):
            proc, model, seed, start, log = item
            if proc.poll() is not None:
                log.close()
                active.remove(item)
                done.append({"model": model, "seed": seed, "rc": proc.returncode, "seconds": round(time.time() - start)})
                print(done[-1], flush=True)
    return done


def collect(args) -> pd.DataFrame:
    frames = []
    for path in sorted(Path(args.runs).glob(f"s*/*/{ACCURACY}")):
        frame = load_parquet(path).query("dataset == 'digits'").copy()
        frame["model"] = frame["generator"].str.replace("baseline-", "", regex=False)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def summarize(acc: pd.DataFrame) -> pd.DataFrame:
    """Per model: runs, seeds, mean ± std top-1 over all runs, std of the per-seed means, params, FLOPs."""
    per_seed = acc.groupby(["model", "seed"])["top1"].mean().groupby("model").std()
    out = acc.groupby("model").agg(
        runs=("top1", "size"), seeds=("seed", "nunique"), architectures=("arch_id", "nunique"),
        mean_top1=("top1", "mean"), std_top1=("top1", "std"), min_top1=("top1", "min"),
        max_top1=("top1", "max"), mean_best_top1=("best_top1", "mean"),
        mean_mparams=("params", lambda p: p.mean() / 1e6), min_mparams=("params", lambda p: p.min() / 1e6),
        max_mparams=("params", lambda p: p.max() / 1e6), mean_mflops=("flops", lambda f: f.mean() / 1e6),
        s_per_epoch=("seconds_per_epoch", "median"),
    )  # fmt: skip
    out.insert(5, "std_of_seed_means", per_seed)
    order = [m for m in ("cifarnet", "dp", "ws", "er", "ba") if m in out.index]
    return out.loc[order + [m for m in out.index if m not in order]].round(3).reset_index()


def figure(acc: pd.DataFrame, path: Path) -> None:
    """Top-1 against parameters, one point per architecture (mean ± std over seeds)."""
    from matplotlib.figure import Figure

    from concurrent_nas.analysis.figures import generator_color

    fig = Figure(figsize=(8.6, 4.6), layout="constrained")
    ax = fig.subplots()
    per_arch = acc.groupby(["model", "arch_id"]).agg(
        top1=("top1", "mean"), std=("top1", "std"), params=("params", "first"), seeds=("seed", "nunique")
    ).reset_index()  # fmt: skip
    for model, part in per_arch.groupby("model", sort=False):
        base = model not in ("dp", "ws", "er", "ba")
        ax.errorbar(part["params"] / 1e6, part["top1"], yerr=part["std"].fillna(0), fmt="*" if base else "o",
                    ms=14 if base else 7, color="black" if base else generator_color(model), capsize=3,
                    label=f"{model} ({int(part['seeds'].max())} seed{'s' if part['seeds'].max() > 1 else ''})")
    baseline_rows = acc[~acc["model"].isin(["dp", "ws", "er", "ba"])]
    if len(baseline_rows):
        target = baseline_rows["params"].iloc[0] / 1e6
        ax.axvspan(0.9 * target, 1.1 * target, color="0.92", zorder=0, label="±10 % of the baseline's params")
        ax.axhline(baseline_rows["top1"].mean(), color="black", lw=0.8, ls="--", zorder=0)
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel("top-1 on digits (%), mean ± std over seeds")
    ax.set_title("Accuracy against parameters at matched capacity (paper Fig. 2)", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default="runs/match", help="where the run directories go")
    p.add_argument("--image-size", type=int, default=8, help="digits side (8 = the scans' own resolution)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--archs", type=int, default=5)
    p.add_argument("--generators", type=lambda s: s.split(","), default=["dp", "ws", "er", "ba"])
    p.add_argument("--baseline", default="cifarnet")
    p.add_argument("--jobs", type=int, default=2, help="cnas train processes at once")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--order", help="jobs in this order: model:seed[:first-last],... (default: see jobs())")
    p.add_argument("--collect-only", action="store_true", help="tabulate what the runs hold, train nothing")
    p.add_argument("--commit", help="with --collect-only: the commit the runs were trained at (default HEAD)")
    p.add_argument("--note", default="", help="a sentence for the results file (scope, interruptions)")
    p.add_argument("--label", default="", help="write bench_match_LABEL.{json,md} and its own figure (a partial study)")
    args = p.parse_args()
    suffix = f"_{args.label}" if args.label else ""
    name = f"bench_match{suffix}"
    fig = FIGURE.with_name(f"{FIGURE.stem}{suffix}.png")
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    commit = args.commit or git_commit(TRAINING_CODE)
    todo = jobs(args)
    done = [] if args.collect_only else run_jobs(todo, args.jobs, Path(args.runs) / "logs")
    acc = collect(args)
    summary = summarize(acc)
    print(summary.to_string())
    figure(acc, fig)
    results = {
        "commit": commit, "started": started, "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "command": shlex.join(["python", *sys.argv]), "load_average_end": os.getloadavg(), "note": args.note,
        "jobs": [{"model": m, "seed": s, "ids": i, "commands": [shlex.join(["cnas", *c]) for c in cs]}
                 for m, s, i, cs in todo],
        "finished_jobs": done, "summary": summary.to_dict("records"),
        "per_run": acc[["model", "arch_id", "seed", "top1", "best_top1", "params", "flops", "stem_channels",
                        "channel_cap", "merge", "epochs", "image_size", "schedule", "seconds_per_epoch"]
                       ].to_dict("records"),
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    lines = [
        "# bench_match: capacity-matched accuracy on digits", "",
        f"commit `{commit}`, {started} to {results['finished']}; command `{results['command']}`", "",
        *([args.note, ""] if args.note else []),
        "Every sampled network sized by `--match-params` to CifarNet's parameter count (±10 %); "
        "all other settings at `cnas train`'s defaults. mean/std over all (architecture, seed) runs; "
        "`std_of_seed_means` is the spread of the per-seed means.", "",
        markdown_table(summary, float_format=lambda v: f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"), "",
        f"![accuracy against params](../../docs/figures/{fig.name})", "",
        "jobs (priority order):", "",
        *[f"    {c}" for job in results["jobs"] for c in job["commands"]], "",
        f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 shared cores)", "",
    ]  # fmt: skip
    (RESULTS / f"{name}.md").write_text("\n".join(lines))
    print(f"wrote {RESULTS / f'{name}.md'} and {fig}")


if __name__ == "__main__":
    main()
