"""``cnas params``: parameter counts per generator and staging mode (paper Table 4)."""

from __future__ import annotations

from .common import progress_bar
from .common import add_compile_options, compile_settings_from_args

PARAMS_TABLE = "params.parquet"


def register(sub) -> None:
    p = sub.add_parser(
        "params",
        help="mean/std of parameter counts per generator and staging mode (paper Table 4)",
        description="Shape pass of every architecture of one or more runs under each staging mode; "
        "prints mean and standard deviation of the parameter counts per generator, and writes "
        f"the per-architecture counts to RUN/{PARAMS_TABLE}.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories made by `cnas sample`")
    add_compile_options(p, skip=("staging",))
    p.add_argument("--staging", default="greedy,probabilistic",
                   help="comma-separated staging modes (default greedy,probabilistic)")
    p.add_argument("--out", metavar="FILE", help="also write the summary table (.csv, .md or .json)")
    p.set_defaults(func=run)


def parameter_table(runs, modes, base_settings, progress=None):
    """One row per (architecture, staging mode).

    Columns ``run, arch_id, generator, nodes, staging, params, flops, settings`` (the
    other compile settings as JSON, so a table says what it was computed with).
    """
    import pandas as pd

    from ..rundir import read_architectures, row_to_dag
    from ..shapes import plan_network

    import dataclasses
    import json

    rows = []
    described = {k: v for k, v in dataclasses.asdict(base_settings).items() if k != "staging"}
    settings_json = json.dumps(described, sort_keys=True)
    for run in runs:
        table = read_architectures(run)
        for record in table.itertuples(index=False):
            dag = row_to_dag(record)
            for mode in modes:
                plans = plan_network(dag, base_settings.replace(staging=mode))
                rows.append({
                    "run": str(run),
                    "arch_id": int(record.arch_id),
                    "generator": record.generator,
                    "nodes": int(record.nodes),
                    "staging": mode,
                    "params": sum(p.params for p in plans),
                    "flops": sum(p.flops for p in plans),
                    "settings": settings_json,
                })
            if progress:
                progress(1)
    return pd.DataFrame(rows)


def summarize(frame):
    """Mean and std (millions of parameters) per (generator, nodes, staging)."""
    grouped = frame.groupby(["generator", "nodes", "staging"], sort=False)["params"]
    out = grouped.agg(count="count", mean="mean", std="std").reset_index()
    out["mean_M"] = out.pop("mean") / 1e6
    out["std_M"] = out.pop("std") / 1e6
    return out


def markdown_table(frame) -> str:
    """A GitHub markdown table (no dependency on ``tabulate``)."""
    def cell(x):
        return f"{x:.3f}" if isinstance(x, float) else str(x)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def run(args) -> int:
    from pathlib import Path

    from ..errors import CnasError
    from ..rundir import read_architectures, write_table
    from ..shapes import STAGING_MODES

    modes = [m.strip() for m in args.staging.split(",") if m.strip()]
    unknown = [m for m in modes if m not in STAGING_MODES]
    if unknown or not modes:
        raise CnasError(f"--staging expects modes from {', '.join(STAGING_MODES)}, got '{args.staging}'")
    settings = compile_settings_from_args(args, staging=modes[0])
    total = sum(len(read_architectures(r)) for r in args.runs)  # fails early on a bad run
    with progress_bar(total, "params", unit="arch") as bar:
        frame = parameter_table(args.runs, modes, settings, progress=bar.update)
    for run_dir, part in frame.groupby("run", sort=False):
        write_table(part.drop(columns="run").reset_index(drop=True), Path(run_dir) / PARAMS_TABLE)
    summary = summarize(frame)
    text = summary.to_string(index=False, float_format=lambda x: f"{x:.3f}")
    print(text)
    print(f"(parameters in millions; {settings.channel_cap} channel cap, stem {settings.stem_channels}, "
          f"{settings.num_classes} classes; per-architecture counts in RUN/{PARAMS_TABLE})")
    if args.out:
        out = Path(args.out)
        if out.suffix == ".csv":
            summary.to_csv(out, index=False)
        elif out.suffix == ".json":
            summary.to_json(out, orient="records", indent=1)
        else:
            out.write_text(markdown_table(summary))
    return 0
