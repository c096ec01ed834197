"""``cnas score``: concurrency scores of a run (or of one JSON graph) with KaHyPar."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import CnasError
from ..rundir import ARCHITECTURES, SCORE_FAILURES
from .common import (
    add_compile_options,
    add_deprecated_aliases,
    add_options,
    compile_settings_from_args,
    options_from_args,
    options_given,
    progress_bar,
)


def register(sub) -> None:
    from ..scoring import DEFAULT_TIMEOUT, PRESETS, ScoreConfig
    from ..scoring.hypergraph import COSTS
    from .common import field_help

    p = sub.add_parser(
        "score",
        help="concurrency score of every architecture (KaHyPar hypergraph partitioning)",
        description="Partition every architecture of RUN over n units for several imbalance bounds "
        "and write RUN/scores.parquet (one row per architecture, units and eps). RUN may also be a "
        "networkx node-link JSON graph file. Interrupted runs resume where they stopped.",
    )
    p.add_argument("source", nargs="?", metavar="RUN", help="run directory or node-link JSON graph (default: newest run in ./runs)")
    add_options(p, ScoreConfig, skip=("settings", "unit_bytes"), flags={"chunk": "--chunk-size", "seed": "--partition-seed"},
                choices={"costs": COSTS, "preset": PRESETS})
    # By hand, with the field's help: a None default gives add_options no type to take.
    p.add_argument("--unit-bytes", type=float, help=field_help(ScoreConfig)["unit_bytes"])
    p.add_argument("--processes", dest="workers", type=int, help="local worker processes (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://host:8786 (needs the distributed extra)")
    p.add_argument("--arch-timeout", dest="timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help="seconds one architecture may take before its worker is taken for hung and stopped; "
                   f"the architecture is then listed as failed and the run goes on (default {DEFAULT_TIMEOUT:g}, 0: never)")
    p.add_argument("--out", help="for a JSON graph: also write its scores to this .parquet file")
    p.add_argument("--force", action="store_true", help="replace RUN/scores.parquet made with other settings, or an existing --out file")
    p.add_argument("--summary", dest="format", choices=["table", "json"], default="table", help="summary printed as a text table (default) or JSON")
    p.add_argument("--profile", metavar="NAME|FILE",
                   help="also predict latency on this device profile (shipped: paper, edge, multicore; or a TOML file from "
                   "`cnas profile`) into RUN/predicted.parquet: pred_latency_ms, pred_speedup, cp_bound, placement")
    add_compile_options(p)
    add_deprecated_aliases(p, {"--seed": "--partition-seed", "--workers": "--processes",
                               "--timeout": "--arch-timeout", "--format": "--summary"})
    p.set_defaults(func=run)


def _config(args):
    from ..scoring import ScoreConfig
    from ..shapes import CompileSettings

    if options_given(args, CompileSettings) and args.costs == "uniform":
        raise CnasError("compile settings (--staging, --image-size, ...) only apply with --costs flops")
    settings = compile_settings_from_args(args) if args.costs != "uniform" else None
    return options_from_args(args, ScoreConfig, settings=settings, unit_bytes=args.unit_bytes)


def _newest_run() -> Path:
    runs = [p for p in Path("runs").glob("*") if (p / ARCHITECTURES).exists()] if Path("runs").is_dir() else []
    if not runs:
        raise CnasError("no RUN given and no run in ./runs; create one with `cnas sample --gen dp`")
    newest = max(runs, key=lambda p: (p / ARCHITECTURES).stat().st_mtime)
    print(f"cnas score: scoring the newest run, {newest}", file=sys.stderr)
    return newest


def run(args) -> int:
    from ..rundir import Run
    from ..scoring import score_graph, score_run

    config = _config(args)
    profile = _profile(args, config)
    source = Path(args.source) if args.source else _newest_run()
    if source.is_file() or source.suffix == ".json":
        result = score_graph(source, config, out=args.out, scheduler=args.scheduler, timeout=args.timeout,
                             force=args.force)
    else:
        if args.out:
            raise CnasError("--out is for a JSON graph; a run's scores go to RUN/scores.parquet")
        run_dir = Run(source)
        with progress_bar(len(run_dir.architectures), f"score {source.name}", unit="arch") as bar:
            result = score_run(run_dir, config, workers=args.workers, scheduler=args.scheduler,
                               timeout=args.timeout, force=args.force, progress=bar.update)
        if result.cached:
            print(f"{result.path} is up to date (same architectures and settings); nothing to do", file=sys.stderr)
    code = _report(args, result)
    if profile is not None:
        _predict(args, source, result, profile)
    return code


def _profile(args, config):
    """The --profile, loaded and checked against --units before anything is scored or written."""
    if not args.profile:
        return None
    from ..predict import load_profile

    profile = load_profile(args.profile)
    profile.check_units(max(config.units))
    return profile


def _predict(args, source, result, profile) -> None:
    from ..predict.run import predict_scores

    table = predict_scores(source, result.table, profile, settings=result.config.settings, workers=args.workers)
    if table.empty:
        return
    summary = table.groupby(["generator", "units"])[["pred_speedup", "cp_bound"]].median().reset_index()
    if args.format == "json":
        print(json.dumps({"profile": profile.name, "predicted": summary.to_dict(orient="records")}, default=_json_default))
        return
    print(f"predicted on profile '{profile.name}' (medians; rows in {source}"
          f"{'/predicted.parquet' if source.is_dir() else ''}):")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def _uc_text(settings: dict) -> str:
    """U_c as the summary line states it: bytes, or the per-architecture rule."""
    if settings["unit_bytes"] is None:
        return "smallest edge of each architecture"
    return f"{settings['unit_bytes']:g} B"


def _report(args, result) -> int:
    """Print the summary (text table or JSON) and a warning per failed architecture."""
    summary = result.summary()
    settings = result.config.describe()
    if args.format == "json":
        payload = {
            "source": str(result.source),
            "table": str(result.path) if result.path else None,
            "unit_bytes": settings["unit_bytes"],
            "settings": settings,
            "summary": summary.to_dict(orient="records"),
            "failures": result.failures[["arch_id", "generator", "error"]].to_dict(orient="records"),
        }
        if result.width_profile is not None:
            payload["scores"] = result.table.to_dict(orient="records")
            payload["width_profile"] = result.width_profile
        print(json.dumps(payload, indent=2, default=_json_default))
    else:
        import pandas as pd

        from ..scoring.experiment import SUMMARY_COLUMNS

        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(summary[SUMMARY_COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        where = f" -> {result.path}" if result.path else ""
        note = " (cached)" if result.cached else (f", {result.chunks_resumed} chunks resumed" if result.chunks_resumed else "")
        print(
            f"{result.source}: {result.table['arch_id'].nunique()} architectures scored on units "
            f"{list(result.config.units)} x eps {list(result.config.eps)}, U_c = {_uc_text(settings)}, "
            f"{result.seconds:.1f} s{note}{where}"
        )
    if result.cached:
        return 0  # its failures were reported when it was computed
    for row in result.failures.itertuples(index=False):
        print(f"cnas: warning: architecture {row.arch_id} ({row.generator}) not scored: {row.error}", file=sys.stderr)
    if len(result.failures) and result.width_profile is None:
        print(f"cnas: warning: {len(result.failures)} architecture(s) failed; listed in "
              f"{result.source / SCORE_FAILURES}", file=sys.stderr)
    return 0


def _json_default(value):
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or value is getattr(__import__("pandas"), "NA", None):
        return None
    return str(value)
