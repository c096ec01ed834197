"""``cnas report``: the paper's figures and a summary.md from one or more runs."""

from __future__ import annotations

from .common import add_deprecated_aliases, parse_int_list, progress_bar


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="draw the paper's figures (PNG + SVG) and summary.md from scored runs",
        description=(
            "Draw Fig. 9, 7, 12, 10 and 11 from runs with scores.parquet, Fig. 8/13 when a run "
            "has latency.parquet and Fig. 2 when it has accuracy.parquet; figures whose data is "
            "missing are skipped with a note in summary.md."
        ),
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (made by `cnas sample`, scored by `cnas score`)")
    p.add_argument("--out-dir", dest="out", help="output directory (default RUN/report for the first RUN)")
    p.add_argument("--arch", type=int, help="architecture of the first RUN drawn in Fig. 11 (default: its lowest id)")
    p.add_argument("--draw-units", default="2,4,8", help="unit counts drawn in Fig. 11 (default 2,4,8)")
    p.add_argument("--figure-formats", dest="format", default="png,svg", help="figure formats: png, svg, pdf (default png,svg)")
    p.add_argument("--force", action="store_true", help="replace an existing --out-dir")
    add_deprecated_aliases(p, {"--out": "--out-dir", "--format": "--figure-formats"})
    p.set_defaults(func=run)


def run(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from ..analysis.report import FIGURES, report_runs

    with progress_bar(len(FIGURES), "report", unit="fig") as bar:
        report, out, written = report_runs(
            args.runs, args.out, arch_id=args.arch, draw_units=parse_int_list(args.draw_units, "--draw-units"),
            formats=args.format.split(","), force=args.force, progress=bar.update,
        )
    images = sum(1 for w in written if w.suffix in {".png", ".svg", ".pdf"})
    print(f"{out}: {len(report.figures)} figures ({images} files), summary.md")
    for note in report.notes:
        print(f"  note: {note}")
    return 0
