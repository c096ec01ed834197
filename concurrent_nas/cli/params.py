"""``cnas params``: parameter counts per generator and staging mode (paper Table 4)."""

from __future__ import annotations

from .common import add_compile_options, compile_settings_from_args, progress_bar


def register(sub) -> None:
    from ..rundir import PARAMS

    p = sub.add_parser(
        "params",
        help="mean/std of parameter counts per generator and staging mode (paper Table 4)",
        description="Shape pass of every architecture of one or more runs under each staging mode; "
        "prints mean and standard deviation of the parameter counts per generator, and writes "
        f"the per-architecture counts to RUN/{PARAMS}.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories made by `cnas sample`")
    add_compile_options(p, skip=("staging",))
    p.add_argument("--staging", default="greedy,probabilistic",
                   help="comma-separated staging modes (default greedy,probabilistic)")
    p.add_argument("--out", metavar="FILE", help="also write the summary table (.csv, .md or .json)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import CnasError
    from ..parameters import count_run_parameters
    from ..rundir import PARAMS, check_output, read_architectures
    from ..shapes import STAGING_MODES

    modes = [m.strip() for m in args.staging.split(",") if m.strip()]
    unknown = [m for m in modes if m not in STAGING_MODES]
    if unknown or not modes:
        raise CnasError(f"--staging expects modes from {', '.join(STAGING_MODES)}, got '{args.staging}'")
    settings = compile_settings_from_args(args, staging=modes[0])
    if args.out:
        check_output(args.out, force=args.force, suffixes=SUMMARY_FORMATS)
    total = sum(len(read_architectures(r)) for r in args.runs)  # fails early on a bad run
    with progress_bar(total, "params", unit="arch") as bar:
        _, summary = count_run_parameters(args.runs, modes, settings, progress=bar.update)
    print(summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"(parameters in millions; {settings.channel_cap} channel cap, stem {settings.stem_channels}, "
          f"{settings.num_classes} classes; per-architecture counts in RUN/{PARAMS})")
    if args.out:
        write_summary(summary, args.out)
    return 0


#: Extensions ``--out`` understands.
SUMMARY_FORMATS = (".csv", ".json", ".md")


def write_summary(summary, path) -> None:
    """Write the summary as CSV (``.csv``), JSON (``.json``) or a markdown table (``.md``), atomically."""
    from pathlib import Path

    from ..analysis.tables import markdown_table
    from ..rundir import atomic_output

    path = Path(path)
    with atomic_output(path, what="summary") as tmp:
        if path.suffix.lower() == ".csv":
            summary.to_csv(tmp, index=False)
        elif path.suffix.lower() == ".json":
            summary.to_json(tmp, orient="records", indent=1)
        else:
            tmp.write_text(markdown_table(summary, float_format=lambda x: f"{x:.3f}") + "\n")
