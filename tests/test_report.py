"""cnas report, the analysis tables and figures, and the width/depth notebook."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import concurrent_nas as cnas
from concurrent_nas import dag as dagmod
from concurrent_nas.analysis import figures, tables
from concurrent_nas.analysis.report import build_report, load_runs
from concurrent_nas.cli.main import main
from concurrent_nas.rundir import load_parquet

CORE = ["fig09_concurrency_score", "fig07_communication", "fig12_entropy", "fig10_width_depth", "fig11_partition"]
OPTIONAL = ["fig08_inference_time", "fig13_latency_scaling", "fig02_accuracy"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scored_runs(tmp_path_factory):
    """Three small real runs (DP, ER, FB; 8 architectures of 20 blocks) scored by `cnas score`."""
    root = tmp_path_factory.mktemp("report-runs")
    runs = []
    for gen in ("dp", "er", "fb"):
        out = root / f"{gen}20"
        assert main(["sample", "--gen", gen, "--n", "8", "--nodes", "20", "--seed", "3", "--out-dir", str(out)]) == 0
        assert main(["score", str(out), "--units", "4,6", "--eps", "0.1,0.3", "--processes", "1"]) == 0
        runs.append(out)
    return runs


@pytest.fixture(scope="module")
def report_dir(scored_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "rep"
    assert main(["report", *map(str, scored_runs), "--out-dir", str(out)]) == 0
    return out


def assert_real_image(path: Path) -> None:
    """A PNG that opens, has a sensible size and is not blank."""
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert 500 <= img.width <= 4000 and 300 <= img.height <= 4000, img.size
        pixels = np.asarray(img.convert("L"), dtype=float)
    # A blank or single-colour canvas has (near) zero variance; drawn axes, boxes and
    # text give a large one.
    assert pixels.std() > 10
    assert (pixels < 128).mean() > 0.005


def assert_real_svg(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert sum(1 for el in root.iter() if el.tag.endswith("path")) > 20


def parse_markdown_table(text: str, heading: str) -> pd.DataFrame:
    """The first markdown table after ``## heading`` in ``text`` (cells as strings)."""
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    return pd.DataFrame(rows[2:], columns=rows[0])


def test_report_writes_every_figure_its_data_supports(report_dir):
    for stem in CORE:
        assert_real_image(report_dir / f"{stem}.png")
        assert_real_svg(report_dir / f"{stem}.svg")
    for stem in OPTIONAL:
        assert not list(report_dir.glob(f"{stem}.*")), stem
    summary = (report_dir / "summary.md").read_text()
    # Missing data is named with the command that makes it, never drawn.
    assert "no run has latency.parquet" in summary and "cnas latency" in summary
    assert "no run has accuracy.parquet" in summary and "cnas train" in summary


def test_summary_numbers_match_the_tables(report_dir, scored_runs):
    summary = (report_dir / "summary.md").read_text()
    scores = pd.concat([load_parquet(r / "scores.parquet") for r in scored_runs], ignore_index=True)
    best = scores[scores["best"]]
    expected = best.groupby(["generator", "units"]).agg(
        cs=("cs", "median"), mb=("comm_bytes", "median"), h=("entropy", "median"), n=("cs", "size")
    )
    cs = parse_markdown_table(summary, "Fig. 9")
    mb = parse_markdown_table(summary, "Fig. 7")
    ent = parse_markdown_table(summary, "Fig. 12")
    assert len(cs) == len(expected) == 6
    for frame, column, scale in ((cs, "cs", 1), (mb, "mb", 1e6), (ent, "h", 1)):
        for row in frame.itertuples(index=False):
            want = expected.loc[(row.generator, int(row.units))]
            assert int(row.architectures) == want["n"] == 8
            assert float(row.median) == pytest.approx(want[column] / scale, rel=1e-4)
    widths = parse_markdown_table(summary, "Fig. 10")
    for run in scored_runs:
        arch = load_parquet(run / "architectures.parquet")
        row = widths[widths["generator"] == arch["generator"].iloc[0]].iloc[0]
        assert float(row.median_depth) == arch["width_profile"].map(len).median()
        assert float(row.median_max_width) == arch["width_profile"].map(max).median()
    assert (widths["generator"] == "resnet50 (reference)").any()
    # The CSV beside the figures holds the same numbers at full precision.
    csv = pd.read_csv(report_dir / "tables" / "fig09_concurrency_score.csv")
    for row in csv.itertuples(index=False):
        assert row.median == pytest.approx(expected.loc[(row.generator, row.units), "cs"], rel=1e-12)


def test_generators_keep_their_colour_across_figures(scored_runs):
    report = build_report(load_runs(scored_runs))
    fig = report.figures["fig09_concurrency_score"]
    legend = {t.get_text(): h.get_facecolor() for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles)}
    assert set(legend) == {"dp", "er", "fb"}
    from matplotlib.colors import to_rgba

    for gen, colour in legend.items():
        assert colour == to_rgba(figures.generator_color(gen))
    colours = {figures.generator_color(g) for g in ("er", "ba", "ws", "dp", "fb", "chain", "resnet50")}
    assert len(colours) == 7
    # Box faces in the CS figure use the same palette.
    faces = {tuple(p.get_facecolor()) for ax in fig.axes for p in ax.patches}
    assert faces <= {to_rgba(figures.generator_color(g)) for g in legend}


def test_partition_drawing_uses_scores_and_fills_missing_unit_counts(scored_runs):
    report = build_report(load_runs(scored_runs[:1]), arch_id=2, draw_units=(2, 4, 6))
    origin = report.drawing["origin"]
    assert sorted(origin) == [2, 4, 6]
    assert origin[4].startswith("scores.parquet") and origin[6].startswith("scores.parquet")
    assert "not in scores.parquet" in origin[2]
    assert len(report.figures["fig11_partition"].axes) == 3


def test_same_command_gives_the_same_files(scored_runs, tmp_path):
    # Two fresh processes, as a user would run the command twice.
    outs = [tmp_path / "first", tmp_path / "second"]
    for out in outs:
        subprocess.run([sys.executable, "-m", "concurrent_nas.cli.main", "report", *map(str, scored_runs),
                        "--out-dir", str(out)], check=True, capture_output=True)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(outs[1]) for p in outs[1].rglob("*") if p.is_file())
    assert {f.suffix for f in files} == {".png", ".svg", ".csv", ".md"}
    for name in files:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def _latency_rows(arch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A latency.parquet laid out as `cnas latency` writes it (baseline rows included).

    Test fixture: real measurements take minutes; here every architecture runs 1.5x
    slower when it is FB, so the expected normalised times are known.
    """
    rows = []

    def row(r, units, placement, transport, threads, med, single, source="measured"):
        return dict(arch_id=r.arch_id, generator=r.generator, nodes=r.nodes, units=units, placement=placement,
                    transport=transport, threads=threads, image_size=32, median_ms=med, p10_ms=med * 0.9,
                    p90_ms=med * 1.1, bytes_sent=1000, messages=3, busy_ms=[med] * units, source=source,
                    single_unit_ms=single, speedup=single / med, baseline="1 unit x 1 intra-op thread")

    for r in arch.itertuples(index=False):
        single = 10.0 + rng.random()
        slow = 1.5 if r.generator == "fb" else 1.0
        rows.append(row(r, 1, "single", "none", 1, single, single))
        rows.append(row(r, 1, "single", "none", 2, 50 * single, single))  # same-cores baseline
        rows.append(row(r, 2, "kahypar", "gloo", 1, single / 2 * slow, single))
        rows.append(row(r, 4, "kahypar", "model", 1, single / 4 * slow, single, source="simulated"))
    return pd.DataFrame(rows)


def test_latency_and_accuracy_tables_add_their_figures(scored_runs, tmp_path):
    rng = np.random.default_rng(0)
    runs = []
    for run in scored_runs:
        copy = tmp_path / run.name
        shutil.copytree(run, copy)
        arch = load_parquet(copy / "architectures.parquet")
        _latency_rows(arch, rng).to_parquet(copy / "latency.parquet")
        runs.append(copy)
    acc = pd.DataFrame(
        {"arch_id": [0, 1, -1], "generator": ["dp", "dp", "baseline-cifarnet"], "nodes": [20, 20, 0],
         "dataset": "digits", "epochs": 1, "top1": [55.0, 61.0, 70.0], "best_top1": [55.0, 61.0, 70.0],
         "params": 1000, "flops": 2000, "acc_per_mparam": 1.0}
    )
    acc.to_parquet(runs[0] / "accuracy.parquet")
    out = tmp_path / "rep"
    assert main(["report", *map(str, runs), "--out-dir", str(out), "--figure-formats", "png"]) == 0
    for stem in CORE + OPTIONAL:
        assert_real_image(out / f"{stem}.png")
    summary = (out / "summary.md").read_text()
    assert "skipped" not in summary.lower()
    norm = parse_markdown_table(summary, "Fig. 8")
    # Baseline rows (placement "single") are not distributed runs and stay out.
    assert set(norm["units"].astype(int)) == {2, 4}
    assert set(norm["config"]) == {"kahypar over gloo", "kahypar over model"}
    fb = norm[norm["generator"] == "fb"]
    assert np.allclose(fb["median"].astype(float), 1.0)
    dp = norm[norm["generator"] == "dp"]
    # dp runs 1.5x faster than fb in the fixture; its median lands near 1/1.5.
    assert np.all((dp["median"].astype(float) > 0.55) & (dp["median"].astype(float) < 0.8))
    scaling = parse_markdown_table(summary, "Fig. 13")
    one = scaling[scaling["units"].astype(int) == 1]
    # The one-unit point is single_unit_ms, never the 50x slower same-cores baseline.
    assert len(one) and (one["median_ms"].astype(float) < 12).all()
    assert set(scaling.loc[scaling["units"].astype(int) == 4, "source"]) == {"simulated"}
    assert set(scaling.loc[scaling["units"].astype(int) == 2, "transport"]) == {"gloo"}
    accuracy = parse_markdown_table(summary, "Fig. 2")
    assert set(accuracy["generator"]) == {"dp", "baseline-cifarnet"}


def test_normalized_latency_divides_by_the_fb_median():
    frame = pd.DataFrame(
        {"run": "r", "arch_id": [0, 1, 2, 3, 4], "generator": ["fb", "fb", "fb", "dp", "dp"],
         "nodes": 40, "units": 4, "median_ms": [9.0, 10.0, 30.0, 5.0, 20.0]}
    )
    out = tables.normalized_latency(frame).set_index("arch_id")["normalized_time"]
    assert out.to_dict() == {0: 0.9, 1: 1.0, 2: 3.0, 3: 0.5, 4: 2.0}
    assert tables.normalized_latency(frame[frame["generator"] == "dp"]).empty


def test_best_options_without_flag_takes_the_lowest_cs():
    frame = pd.DataFrame(
        {"run": "r", "arch_id": [0, 0, 0, 0], "generator": "dp", "nodes": 10, "units": [4, 4, 6, 6],
         "eps": [0.1, 0.3, 0.1, 0.3], "cs": [2.0, 1.0, 3.0, 3.0]}
    )
    best = tables.best_options(frame)
    assert best[["units", "eps", "cs"]].values.tolist() == [[4, 0.3, 1.0], [6, 0.1, 3.0]]


def _run_cli(capsys, argv) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def test_run_without_scores_names_cnas_score(capsys, tmp_path):
    run = tmp_path / "unscored"
    assert main(["sample", "--gen", "dp", "--n", "3", "--nodes", "10", "--out-dir", str(run)]) == 0
    code, err = _run_cli(capsys, ["report", str(run), "--out-dir", str(tmp_path / "rep")])
    assert code == 2
    assert "has no scores.parquet" in err and f"cnas score {run}" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "rep").exists()


def test_run_too_small_for_an_fb_reference_still_reports(tmp_path):
    # FB's staged WS cannot be built at 12 blocks; the report used to stop on it.
    run = tmp_path / "dp12"
    assert main(["sample", "--gen", "dp", "--n", "3", "--nodes", "12", "--out-dir", str(run)]) == 0
    assert main(["score", str(run), "--units", "2", "--eps", "0.1"]) == 0
    assert main(["report", str(run), "--out-dir", str(tmp_path / "rep")]) == 0
    summary = (tmp_path / "rep" / "summary.md").read_text()
    assert "Fig. 10: no FB reference drawn at 12 blocks" in summary
    widths = pd.read_csv(tmp_path / "rep" / "tables" / "fig10_width_depth.csv")
    assert set(widths["generator"]) == {"dp", "resnet50 (reference)"}


def test_empty_and_missing_runs_are_clear_errors(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = _run_cli(capsys, ["report", str(empty)])
    assert code == 2 and "architectures.parquet" in err and "cnas sample" in err
    code, err = _run_cli(capsys, ["report", str(tmp_path / "nope")])
    assert code == 2 and "no such run directory" in err


def test_corrupt_and_empty_tables_are_clear_errors(capsys, scored_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(scored_runs[0], run)
    (run / "scores.parquet").write_bytes(b"PAR1 this is not parquet")
    code, err = _run_cli(capsys, ["report", str(run), "--out-dir", str(tmp_path / "a")])
    assert code == 2 and "scores.parquet is corrupt" in err and f"cnas score {run}" in err
    load_parquet(scored_runs[0] / "scores.parquet").iloc[0:0].to_parquet(run / "scores.parquet")
    code, err = _run_cli(capsys, ["report", str(run), "--out-dir", str(tmp_path / "b")])
    assert code == 2 and "has no rows" in err and "cnas score" in err
    load_parquet(scored_runs[0] / "scores.parquet").drop(columns=["entropy"]).to_parquet(run / "scores.parquet")
    code, err = _run_cli(capsys, ["report", str(run), "--out-dir", str(tmp_path / "c")])
    assert code == 2 and "lacks column(s) entropy" in err
    shutil.copy(scored_runs[0] / "scores.parquet", run / "scores.parquet")
    (run / "latency.parquet").write_bytes(b"garbage")
    code, err = _run_cli(capsys, ["report", str(run), "--out-dir", str(tmp_path / "d")])
    assert code == 2 and "latency.parquet is corrupt" in err and "cnas latency" in err
    assert not any((tmp_path / x).exists() for x in "abcd")


def test_bad_options_and_existing_out_keep_what_exists(capsys, scored_runs, report_dir, tmp_path):
    code, err = _run_cli(capsys, ["report", str(scored_runs[0]), "--figure-formats", "gif", "--out-dir", str(tmp_path / "x")])
    assert code == 2 and "--figure-formats" in err
    code, err = _run_cli(capsys, ["report", str(scored_runs[0]), "--arch", "99", "--out-dir", str(tmp_path / "x")])
    assert code == 2 and "no architecture 99" in err
    before = sorted(p.name for p in report_dir.iterdir())
    code, err = _run_cli(capsys, ["report", str(scored_runs[0]), "--out-dir", str(report_dir)])
    assert code == 2 and "--force" in err
    assert sorted(p.name for p in report_dir.iterdir()) == before


def test_width_depth_notebook_runs_top_to_bottom(scored_runs, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    path = REPO / "notebooks" / "width_depth.ipynb"
    nb = nbformat.read(path, as_version=4)
    # Committed clean: no outputs, no execution counts.
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    monkeypatch.setenv("CNAS_RUNS", ",".join(map(str, scored_runs)))
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    # The notebook's numbers are the package's: ResNet-50's depth and width as printed,
    # and one summary row per generator of the runs it was given (plus FB, sampled in
    # memory when no FB run is loaded).
    resnet = cnas.generate("resnet50")
    depth, width = dagmod.longest_path_vertices(resnet), dagmod.max_width(resnet)
    assert f"resnet50: depth {depth} levels, max width {width}" in text
    generators = set(pd.concat([load_parquet(r / "architectures.parquet") for r in scored_runs])["generator"])
    summary = next(o["data"]["text/plain"] for c in nb.cells if c.cell_type == "code" and "width_depth_summary" in c.source
                   for o in c.outputs if "text/plain" in o.get("data", {}))
    shown = {line.split()[1] for line in summary.splitlines()[1:] if len(line.split()) > 1}
    assert generators | {"fb"} <= shown, (generators, shown)
