"""``cnas latency``: place architectures on units, measure single-input latency, simulate more units."""

from __future__ import annotations

import argparse

from ..errors import CnasError
from .common import (
    add_compile_options,
    add_deprecated_aliases,
    add_options,
    compile_settings_from_args,
    field_help,
    options_from_args,
    parse_int_list,
    progress_bar,
)

#: LatencyOptions fields whose flag is not ``--field-name``.
FLAGS = {"placements": "--placement", "transports": "--transport", "timeout_s": "--unit-timeout",
         "threads": "--threads-per-unit", "seed": "--measure-seed"}
#: Columns of the summary printed after a run.
SUMMARY = ["arch_id", "generator", "units", "placement", "transport", "threads", "source", "load_avg",
           "median_ms", "p10_ms", "p90_ms", "speedup", "speedup_same_cores", "messages", "sim_error"]


def register(sub) -> None:
    from ..placement.options import LatencyOptions

    p = sub.add_parser(
        "latency",
        help="measure single-input latency of architectures split over units (processes)",
        description=(
            "Split each architecture over N units (one OS process each, torch.distributed gloo or "
            "shared memory between them), measure the latency of one input, check the output equals "
            "the single-process output, and write RUN/latency.parquet. Rows already there are kept "
            "and not measured again. --simulate-units adds simulated rows (labelled) for more units "
            "than this host has."
        ),
    )
    p.add_argument("source", metavar="RUN", help="run directory (or a node-link JSON graph file)")
    p.add_argument("--ids", help="architecture ids, comma-separated (default: all)")
    # `network` is built from --bandwidth-mbit and --latency-ms below; --simulate-units is
    # parsed by hand because its empty default does not tell add_options it holds integers.
    add_options(p, LatencyOptions, skip=("network", "simulate_units"), flags=FLAGS)
    p.add_argument("--simulate-units", metavar="A,B,...",
                   help=f"{field_help(LatencyOptions)['simulate_units']} (default: none)")
    p.add_argument("--bandwidth-mbit", type=float, help="simulate a network of this bandwidth (Mbit/s) "
                   "instead of the measured loopback transfer model")
    p.add_argument("--latency-ms", type=float, default=0.5,
                   help="one-way message latency with --bandwidth-mbit (default 0.5)")
    p.add_argument("--master", metavar="HOST:PORT", help="units on several machines: address of unit 0 "
                   "(run the same command with --unit-rank 0..N-1 on each machine)")
    p.add_argument("--unit-rank", dest="rank", type=int, help="this machine's unit with --master")
    add_compile_options(p)
    # --image was this command's name for --image-size, which every other command uses.
    p.add_argument("--image", dest="image_size", type=int, help=argparse.SUPPRESS)
    add_deprecated_aliases(p, {"--threads": "--threads-per-unit", "--seed": "--measure-seed",
                               "--timeout": "--unit-timeout", "--rank": "--unit-rank"})
    p.set_defaults(func=run)


def latency_options(args):
    """The :class:`~concurrent_nas.placement.LatencyOptions` the flags ask for (checked)."""
    from ..placement import LatencyOptions, TransferModel

    extra = {}
    for name in ("placements", "transports"):  # "kahypar, paper" as well as "kahypar,paper"
        if getattr(args, name) is not None:
            extra[name] = tuple(item.strip() for item in getattr(args, name))
    if args.simulate_units:
        extra["simulate_units"] = tuple(parse_int_list(args.simulate_units, "--simulate-units"))
    if args.bandwidth_mbit is not None:
        extra["network"] = TransferModel.network(bandwidth_mbit=args.bandwidth_mbit, latency_ms=args.latency_ms)
    return options_from_args(args, LatencyOptions, **extra)


def run(args) -> int:
    from ..placement import latency_run, latency_unit

    options = latency_options(args)
    settings = compile_settings_from_args(args)
    ids = parse_int_list(args.ids, "--ids") if args.ids else None
    if args.master or args.rank is not None:
        if not args.master or args.rank is None:
            raise CnasError("--master HOST:PORT and --unit-rank R go together (one process per machine)")
        latency_unit(args.source, options, settings, master=args.master, rank=args.rank, ids=ids,
                     on_row=_print_unit_row)
        return 0
    result = latency_run(args.source, options, settings, ids=ids,
                         progress=lambda total: progress_bar(total, "latency", unit="arch"))
    _print_summary(result.table, result.path)
    return 0


def _print_unit_row(row: dict) -> None:
    print(f"arch {row['arch_id']} ({row['generator']}) on {row['units']} units, {row['placement']}: "
          f"median {row['median_ms']:.2f} ms (p10 {row['p10_ms']:.2f}, p90 {row['p90_ms']:.2f}); "
          "output equals single-process output")


def _print_summary(table, out) -> None:
    import pandas as pd

    if table.empty:
        print(f"{out}: no rows")
        return
    cols = [c for c in SUMMARY if c in table.columns]
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(table[cols].round(3).to_string(index=False))
    print(f"wrote {out} ({len(table)} rows)")
