"""``cnas score``: concurrency scores of a run (or of one JSON graph) with KaHyPar."""

from __future__ import annotations

import json
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import CnasError
from .common import parse_float_list, parse_int_list, progress_bar

SCORES = "scores.parquet"
FAILURES = "score_failures.parquet"
SIDECAR = "scores.json"
PARTIAL = ".scores-partial"


def register(sub) -> None:
    p = sub.add_parser(
        "score",
        help="concurrency score of every architecture (KaHyPar hypergraph partitioning)",
        description="Partition every architecture of RUN over n units for several imbalance bounds "
        "and write RUN/scores.parquet (one row per architecture, units and eps). RUN may also be a "
        "networkx node-link JSON graph file. Interrupted runs resume where they stopped.",
    )
    p.add_argument("source", nargs="?", metavar="RUN", help="run directory or node-link JSON graph (default: newest run in ./runs)")
    p.add_argument("--units", default="4,6,8,10", help="unit counts n (default 4,6,8,10)")
    p.add_argument("--eps", default="0.03,0.1,0.2,0.3,0.5", help="KaHyPar imbalance bounds (default 0.03,0.1,0.2,0.3,0.5)")
    p.add_argument("--a", type=float, default=1.0, help="exponent of delta_w in CS (default 1)")
    p.add_argument("--b", type=float, default=1.5, help="exponent of Lambda' in CS (default 1.5)")
    p.add_argument("--c", type=float, default=1.0, help="exponent of eta in CS (default 1)")
    p.add_argument("--costs", choices=["flops", "uniform"], default="flops",
                   help="vertex weight = FLOPs and hyperedge cost = output bytes (default), or all 1")
    p.add_argument("--preset", choices=["fast", "quality"], default="fast",
                   help="KaHyPar configuration: fast (coarsening to 3k vertices, 1 initial partitioning run; default) or quality (the stock sea20: 20 runs)")
    p.add_argument("--seed", type=int, default=0, help="KaHyPar seed (default 0)")
    p.add_argument("--unit-bytes", type=float, help="U_c in bytes for Lambda' (default: the stem feature map)")
    p.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://host:8786 (needs the distributed extra)")
    p.add_argument("--chunk-size", type=int, default=20, help="architectures per checkpointed task (default 20)")
    p.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                   help="seconds one architecture may take before its worker is taken for hung and stopped; "
                   "the architecture is then listed as failed and the run goes on (default 300, 0: never)")
    p.add_argument("--image-size", type=int, help="compile setting: input image size (default 32)")
    p.add_argument("--stem-channels", type=int, help="compile setting: stem channels (default 32)")
    p.add_argument("--channel-cap", type=int, help="compile setting: channel cap (default 256)")
    p.add_argument("--staging", choices=["uniform", "greedy", "probabilistic"], help="compile setting: staging mode (default probabilistic)")
    p.add_argument("--staging-seed", type=int, help="compile setting: seed of probabilistic staging (default 0)")
    p.add_argument("--out", help="for a JSON graph: also write its scores to this .parquet file")
    p.add_argument("--force", action="store_true", help="replace RUN/scores.parquet made with other settings")
    p.add_argument("--format", choices=["table", "json"], default="table", help="summary as a text table (default) or JSON")
    p.set_defaults(func=run)


def _settings(args):
    overrides = {
        k: getattr(args, k)
        for k in ("image_size", "stem_channels", "channel_cap", "staging", "staging_seed")
        if getattr(args, k) is not None
    }
    if args.costs == "uniform":
        if overrides:
            raise CnasError("compile settings (--staging, --image-size, ...) only apply with --costs flops")
        return None
    from ..shapes import CompileSettings

    try:
        return CompileSettings(**overrides)
    except TypeError as exc:
        raise CnasError(f"bad compile setting: {exc}") from None


def _newest_run() -> Path:
    runs = [p for p in Path("runs").glob("*") if (p / "architectures.parquet").exists()] if Path("runs").is_dir() else []
    if not runs:
        raise CnasError("no RUN given and no run in ./runs; create one with `cnas sample --gen dp`")
    newest = max(runs, key=lambda p: (p / "architectures.parquet").stat().st_mtime)
    print(f"cnas score: scoring the newest run, {newest}", file=sys.stderr)
    return newest


@contextmanager
def _terminate_as_interrupt():
    """A kill (SIGTERM) stops like Ctrl-C: workers stopped, finished chunks kept."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. called from a notebook thread)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def summarize(table):
    """Median and interquartile range of the best CS per generator, size and unit count."""
    import pandas as pd

    best = table[table["best"]]
    if best.empty:
        return pd.DataFrame(columns=["generator", "nodes", "units", "archs", "cs_median", "cs_q25", "cs_q75", "cs_iqr"])
    g = best.groupby(["generator", "nodes", "units"], sort=True)
    out = g["cs"].agg(
        archs="count",
        cs_median="median",
        cs_q25=lambda s: s.quantile(0.25),
        cs_q75=lambda s: s.quantile(0.75),
    ).reset_index()
    out["cs_iqr"] = out["cs_q75"] - out["cs_q25"]
    extra = g.agg(eta_median=("eta", "median"), comm_norm_median=("comm_norm", "median"),
                  delta_w_median=("delta_w", "median"), entropy_median=("entropy", "median")).reset_index(drop=True)
    return pd.concat([out, extra], axis=1)


def run(args) -> int:
    from ..dag import width_profile
    from ..rundir import load_architectures, load_parquet, read_architectures, write_json, write_table
    from ..scoring.runner import ScoreConfig, architecture_records, dag_record, fingerprint, run_scoring

    units = parse_int_list(args.units, "--units")
    eps = parse_float_list(args.eps, "--eps")
    if args.workers is not None and args.workers < 1:
        raise CnasError(f"--workers must be at least 1, got {args.workers}")
    if args.chunk_size < 1:
        raise CnasError(f"--chunk-size must be at least 1, got {args.chunk_size}")
    if not args.timeout >= 0 or args.timeout == float("inf"):
        raise CnasError(f"--timeout must be a number of seconds >= 0 (0: never), got {args.timeout}")
    source = Path(args.source) if args.source else _newest_run()
    is_graph = source.is_file() or source.suffix == ".json"
    config = ScoreConfig(
        units=tuple(units), eps=tuple(eps), costs=args.costs, a=args.a, b=args.b, c=args.c,
        seed=args.seed, preset=args.preset, unit_bytes=args.unit_bytes, settings=_settings(args),
        chunk=args.chunk_size,
    )
    # Check units/eps against the smallest architecture before starting any worker.
    from ..scoring.partition import check_units_eps

    if is_graph:
        (arch_id, generator, dag), = load_architectures(source)
        records = [dag_record(arch_id, generator, dag)]
        min_vertices = dag.number_of_nodes()
        profiles = {arch_id: width_profile(dag)}
    else:
        table = read_architectures(source)
        records = architecture_records(table)
        min_vertices = int(table["vertices"].min())
        profiles = None
    for k in units:
        for e in eps:
            check_units_eps(k, e, min_vertices)
    if args.out and not is_graph:
        raise CnasError("--out is for a JSON graph; a run's scores go to RUN/scores.parquet")

    fp = fingerprint(records, config)
    started = time.perf_counter()
    if is_graph:
        outcome = run_scoring(records, config, workers=1, scheduler=args.scheduler, timeout=args.timeout)
        result = outcome.table
        if args.out:
            write_table(result.drop(columns=["error"]), args.out)
        return _report(args, source, result, config, None, profiles, time.perf_counter() - started)

    scores_path, sidecar_path = source / SCORES, source / SIDECAR
    previous = _read_sidecar(sidecar_path)
    if scores_path.exists() and not args.force:
        if previous.get("fingerprint") == fp:
            kept = load_parquet(scores_path)
            print(f"{scores_path} is up to date (same architectures and settings); nothing to do", file=sys.stderr)
            return _report(args, source, kept.assign(error=None), config, scores_path, None, 0.0, cached=True)
        raise CnasError(
            f"{scores_path} holds scores made with other settings; pass --force to replace it"
        )
    partial = source / PARTIAL / fp
    with _terminate_as_interrupt(), progress_bar(len(records), f"score {source.name}", unit="arch") as bar:
        outcome = run_scoring(
            records, config, workers=args.workers, scheduler=args.scheduler,
            checkpoint_dir=partial, progress=bar.update, timeout=args.timeout,
        )
    result = outcome.table
    failed = result[result["error"].notna()]
    write_table(result[result["error"].isna()].drop(columns=["error"]).reset_index(drop=True), scores_path)
    failures_path = source / FAILURES
    if len(failed):
        write_table(failed[["arch_id", "generator", "nodes", "error"]].reset_index(drop=True), failures_path)
    else:
        failures_path.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    write_json(
        {
            "fingerprint": fp,
            "settings": config.describe(),
            "architectures": len(records),
            "failed": len(failed),
            "rows": int(result["error"].isna().sum()),
            "chunks": outcome.chunks_total,
            "chunks_resumed": outcome.chunks_resumed,
            "seconds_this_call": round(seconds, 2),
            "scheduler": args.scheduler or f"local processes ({args.workers or 'all cores'})",
            "unit_bytes_note": "U_c: bytes of the stem feature map (image_size^2 * stem_channels * bytes_per_element); 1 for uniform costs",
        },
        sidecar_path,
    )
    # Every chunk is in scores.parquet now; the checkpoints are no longer needed.
    import shutil

    shutil.rmtree(partial, ignore_errors=True)
    try:
        (source / PARTIAL).rmdir()
    except OSError:
        pass
    return _report(args, source, result, config, scores_path, None, seconds, resumed=outcome.chunks_resumed)


def _read_sidecar(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}  # no or damaged sidecar: the scores cannot be trusted as up to date


def _report(args, source, result, config, path, profiles, seconds, *, cached=False, resumed=0) -> int:
    ok = result[result["error"].isna()]
    failed = result[result["error"].notna()]
    summary = summarize(ok)
    unit_bytes = config.describe()["unit_bytes"]
    if args.format == "json":
        payload = {
            "source": str(source),
            "table": str(path) if path else (args.out or None),
            "unit_bytes": unit_bytes,
            "settings": config.describe(),
            "summary": summary.to_dict(orient="records"),
            "failures": failed[["arch_id", "generator", "error"]].to_dict(orient="records"),
        }
        if profiles is not None:
            rows = ok.drop(columns=["error"]).to_dict(orient="records")
            payload["scores"] = rows
            payload["width_profile"] = next(iter(profiles.values()))
        print(json.dumps(payload, indent=2, default=_json_default))
    else:
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(
                summary[["generator", "nodes", "units", "archs", "cs_median", "cs_q25", "cs_q75", "cs_iqr"]].to_string(
                    index=False, float_format=lambda v: f"{v:.3f}"
                )
            )
        where = f" -> {path}" if path else ""
        note = " (cached)" if cached else (f", {resumed} chunks resumed" if resumed else "")
        print(
            f"{source}: {ok['arch_id'].nunique()} architectures scored on units {list(config.units)} x eps "
            f"{list(config.eps)}, U_c = {unit_bytes:g} B, {seconds:.1f} s{note}{where}"
        )
    for row in failed.itertuples(index=False):
        print(f"cnas: warning: architecture {row.arch_id} ({row.generator}) not scored: {row.error}", file=sys.stderr)
    if len(failed) and path is not None:
        print(f"cnas: warning: {len(failed)} architecture(s) failed; listed in {Path(source) / FAILURES}", file=sys.stderr)
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
