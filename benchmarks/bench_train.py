"""Training numbers for the README: digits accuracy per generator, CPU time per epoch.

Part ``digits``: for each of DP, WS, ER, BA, sample 5 architectures of 40 blocks
(``cnas sample``), train them and the CifarNet baseline on scikit-learn's digits with
``cnas train`` (real commands, printed), and tabulate mean / best top-1, parameters and
accuracy per million parameters (the columns of the paper's Tables 5 and 6).

Part ``timing``: CPU seconds per training epoch on CIFAR-10-sized input (32x32, 50000
training images) for a DP-40 network with the default compile settings, and for
CifarNet. The images are synthetic (random bytes) written in the real CIFAR-10 binary
layout and read by the real loader; an epoch is timed on a subset and scaled to 50000
images (the per-batch cost does not depend on which images are in the batch).

    python benchmarks/bench_train.py --part all
    python benchmarks/bench_train.py --part timing --images 640 --repeats 3

Writes ``benchmarks/results/bench_train.md`` and ``bench_train.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from concurrent_nas.analysis.tables import markdown_table
from concurrent_nas.rundir import ACCURACY, load_parquet

RESULTS = Path(__file__).resolve().parent / "results"
GENERATORS = ("dp", "ws", "er", "ba")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cnas(*args: str) -> None:
    command = ["cnas", *args]
    print("$", shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def digits_train_options(args) -> list[str]:
    """The ``cnas train`` flags of the digits and merge parts (same settings in both)."""
    return [
        "--dataset", "digits", "--image-size", str(args.image_size), "--epochs", str(args.epochs),
        "--batch-size", "32", "--lr", str(args.lr), "--stem-channels", str(args.stem_channels),
        "--channel-cap", str(args.channel_cap), "--torch-threads", str(args.threads), "--device", "cpu",
    ]  # fmt: skip


def digits_part(args) -> dict:
    runs = Path(args.runs)
    train_opts = digits_train_options(args)
    commands, tables = [], []
    for i, gen in enumerate(GENERATORS):
        run = runs / f"train-{gen}40"
        sample = ["sample", "--gen", gen, "--n", "5", "--nodes", "40", "--seed", "0", "--out-dir", str(run), "--force"]
        train = ["train", str(run), *train_opts]
        if i == 0:
            train += ["--baseline", "cifarnet"]
        for c in (sample, train):
            commands.append(shlex.join(["cnas", *c]))
            cnas(*c)
        tables.append(load_parquet(run / ACCURACY).query("dataset == 'digits'"))
    acc = pd.concat(tables, ignore_index=True)
    acc["model"] = acc["generator"].str.replace("baseline-", "", regex=False)
    summary = (
        acc.groupby("model", sort=False)
        .agg(
            models=("top1", "size"),
            mean_top1=("top1", "mean"),
            best_top1=("best_top1", "max"),
            min_top1=("top1", "min"),
            mean_mparams=("params", lambda p: p.mean() / 1e6),
            mean_mflops=("flops", lambda f: f.mean() / 1e6),
            mean_acc_per_mparam=("acc_per_mparam", "mean"),
            s_per_epoch=("seconds_per_epoch", "median"),
        )
        .round(3)
    )
    print(summary.to_string())
    return {"commands": commands, "summary": summary.reset_index().to_dict("records"),
            "per_model": acc[["model", "arch_id", "top1", "best_top1", "params", "flops"]].to_dict("records")}


def merge_part(args) -> dict:
    """The same DP-40 architectures trained once per merge (``--merge``), settings as ``digits``."""
    from concurrent_nas.shapes import MERGES

    runs = Path(args.runs)
    train_opts = digits_train_options(args)
    commands, tables = [], []
    for merge in MERGES:
        run = runs / f"merge-{merge}-dp40"
        sample = ["sample", "--gen", "dp", "--n", str(args.archs), "--nodes", "40", "--seed", "0",
                  "--out-dir", str(run), "--force"]  # fmt: skip
        train = ["train", str(run), *train_opts, "--merge", merge]
        for c in (sample, train):
            commands.append(shlex.join(["cnas", *c]))
            cnas(*c)
        table = load_parquet(run / ACCURACY).query("dataset == 'digits'").copy()
        table["merge"] = merge
        tables.append(table)
    acc = pd.concat(tables, ignore_index=True)
    summary = (
        acc.groupby("merge", sort=False)
        .agg(models=("top1", "size"), mean_top1=("top1", "mean"), std_top1=("top1", "std"),
             min_top1=("top1", "min"), max_top1=("top1", "max"), mean_best_top1=("best_top1", "mean"),
             mean_mparams=("params", lambda p: p.mean() / 1e6), s_per_epoch=("seconds_per_epoch", "median"))
        .round(3)
    )  # fmt: skip
    print(summary.to_string())
    per = acc.pivot(index="arch_id", columns="merge", values="top1").round(2).reset_index()
    return {"commands": commands, "summary": summary.reset_index().to_dict("records"),
            "per_model": per.to_dict("records")}


def defaults_part(args) -> dict:
    """``cnas train RUN --dataset digits`` with every result-affecting setting at its default."""
    run = Path(args.runs) / "defaults-dp40"
    sample = ["sample", "--gen", "dp", "--n", str(args.archs), "--nodes", "40", "--seed", "0",
              "--out-dir", str(run), "--force"]  # fmt: skip
    train = ["train", str(run), "--dataset", "digits", "--torch-threads", str(args.threads)]
    commands = []
    for c in (sample, train):
        commands.append(shlex.join(["cnas", *c]))
        cnas(*c)
    acc = load_parquet(run / ACCURACY).query("dataset == 'digits'")
    hist = load_parquet(run / "history.parquet").query("dataset == 'digits'")
    per = acc[["arch_id", "top1", "best_top1", "params", "flops", "image_size", "batch_size", "schedule",
               "epochs", "merge", "stem_channels", "channel_cap", "seconds_per_epoch"]]  # fmt: skip
    curve = hist.groupby("epoch")["test_acc"].mean().round(2).reset_index()
    summary = {"models": len(acc), "mean_top1": round(acc["top1"].mean(), 2), "std_top1": round(acc["top1"].std(), 2),
               "min_top1": round(acc["top1"].min(), 2), "mean_best_top1": round(acc["best_top1"].mean(), 2)}
    print(per.to_string(), summary, sep="\n")
    return {"commands": commands, "summary": [summary], "per_model": per.to_dict("records"),
            "mean_test_acc_per_epoch": curve.to_dict("records")}


def write_synthetic_cifar(root: Path, train_images: int, seed: int = 0) -> None:
    """Random images in the real binary layout: 5 data batches and a test batch."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    per = -(-train_images // 5)
    for name, n in [*[(f"data_batch_{i}", per) for i in range(1, 6)], ("test_batch", 64)]:
        records = rng.integers(0, 256, (n, 3073), dtype=np.uint8)
        records[:, 0] %= 10
        (folder / f"{name}.bin").write_bytes(records.tobytes())


def timing_part(args) -> dict:
    import torch

    from concurrent_nas import CompileSettings, generate
    from concurrent_nas.compiler import build_network
    from concurrent_nas.training import Phase, TrainConfig, build_baseline, count_flops, load_dataset, train_model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_cifar(Path(tmp), args.images)
        data = load_dataset("cifar10", tmp)
        dag = generate("dp", nodes=40, seed=0)
        models = {
            "dp40": lambda: build_network(dag, CompileSettings(), init_seed=0),
            "cifarnet": lambda: build_baseline("cifarnet", 10, 32),
        }
        config = TrainConfig(epochs=1, batch_size=64, phases=(Phase(0, 1e-3, 0.9),), augment="flip-crop")
        for threads in args.thread_counts:
            torch.set_num_threads(threads)
            for name, build in models.items():
                for rep in range(args.repeats):
                    torch.manual_seed(0)
                    model = build()
                    before = load_average()
                    result = train_model(model, data, config)
                    seconds = result.history[0]["seconds"]
                    rows.append({
                        "model": name, "threads": threads, "repeat": rep, "images": len(data.train),
                        "train_seconds": seconds, "images_per_s": len(data.train) / seconds,
                        "s_per_50k_epoch": seconds * 50000 / len(data.train),
                        "mflops": count_flops(model, 32) / 1e6,
                        "load_before": before, "load_after": load_average(),
                    })  # fmt: skip
                    print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    summary = (
        frame.groupby(["model", "threads"])
        .agg(runs=("s_per_50k_epoch", "size"), median_s_per_epoch=("s_per_50k_epoch", "median"),
             min_s_per_epoch=("s_per_50k_epoch", "min"), max_s_per_epoch=("s_per_50k_epoch", "max"),
             images_per_s=("images_per_s", "median"), mflops=("mflops", "first"))
        .round(1)
    )  # fmt: skip
    print(summary.to_string())
    return {"summary": summary.reset_index().to_dict("records"), "runs": rows}


def short_float(value: float) -> str:
    """Three significant digits below 1, one decimal otherwise."""
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def records_table(records: list[dict]) -> str:
    """A list of dicts as a GitHub markdown table."""
    return markdown_table(pd.DataFrame.from_records(records), float_format=short_float)


def to_markdown(results: dict) -> str:
    lines = ["# bench_train", "", f"command: `{shlex.join(['python', *sys.argv])}`", ""]
    if "commit" in results:
        lines += [f"commit: `{results['commit']}`, started {results['started']}", ""]
    if "digits" in results:
        d = results["digits"]
        lines += ["## digits accuracy (5 architectures per generator, 40 blocks)", ""]
        if "note" in results:
            lines += [" ".join(results["note"].split()), "",
                      "The `cnas train` commands below ran inside the benchmark process after that patch.", ""]
        lines += [f"    {c}" for c in d["commands"]] + [""]
        lines += [records_table(d["summary"]), ""]
    if "merge" in results:
        m = results["merge"]
        lines += ["## merge variants (same DP-40 architectures, top-1 after the last epoch)", ""]
        lines += [f"    {c}" for c in m["commands"]] + [""]
        lines += [records_table(m["summary"]), "", "per architecture:", "", records_table(m["per_model"]), ""]
    if "defaults" in results:
        m = results["defaults"]
        lines += ["## defaults: `cnas train RUN --dataset digits`, 5 DP-40 architectures", ""]
        lines += [f"    {c}" for c in m["commands"]] + [""]
        lines += [records_table(m["summary"]), "", "per architecture:", "", records_table(m["per_model"]), "",
                  "mean test accuracy per epoch:", "", records_table(m["mean_test_acc_per_epoch"]), ""]
    if "timing" in results:
        lines += ["## CPU seconds per CIFAR-10-sized epoch (50000 images, 32x32, batch 64)", ""]
        lines += [records_table(results["timing"]["summary"]), ""]
    lines += [f"load average at the end: {load_average()} (2 cores, shared)", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("digits", "merge", "defaults", "timing", "all"), default="all", help="all = digits + timing")
    p.add_argument("--runs", default="runs", help="where the digits run directories go")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--stem-channels", type=int, default=16)
    p.add_argument("--channel-cap", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--archs", type=int, default=5, help="architectures per merge (--part merge)")
    p.add_argument("--images", type=int, default=640, help="training images timed per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--thread-counts", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    args = p.parse_args()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=RESULTS.parent.parent, capture_output=True, text=True)
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "concurrent_nas"], cwd=RESULTS.parent.parent)
    results: dict = {"load_start": load_average(), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                     "commit": head.stdout.strip() + ("+dirty" if dirty.returncode else "")}
    if args.part in ("digits", "all"):
        results["digits"] = digits_part(args)
    if args.part == "merge":
        results["merge"] = merge_part(args)
    if args.part == "defaults":
        results["defaults"] = defaults_part(args)
    if args.part in ("timing", "all"):
        results["timing"] = timing_part(args)
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.part == "all" else f"_{args.part}"
    (RESULTS / f"bench_train{suffix}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (RESULTS / f"bench_train{suffix}.md").write_text(to_markdown(results))
    print(f"wrote {RESULTS}/bench_train{suffix}.md")


if __name__ == "__main__":
    main()
