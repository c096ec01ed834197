"""``cnas report``: collect the tables of one or more runs, draw every figure they support.

Three steps, kept apart so a notebook can use any one of them:

1. :func:`load_runs` reads run directories as :class:`~concurrent_nas.rundir.Run` objects
   (clear errors for a missing, empty or corrupt table, naming the command that makes it);
2. :func:`build_report` turns loaded runs into figures, the tables behind them and notes
   on what was skipped (pure apart from partitioning one architecture for Fig. 11 when
   ``scores.parquet`` lacks a unit count);
3. :func:`write_report` saves PNG + SVG, the tables as CSV and ``summary.md``,
   all-or-nothing (the output directory appears only when everything was written).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import pandas as pd

from .. import dag as dagmod
from .. import rundir
from ..rundir import SCORES, Run, load_run
from ..errors import CnasError
from . import figures as figs
from . import tables as tbl
from .ranking import best_architectures

#: Figure file stems in the order they appear in ``summary.md``.
FIGURES = {
    "fig09_concurrency_score": "Fig. 9: concurrency score per generator x vertices x units",
    "fig07_communication": "Fig. 7: total communication in MB per generator and units",
    "fig12_entropy": "Fig. 12: load-balance quality (normalized entropy) per units",
    "fig10_width_depth": "Fig. 10: width/depth histograms",
    "fig11_partition": "Fig. 11: one architecture coloured by unit",
    "fig08_inference_time": "Fig. 8: inference time normalized to FB",
    "fig13_latency_scaling": "Fig. 13: latency scaling with units",
    "fig02_accuracy": "Fig. 2: accuracy vs concurrency score",
    "search_pareto": "Search: the Pareto front over all trials (`cnas search`)",
}


@dataclass
class Report:
    """Everything a report holds before it is written: figures, tables, notes."""

    figures: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    drawing: dict = field(default_factory=dict)


def load_runs(runs: Sequence[str | Path]) -> list[Run]:
    """:func:`~concurrent_nas.rundir.load_run` for each run; runs with the same directory name keep their path."""
    if not runs:
        raise CnasError("no run given; pass one or more run directories made by `cnas sample` and `cnas score`")
    loaded = [load_run(r) for r in runs]
    names = [r.name for r in loaded]
    for r in loaded:
        if names.count(r.name) > 1:
            r.name = str(r.path)
    if len({r.name for r in loaded}) != len(loaded):
        raise CnasError(f"run {loaded[0].path} is given twice; pass each run once")
    return loaded


def _concat(runs: Sequence[Run], attr: str) -> pd.DataFrame | None:
    frames = [getattr(r, attr).assign(run=r.name) for r in runs if getattr(r, attr) is not None]
    return pd.concat(frames, ignore_index=True) if frames else None


def _drawing_partitions(
    run: Run, arch_id: int, units_list: Sequence[int]
) -> tuple[nx.DiGraph, dict[int, dict[int, int]], dict[int, str], list[str]]:
    """DAG and ``{units: {vertex: part}}`` for Fig. 11, from scores where possible."""
    try:
        dag = run.dag(arch_id)
    except CnasError as exc:
        raise CnasError(f"{exc}; choose --arch") from None
    vertices = sorted(dag)
    best = tbl.best_options(run.scores.assign(run=run.name))
    best = best[best["arch_id"] == arch_id]
    partitions: dict[int, dict[int, int]] = {}
    origin: dict[int, str] = {}
    notes: list[str] = []
    missing = []
    for units in units_list:
        row = best[best["units"] == units]
        if len(row) and "parts" in row.columns and len(row.iloc[0]["parts"]) == len(vertices):
            partitions[units] = dict(zip(vertices, (int(p) for p in row.iloc[0]["parts"])))
            origin[units] = f"scores.parquet (best eps {row.iloc[0]['eps']:g}, CS {row.iloc[0]['cs']:.4g})"
        else:
            missing.append(units)
    if missing:
        from ..scoring import score_architecture

        kwargs = _score_kwargs(run.score_settings)
        scored_eps = sorted(run.scores.loc[run.scores["arch_id"] == arch_id, "eps"].unique())
        if "eps" not in kwargs and scored_eps:
            kwargs["eps"] = [float(e) for e in scored_eps]
        how = "the settings in scores.json" if run.score_settings else "default scoring settings (no scores.json)"
        for units in missing:
            try:
                frame = score_architecture(dag, units=[units], **kwargs)
            except CnasError as exc:
                notes.append(f"Fig. 11: {units} units not drawn ({exc})")
                continue
            chosen = frame[frame["best"]].iloc[0]
            partitions[units] = dict(zip(vertices, (int(p) for p in chosen["parts"])))
            origin[units] = (
                f"score_architecture here with {how} ({units} units are not in "
                f"scores.parquet; best eps {chosen['eps']:g}, CS {chosen['cs']:.4g})"
            )
    return dag, partitions, origin, notes


def _score_kwargs(recorded: dict) -> dict:
    """Keyword arguments of ``score_architecture`` from settings recorded in scores.json."""
    kwargs = {k: recorded[k] for k in ("eps", "costs", "a", "b", "c", "seed", "preset", "unit_bytes") if recorded.get(k) is not None}
    if isinstance(recorded.get("settings"), dict):
        import dataclasses

        from ..shapes import CompileSettings

        known = {f.name for f in dataclasses.fields(CompileSettings)}
        kwargs["settings"] = CompileSettings(**{k: v for k, v in recorded["settings"].items() if k in known})
    return kwargs


def build_report(
    runs: Sequence[Run], *, arch_id: int | None = None, draw_units: Sequence[int] = (2, 4, 8),
    progress=None,
) -> Report:
    """Figures, summary tables and notes for loaded runs.

    Parameters
    ----------
    runs : sequence of Run
        From :func:`load_runs`.
    arch_id : int, optional
        Architecture of the first run drawn in Fig. 11 (default: its lowest id; a
        search's front keeps its trial numbers, so 0 may not be there).
    draw_units : sequence of int, default (2, 4, 8)
        Unit counts drawn in Fig. 11 (partitions from ``scores.parquet`` where it has
        them, otherwise computed with :func:`concurrent_nas.scoring.score_architecture`).
    progress : callable, optional
        Called with 1 after each figure.

    Returns
    -------
    Report
    """
    step = progress or (lambda n: None)
    ids = runs[0].architectures["arch_id"]
    if arch_id is None:
        arch_id = int(ids.min())
    if arch_id not in set(ids):
        raise CnasError(f"{runs[0].path} has no architecture {arch_id} (ids {ids.min()}..{ids.max()}); choose --arch")
    report = Report(runs=list(runs))
    scores = _concat(runs, "scores")
    architectures = _concat(runs, "architectures")
    best = tbl.best_options(scores)
    report.tables["best_architectures"] = best_architectures(runs)

    report.tables["fig09_concurrency_score"] = tbl.cs_summary(best)
    report.figures["fig09_concurrency_score"] = figs.concurrency_score_figure(best)
    step(1)
    report.tables["fig07_communication"] = tbl.communication_summary(best)
    report.figures["fig07_communication"] = figs.communication_figure(best)
    step(1)
    report.tables["fig12_entropy"] = tbl.entropy_summary(best)
    report.figures["fig12_entropy"] = figs.entropy_figure(best)
    step(1)

    from ..generators import generate

    references = {"resnet50 (reference)": generate("resnet50")}
    if "fb" not in set(architectures["generator"]):
        nodes = int(architectures["nodes"].median())
        try:
            references[f"fb, {nodes} vertices (seed 0)"] = generate("fb", nodes=nodes, seed=0)
            report.notes.append(
                f"Fig. 10: no FB run given; drew one FB architecture (`cnas sample --gen fb --nodes {nodes} --seed 0`, index 0) as reference"
            )
        except CnasError as exc:
            # Small runs (e.g. 12 blocks) are below what FB's staged WS can be built at;
            # the figure is still worth drawing without its reference.
            report.notes.append(f"Fig. 10: no FB reference drawn at {nodes} blocks ({exc})")
    ref_rows = pd.DataFrame(
        {
            "generator": [name for name in references],
            "nodes": [dagmod.block_count(d) for d in references.values()],
            "width_profile": [dagmod.width_profile(d) for d in references.values()],
        }
    )
    report.tables["fig10_width_depth"] = pd.concat(
        [tbl.width_depth_summary(architectures), tbl.width_depth_summary(ref_rows)], ignore_index=True
    )
    report.figures["fig10_width_depth"] = figs.width_depth_figure(architectures, references)
    step(1)

    first = runs[0]
    dag, partitions, origin, notes = _drawing_partitions(first, arch_id, draw_units)
    report.notes.extend(notes)
    if partitions:
        gen = dag.graph.get("generator", "?")
        report.figures["fig11_partition"] = figs.partition_figure(
            dag, partitions, f"{gen} architecture {arch_id} of {first.name} over units (paper Fig. 11)"
        )
        report.drawing = {"run": first.name, "arch_id": arch_id, "generator": gen, "origin": origin}
    step(1)

    latency = _concat(runs, "latency")
    if latency is None:
        report.notes.append(
            "Fig. 8 and Fig. 13 skipped: no run has latency.parquet (produce it with `cnas latency RUN`)"
        )
    else:
        normalized = tbl.normalized_latency(latency)
        if normalized.empty:
            report.notes.append(
                "Fig. 8 skipped: latency.parquet has no FB rows to normalise to "
                "(add an FB run: `cnas sample --gen fb`, then `cnas latency`)"
            )
        else:
            report.tables["fig08_inference_time"] = tbl.normalized_latency_summary(normalized)
            report.figures["fig08_inference_time"] = figs.inference_time_figure(normalized)
        scaling = tbl.latency_scaling(latency)
        report.tables["fig13_latency_scaling"] = scaling
        report.figures["fig13_latency_scaling"] = figs.latency_scaling_figure(scaling)
    step(2)

    accuracy = _concat(runs, "accuracy")
    if accuracy is None:
        report.notes.append("Fig. 2 skipped: no run has accuracy.parquet (produce it with `cnas train RUN`)")
    else:
        joined = tbl.accuracy_vs_score(accuracy, best)
        # Reference networks trained beside the run (`cnas train --baseline`) have no score.
        baselines = accuracy[accuracy["generator"].astype(str).str.startswith("baseline-")]
        if joined.empty:
            report.notes.append("Fig. 2 skipped: no trained architecture has a score in scores.parquet")
        else:
            summary = tbl.accuracy_summary(joined)
            if len(baselines):
                extra = baselines.groupby(["dataset", "generator"], as_index=False).agg(
                    architectures=("top1", "size"), median_top1=("top1", "median")
                ).assign(units=0, median_cs=float("nan"))
                summary = pd.concat([summary, extra[summary.columns]], ignore_index=True)
            report.tables["fig02_accuracy"] = summary
            report.figures["fig02_accuracy"] = figs.accuracy_figure(joined, baselines if len(baselines) else None)
    step(1)
    from ..search.outputs import search_figure  # a run that is a search's front/ gets the search drawn

    drawn = [fig for fig in (search_figure(r.path) for r in runs) if fig is not None]
    if drawn:
        report.figures["search_pareto"] = drawn[0]
    return report





_TABLE_NOTES = {
    "fig09_concurrency_score": "CS of the best eps option per architecture and units (lower is better).",
    "fig07_communication": "Lambda (total bytes sent) of the best option, in MB = 10^6 bytes.",
    "fig12_entropy": "Normalized Shannon entropy of part weights of the best option (1 = balanced).",
    "fig10_width_depth": "Depth = depth levels input to output; width = most vertices on one level.",
    "fig08_inference_time": "Each architecture's median latency / median FB latency in the same configuration (nodes, units, placement, transport, threads, image size, source).",
    "fig13_latency_scaling": "Median over architectures of their median latency; every line starts at units 1 = single_unit_ms (measured).",
    "fig02_accuracy": "Top-1 accuracy (%) beside the CS of the best option for each units; baselines (units 0) have no CS.",
}


def summary_markdown(report: Report, written: Sequence[str] = ()) -> str:
    """The text of ``summary.md``: runs, figures, skipped figures and every table."""
    lines = ["# cnas report", "", "## Runs", ""]
    runs = pd.DataFrame(
        [
            {
                "run": r.name,
                "generators": ",".join(tbl.ordered_generators(r.architectures["generator"])),
                "architectures": len(r.architectures),
                "scored": int(r.scores["arch_id"].nunique()),
                "latency rows": 0 if r.latency is None else len(r.latency),
                "accuracy rows": 0 if r.accuracy is None else len(r.accuracy),
                "made by": "`" + str(r.manifest.get("command", "?")) + "`",
            }
            for r in report.runs
        ]
    )
    lines += [tbl.markdown_table(runs), ""]
    if "best_architectures" in report.tables and len(report.tables["best_architectures"]):
        lines += ["## Best architectures", "",
                  "The three lowest concurrency scores of every run and unit count (rank 1 is the best); "
                  "`cnas top RUN --by cs@UNITS -k N` lists more, or ranks by any other column.", "",
                  tbl.markdown_table(report.tables["best_architectures"]), ""]
    lines += ["## Figures", ""]
    for stem, caption in FIGURES.items():
        if stem in report.figures:
            files = [w for w in written if Path(w).stem == stem and not w.startswith("tables/")]
            lines.append(f"- {caption}: " + (", ".join(f"[{Path(f).name}]({Path(f).name})" for f in files) or stem))
    if report.notes:
        lines += ["", "## Skipped or substituted", ""]
        lines += [f"- {note}" for note in report.notes]
    for stem, caption in FIGURES.items():
        if stem == "fig11_partition" and report.drawing:
            lines += ["", f"## {caption}", "",
                      f"Architecture {report.drawing['arch_id']} ({report.drawing['generator']}) of run "
                      f"{report.drawing['run']}; input = common node (grey), output = gather node (black).", ""]
            lines += [f"- {units} units: partition from {src}" for units, src in sorted(report.drawing["origin"].items())]
        if stem in report.tables:
            lines += ["", f"## {caption}", "", _TABLE_NOTES.get(stem, ""), "", tbl.markdown_table(report.tables[stem])]
    return "\n".join(lines) + "\n"


_CLIP_ID = re.compile(r"\bp[0-9a-f]{10}\b")


def stable_svg_ids(svg: str) -> str:
    """Rename matplotlib's clip-path ids in order of appearance.

    Matplotlib derives them from a hash that, for some artists (networkx's arrows),
    includes object addresses, so the same figure would differ byte for byte from run to
    run.
    """
    names: dict[str, str] = {}
    return _CLIP_ID.sub(lambda m: names.setdefault(m.group(0), f"clip{len(names)}"), svg)


def check_formats(formats: Sequence[str]) -> None:
    """Raise a one-line :class:`CnasError` unless every format is png, svg or pdf."""
    bad = sorted(set(formats) - {"png", "svg", "pdf"})
    if bad or not formats:
        raise CnasError(f"--format accepts png, svg, pdf; got '{','.join(formats)}'")


def write_report(
    report: Report, out: str | Path, *, formats: Sequence[str] = ("png", "svg"), force: bool = False,
    dpi: int = 150,
) -> list[Path]:
    """Write figures, CSV tables and ``summary.md`` into ``out`` (created all at once).

    Returns
    -------
    list of pathlib.Path
        Every file written, under its final name.
    """
    import matplotlib

    check_formats(formats)
    out = Path(out)
    written: list[str] = []
    with rundir.new_run_dir(out, force=force) as tmp:
        # A fixed hash salt and no date make SVG output identical from run to run.
        with matplotlib.rc_context({"svg.hashsalt": "concurrent-nas", "svg.fonttype": "path"}):
            for stem, fig in report.figures.items():
                for fmt in formats:
                    if fmt == "svg":
                        buffer = io.StringIO()
                        fig.savefig(buffer, format="svg", metadata={"Date": None})
                        (tmp / f"{stem}.svg").write_text(stable_svg_ids(buffer.getvalue()))
                    else:
                        metadata = {"CreationDate": None} if fmt == "pdf" else None
                        fig.savefig(tmp / f"{stem}.{fmt}", format=fmt, dpi=dpi, metadata=metadata)
                    written.append(f"{stem}.{fmt}")
        (tmp / "tables").mkdir()
        for stem, frame in report.tables.items():
            frame.to_csv(tmp / "tables" / f"{stem}.csv", index=False)
            written.append(f"tables/{stem}.csv")
        (tmp / "summary.md").write_text(summary_markdown(report, written))
        written.append("summary.md")
    return [out / w for w in written]


def report_runs(
    runs: Sequence[str | Path],
    out: str | Path | None = None,
    *,
    arch_id: int | None = None,
    draw_units: Sequence[int] = (2, 4, 8),
    formats: Sequence[str] = ("png", "svg"),
    force: bool = False,
    progress=None,
) -> tuple[Report, Path, list[Path]]:
    """What ``cnas report`` does: load runs, build every figure they support, write them.

    Parameters
    ----------
    runs : sequence of str or Path
        Scored run directories.
    out : str or Path, optional
        Output directory (default ``RUN/report`` of the first run); replaced only with
        ``force``.
    arch_id, draw_units, progress
        As for :func:`build_report`.
    formats : sequence of str
        Figure formats among png, svg, pdf.

    Returns
    -------
    (Report, Path, list of Path)
        The report, its directory and the files written.
    """
    draw_units = list(draw_units)
    if not draw_units or min(draw_units) < 2:
        raise CnasError(f"--draw-units needs unit counts of at least 2, got {','.join(map(str, draw_units))}")
    formats = [f.strip().lower() for f in formats if f.strip()]
    check_formats(formats)
    out = Path(out) if out else Path(str(runs[0]).rstrip("/")) / "report" if runs else None
    loaded = load_runs(runs)  # checks every run before anything is drawn
    report = build_report(loaded, arch_id=arch_id, draw_units=draw_units, progress=progress)
    return report, out, write_report(report, out, formats=formats, force=force)
