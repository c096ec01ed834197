"""``cnas latency``: place architectures on units, measure single-input latency, simulate more units."""

from __future__ import annotations

import sys

from ..errors import CnasError
from .common import parse_int_list

LATENCY = "latency.parquet"


def register(sub) -> None:
    from .common import add_compile_options

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
    p.add_argument("--units", default="1,2", help="unit counts to measure (default 1,2)")
    p.add_argument("--placement", default="kahypar",
                   help="comma-separated: kahypar (scoring's partition), paper (appendix 6.1 heuristic), "
                        "threads (one process, concurrent branches), single (default kahypar)")
    p.add_argument("--transport", default="gloo", help="comma-separated: gloo, shm (same host), nccl (default gloo)")
    p.add_argument("--image", type=int, default=32, help="image size, e.g. 32 or 224 (default 32)")
    p.add_argument("--repeats", type=int, default=50, help="timed inferences per measurement (default 50)")
    p.add_argument("--warmup", type=int, default=10, help="untimed inferences first (default 10)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads per unit (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, image and KaHyPar (default 0)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds without progress before a unit counts as hung (default 60)")
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                   help="skip the whole-network inferences (alone, then on every unit at once) run between "
                        "the placed ones (placed rows then do about a third of the compute), but measured rows "
                        "get no simulator error")
    p.add_argument("--simulate-units", default="", help="also simulate these unit counts, e.g. 4,6,8,10")
    p.add_argument("--bandwidth-mbit", type=float, help="simulate a network of this bandwidth (Mbit/s) "
                   "instead of the measured loopback transfer model")
    p.add_argument("--latency-ms", type=float, default=0.5, help="one-way message latency with --bandwidth-mbit (default 0.5)")
    p.add_argument("--master", metavar="HOST:PORT", help="units on several machines: address of unit 0 "
                   "(run the same command with --rank 0..N-1 on each machine)")
    p.add_argument("--rank", type=int, help="this machine's unit with --master")
    add_compile_options(p, skip=("image_size",))
    p.set_defaults(func=run)


def _options(args):
    from ..placement.assign import PLACEMENTS
    from ..placement.measure import LatencyOptions
    from ..placement.simulate import TransferModel

    units = tuple(parse_int_list(args.units, "--units"))
    if min(units) < 1:
        raise CnasError(f"--units must be positive, got {args.units}")
    placements = tuple(p.strip() for p in args.placement.split(",") if p.strip())
    bad = [p for p in placements if p not in PLACEMENTS]
    if bad or not placements:
        raise CnasError(f"unknown placement '{bad[0] if bad else ''}'; choose from {', '.join(PLACEMENTS)}")
    transports = tuple(t.strip() for t in args.transport.split(",") if t.strip())
    bad = [t for t in transports if t not in ("gloo", "shm", "nccl")]
    if bad or not transports:
        raise CnasError(f"unknown transport '{bad[0] if bad else ''}'; choose gloo, shm or nccl")
    if "nccl" in transports:
        import torch

        if not torch.cuda.is_available():
            raise CnasError("--transport nccl needs GPUs (one per unit); none found here, use gloo or shm")
    if args.image < 8:
        raise CnasError(f"--image must be at least 8, got {args.image}")
    for flag, value, low, ok in (
        ("--repeats", args.repeats, ">= 1", args.repeats >= 1),
        ("--threads", args.threads, ">= 1", args.threads >= 1),
        ("--warmup", args.warmup, ">= 0", args.warmup >= 0),
        ("--timeout", args.timeout, "> 0", args.timeout > 0),
    ):
        if not ok:
            raise CnasError(f"{flag} must be {low}, got {value}")
    sim_units = tuple(parse_int_list(args.simulate_units, "--simulate-units")) if args.simulate_units else ()
    network = None
    if args.bandwidth_mbit is not None:
        if args.bandwidth_mbit <= 0 or args.latency_ms < 0:
            raise CnasError("--bandwidth-mbit must be > 0 and --latency-ms >= 0")
        network = TransferModel.network(bandwidth_mbit=args.bandwidth_mbit, latency_ms=args.latency_ms)
    return LatencyOptions(units=units, placements=placements, transports=transports, threads=args.threads,
                          repeats=args.repeats, warmup=args.warmup, seed=args.seed, timeout_s=args.timeout,
                          simulate_units=sim_units, network=network, calibrate=args.calibrate)


def _previous(out):
    """The rows a latency table already holds (none if there is no table yet)."""
    import pandas as pd

    from ..rundir import read_table

    if not out.exists():
        return pd.DataFrame()
    return read_table(out.parent, out.name, made_by="cnas latency")


def _scored_parts(run_dir, arch_id: int):
    """units -> the best partition of a scored run (None where it has none)."""
    from ..rundir import load_parquet

    path = run_dir / "scores.parquet" if run_dir is not None else None
    if path is None or not path.exists():
        return lambda units: None
    try:
        table = load_parquet(path, columns=["arch_id", "units", "best", "parts"])
    except Exception:
        return lambda units: None
    mine = table[(table["arch_id"] == arch_id) & table["best"]]

    def parts(units):
        rows = mine[mine["units"] == units]
        return None if rows.empty else list(rows.iloc[0]["parts"])

    return parts


def run(args) -> int:
    import dataclasses
    from pathlib import Path

    import pandas as pd

    from ..placement.distributed import probe_transfers
    from ..placement.measure import KEY, measure_architecture
    from ..rundir import load_architectures, write_table
    from .common import compile_settings_from_args
    from .common import progress_bar

    options = _options(args)
    settings = compile_settings_from_args(args, image_size=args.image)
    ids = parse_int_list(args.ids, "--ids") if args.ids else None
    if args.master or args.rank is not None:
        return _remote(args, options, settings, ids)
    archs = load_architectures(args.source, ids)
    source = Path(args.source)
    run_dir = source if source.is_dir() else None
    out = (run_dir / LATENCY) if run_dir else source.with_suffix(".latency.parquet")
    table = _previous(out)
    existing = {}
    if not table.empty:
        for rec in table.to_dict("records"):
            existing[tuple(rec[k] for k in KEY)] = rec
    rows = table.to_dict("records") if not table.empty else []

    def emit(row):
        rows.append(row)
        write_table(pd.DataFrame(rows), out)  # after every row: an interruption loses nothing

    models: dict = {}

    def transfer_model(transport):
        # Probed once per invocation, and only when a row needs it (a resumed run may not).
        if transport == "nccl":
            return None
        if transport not in models:
            models[transport], _ = probe_transfers(transport, timeout_s=options.timeout_s)
        return models[transport]

    with progress_bar(len(archs), "latency", unit="arch") as bar:
        for arch_id, generator, dag in archs:
            measure_architecture(
                arch_id, generator, dag, settings, options, done=set(existing), existing=existing,
                emit=emit, transfer_model=transfer_model, parts=_scored_parts(run_dir, arch_id),
                progress=bar.set_postfix_str,
            )
            bar.update(1)
    _print_summary(pd.DataFrame(rows), out)
    return 0


def _print_summary(table, out) -> None:
    if table.empty:
        print(f"{out}: no rows")
        return
    cols = ["arch_id", "generator", "units", "placement", "transport", "threads", "source", "load_avg",
            "median_ms", "p10_ms", "p90_ms", "speedup", "speedup_same_cores", "messages", "sim_error"]
    cols = [c for c in cols if c in table.columns]
    with __import__("pandas").option_context("display.width", 200, "display.max_rows", 200):
        print(table[cols].round(3).to_string(index=False))
    print(f"wrote {out} ({len(table)} rows)")


def _remote(args, options, settings, ids) -> int:
    """One unit of a multi-machine run: ``--master HOST:PORT --rank R``."""
    from ..placement.assign import make_assignment
    from ..placement.distributed import check_port, make_config
    from ..placement.plan import build_plan
    from ..placement.worker import run_unit
    from pathlib import Path

    import pandas as pd

    from ..placement.measure import measured_row, summarize
    from ..rundir import load_architectures, write_table

    if not args.master or args.rank is None:
        raise CnasError("--master HOST:PORT and --rank R go together (one process per machine)")
    units = max(options.units)
    if not 0 <= args.rank < units:
        raise CnasError(f"--rank must be in 0..{units - 1} for --units {args.units}")
    if "shm" in options.transports:
        raise CnasError("--transport shm only works for units on one host; use gloo with --master")
    host, _, port = args.master.rpartition(":")
    if not port.isdigit():
        raise CnasError(f"--master expects HOST:PORT, got '{args.master}'")
    if args.rank == 0:
        check_port(host or "127.0.0.1", int(port))
    placement = options.placements[0]
    archs = load_architectures(args.source, ids)
    source = Path(args.source)
    # Unit 0 adds its rows to the run's table; baselines come from a local `cnas latency`.
    out = source / LATENCY if source.is_dir() and args.rank == 0 else None
    rows = []
    for arch_id, generator, dag in archs:
        assignment = make_assignment(dag, units, placement, settings=settings, seed=options.seed)
        plan = build_plan(dag, assignment, units)
        cfg = make_config(dag, settings, plan, transport=options.transports[0], threads=options.threads,
                          repeats=options.repeats, warmup=options.warmup, seed=options.seed,
                          timeout_s=options.timeout_s, master=args.master)
        try:
            result = run_unit(args.rank, cfg)
        except CnasError:
            raise
        except Exception as exc:  # a peer vanished, timed out or disagrees: one line, exit 2
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise CnasError(
                f"unit {args.rank} failed on architecture {arch_id}: {type(exc).__name__}: {first}; "
                f"check that every unit runs the same command and reaches {args.master}"
            ) from None
        if result is not None:
            s = summarize(result["latency_s"])
            row = measured_row(result, arch_id=arch_id, generator=generator,
                               nodes=int(dag.graph.get("nodes", dag.number_of_nodes() - 2)), units=units,
                               placement=placement, transport=options.transports[0], threads=options.threads,
                               image_size=settings.image_size, repeats=options.repeats)
            row.update(master=args.master, baseline=None, single_unit_ms=None, speedup=None)
            rows.append(row)
            if out is not None:
                old = _previous(out)
                write_table(pd.concat([old, pd.DataFrame([row])], ignore_index=True), out)
            print(f"arch {arch_id} ({generator}) on {units} units, {placement}: median {s['median_ms']:.2f} ms "
                  f"(p10 {s['p10_ms']:.2f}, p90 {s['p90_ms']:.2f}); output equals single-process output",
                  file=sys.stdout)
    return 0
