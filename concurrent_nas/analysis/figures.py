"""The paper's figures as pure functions: DataFrames (or DAGs) in, matplotlib Figures out.

Every generator has one colour everywhere (:func:`generator_color`), every figure has a
title and axes labelled with units. Functions never save or show anything; the caller
(:mod:`concurrent_nas.analysis.report`, a notebook) decides. Figures are built with
:class:`matplotlib.figure.Figure` directly, so nothing depends on pyplot's global state
or an interactive backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .. import dag as dagmod
from ..errors import CnasError
from .tables import BYTES_PER_MB, ordered_generators, profile_matrix

# Colours of generators added later without one of their own: stable per name.
_EXTRA = ("#56B4E9", "#F0E442", "#8C564B", "#17BECF", "#BCBD22")

# Colours of the units in the partition drawing (the common input and the gather
# output are drawn apart, in grey and black).
UNIT_COLORS = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
    "#8C564B", "#17BECF", "#BCBD22", "#AEC7E8", "#FFBB78",
)
COMMON_COLOR = "#BBBBBB"
GATHER_COLOR = "#000000"
CUT_EDGE_COLOR = "#333333"  # dark: a feature map sent between units
INNER_EDGE_COLOR = "#CCCCCC"


def generator_color(name: str) -> str:
    """The colour of generator ``name`` in every figure: the registry's, else a stable one."""
    from ..generators import get_generator

    try:
        color = get_generator(name).color
    except CnasError:  # not registered: a graph file's "custom" generator, say
        color = None
    if color:
        return color
    # Same name, same colour, every run.
    return _EXTRA[sum(str(name).encode()) % len(_EXTRA)]


def _new_figure(
    ncols: int, nrows: int = 1, *, width: float = 4.6, height: float = 3.6, layout: str | None = "constrained", **kw
) -> tuple[Figure, np.ndarray]:
    # A floor on the total width leaves room for the title and the outside legend.
    fig = Figure(figsize=(max(width * ncols, 7.0), height * nrows), layout=layout)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _generator_legend(fig: Figure, generators: Sequence[str]) -> None:
    handles = [Patch(facecolor=generator_color(g), edgecolor="black", label=g) for g in generators]
    fig.legend(handles=handles, loc="outside right upper", title="generator", frameon=False)


def _grouped_boxes(ax, frame: pd.DataFrame, value: str, generators: Sequence[str], *, whis=1.5) -> None:
    """Box plots of ``value``: one group per unit count, one box per generator."""
    units = sorted(frame["units"].unique())
    width = 0.8 / max(len(generators), 1)
    for j, gen in enumerate(generators):
        data, positions = [], []
        for i, n in enumerate(units):
            vals = frame.loc[(frame["generator"] == gen) & (frame["units"] == n), value].to_numpy(dtype=float)
            if len(vals):
                data.append(vals)
                positions.append(i - 0.4 + width * (j + 0.5))
        if not data:
            continue
        colour = generator_color(gen)
        ax.boxplot(
            data,
            positions=positions,
            widths=width * 0.85,
            whis=whis,
            patch_artist=True,
            manage_ticks=False,
            boxprops={"facecolor": colour, "edgecolor": "black", "linewidth": 0.8},
            medianprops={"color": "black", "linewidth": 1.2},
            whiskerprops={"linewidth": 0.8},
            capprops={"linewidth": 0.8},
            flierprops={"marker": ".", "markersize": 2, "markerfacecolor": colour, "markeredgecolor": colour},
        )
    ax.set_xticks(range(len(units)), [str(n) for n in units])
    ax.set_xlim(-0.5, len(units) - 0.5)
    ax.set_xlabel("units n (devices)")
    ax.grid(axis="y", alpha=0.3)


def _panel_title(key) -> str:
    nodes, *rest = key if isinstance(key, tuple) else (key,)
    return ", ".join([f"{nodes} vertices", *map(str, rest)])


def _panels_by_nodes(
    best: pd.DataFrame, value: str, ylabel: str, title: str, *, whis=1.5, log: bool | None = None,
    by: Sequence[str] = ("nodes",),
) -> Figure:
    """Grouped box plots, one panel per value of ``by`` (vertex count first)."""
    keys = sorted(best.groupby(list(by)).groups) if len(by) > 1 else sorted(best[by[0]].unique())
    generators = ordered_generators(best["generator"])
    fig, axes = _new_figure(len(keys), sharey=True)
    values = best[value].to_numpy(dtype=float)
    positive = values[values > 0]
    if log is None:
        # Scores of different generators differ by orders of magnitude; a log axis
        # keeps every box readable, a linear one is clearer when they do not.
        log = len(positive) == len(values) and len(positive) > 0 and positive.max() / positive.min() > 50
    for ax, key in zip(axes[0], keys):
        mask = np.ones(len(best), dtype=bool)
        for column, v in zip(by, key if isinstance(key, tuple) else (key,)):
            mask &= (best[column] == v).to_numpy()
        _grouped_boxes(ax, best[mask], value, generators, whis=whis)
        ax.set_title(_panel_title(key))
        if log:
            ax.set_yscale("log")
    axes[0][0].set_ylabel(ylabel)
    fig.suptitle(f"{title}\n{whisker_text(whis)}")
    _generator_legend(fig, generators)
    return fig


def whisker_text(whis) -> str:
    """What a box plot drawn with matplotlib's ``whis`` shows, for its title."""
    if isinstance(whis, (tuple, list)):
        reach = f"{whis[0]:g}-{whis[1]:g} %"
    else:
        reach = f"last point within {whis:g} IQR"
    return f"box 25-75 %, line median, whiskers {reach}, dots beyond"


def concurrency_score_figure(best: pd.DataFrame) -> Figure:
    """Box plots of CS per generator x vertex count x units (paper Fig. 9).

    Parameters
    ----------
    best : pandas.DataFrame
        Best option per (architecture, units): columns ``generator, nodes, units, cs``
        (:func:`concurrent_nas.analysis.tables.best_options`).
    """
    return _panels_by_nodes(
        best, "cs", "CS (dimensionless, lower is better)",
        "Concurrency score per generator (paper Fig. 9)",
    )


def communication_figure(best: pd.DataFrame) -> Figure:
    """Box plots of total communication in MB per generator and units (paper Fig. 7).

    Parameters
    ----------
    best : pandas.DataFrame
        Best option per (architecture, units): columns ``generator, nodes, units, comm_bytes``.
    """
    frame = best.assign(comm_mb=best["comm_bytes"] / BYTES_PER_MB)
    return _panels_by_nodes(
        frame, "comm_mb", "communication per inference (MB = 10^6 B)",
        "Total communication with distribution (paper Fig. 7)",
    )


def entropy_figure(best: pd.DataFrame, title: str = "Load-balance quality (paper Fig. 12)") -> Figure:
    """Normalised entropy of part weights per units (paper Fig. 12).

    Boxes span the 25-75 % range, whiskers the 1-99 % range, as in the paper.

    Parameters
    ----------
    best : pandas.DataFrame
        Best option per (architecture, units): columns ``generator, nodes, units, entropy``.
    title : str
        Figure title (say which placement the parts come from).
    """
    fig = _panels_by_nodes(
        best, "entropy", "normalized entropy of part FLOPs (1 = balanced)",
        title, whis=(1, 99), log=False,
    )
    for ax in fig.axes:
        if ax.get_xlabel():
            ax.axhline(1.0, color="black", linewidth=0.6, linestyle=":")
    return fig


def width_depth_figure(
    architectures: pd.DataFrame, references: Mapping[str, nx.DiGraph] | None = None
) -> Figure:
    """Width/depth histograms: vertices per depth level (paper Fig. 10).

    One panel per population (generator x vertex count) with the mean number of
    vertices on each depth level over its architectures (a shorter architecture counts
    0 on the levels it lacks) and the 10-90 % range as a band; one panel per
    reference architecture (e.g. ResNet-50) drawn as it is. All panels share both axes
    so width and depth compare at a glance.

    Parameters
    ----------
    architectures : pandas.DataFrame
        Columns ``generator, nodes, width_profile`` (``architectures.parquet`` rows).
    references : mapping of str to networkx.DiGraph, optional
        Single reference architectures, drawn after the populations under their key.
    """
    panels: list[tuple[str, str, np.ndarray, int]] = []
    for gen in ordered_generators(architectures["generator"]):
        by_gen = architectures[architectures["generator"] == gen]
        for nodes in sorted(by_gen["nodes"].unique()):
            group = by_gen[by_gen["nodes"] == nodes]
            panels.append((f"{gen}, {nodes} vertices", gen, profile_matrix(group["width_profile"]), len(group)))
    for name, dag in (references or {}).items():
        gen = dag.graph.get("generator", name)
        panels.append((name, gen, profile_matrix([dagmod.width_profile(dag)]), 1))
    ncols = min(4, max(len(panels), 1))
    nrows = -(-len(panels) // ncols)
    fig, axes = _new_figure(ncols, nrows, width=3.6, height=2.8, sharex=True, sharey=True)
    for ax, (label, gen, matrix, count) in zip(axes.flat, panels):
        levels = np.arange(matrix.shape[1])
        mean = matrix.mean(axis=0)
        colour = generator_color(gen)
        if count > 1:
            lo, hi = np.quantile(matrix, [0.1, 0.9], axis=0)
            ax.fill_between(levels, lo, hi, step="mid", color=colour, alpha=0.25, linewidth=0)
            ax.bar(levels, mean, width=1.0, color=colour, linewidth=0)
            depth = np.median([np.count_nonzero(row) for row in matrix])
            width = np.median(matrix.max(axis=1))
            note = f"n={count}, median depth {depth:g}, median max width {width:g}"
        else:
            ax.bar(levels, mean, width=1.0, color=colour, linewidth=0)
            note = f"depth {matrix.shape[1]}, max width {int(matrix.max())}"
        ax.set_title(label, fontsize=10)
        ax.text(0.98, 0.95, note, transform=ax.transAxes, ha="right", va="top", fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    for ax in axes.flat[:len(panels)]:
        ax.tick_params(labelbottom=True)
    # The lowest panel of each column carries the axis label.
    for col in range(ncols):
        drawn = [r for r in range(nrows) if r * ncols + col < len(panels)]
        if drawn:
            axes[drawn[-1], col].set_xlabel("depth level (longest path from input)")
    for ax in axes[:, 0]:
        ax.set_ylabel("vertices per level")
    fig.suptitle("Width/depth histograms (paper Fig. 10; bars: mean over architectures, band: 10-90 %)")
    return fig


def depth_layout(dag: nx.DiGraph) -> dict[int, tuple[float, float]]:
    """Positions for drawing a DAG left to right: x = depth level, y spread per level."""
    level = dagmod.depth_levels(dag)
    by_level: dict[int, list[int]] = {}
    for v in sorted(dag):
        by_level.setdefault(level[v], []).append(v)
    pos = {}
    for d, vertices in by_level.items():
        k = len(vertices)
        for i, v in enumerate(vertices):
            pos[v] = (float(d), (k - 1) / 2.0 - i)
    return pos


def partition_figure(dag: nx.DiGraph, partitions: Mapping[int, Mapping[int, int]], title: str) -> Figure:
    """One architecture drawn once per unit count, vertices coloured by unit (paper Fig. 11).

    The input vertex is the *common* node (its work, a scatter of the input, is shared
    by every unit) and the output the *gather* node; they are drawn in grey and black
    whatever part the partitioner gave them. Edges between different units (real
    transfers) are drawn solid and dark, edges within a unit light.

    Parameters
    ----------
    dag : networkx.DiGraph
        The architecture.
    partitions : mapping of int to mapping of int to int
        ``{units: {vertex: part}}``, e.g. from
        :func:`concurrent_nas.scoring.partition_dag` or the ``parts`` column of
        ``scores.parquet``.
    title : str
        Figure title (say which architecture it is).
    """
    source, sink = dagmod.input_vertex(dag), dagmod.output_vertex(dag)
    pos = depth_layout(dag)
    units_list = sorted(partitions)
    # A fixed layout: the constrained-layout solver, with legends outside the axes,
    # gave sub-pixel differences depending on what the process had drawn before.
    fig, axes = _new_figure(1, len(units_list), width=11.0, height=3.4, layout=None)
    fig.subplots_adjust(left=0.02, right=0.86, top=1 - 0.9 / (3.4 * len(units_list)),
                        bottom=0.6 / (3.4 * len(units_list)), hspace=0.5)
    for ax, units in zip(axes[:, 0], units_list):
        part = partitions[units]
        inner = [v for v in sorted(dag) if v not in (source, sink)]
        cut = [(u, v) for u, v in dag.edges if u not in (source,) and v != sink and part[u] != part[v]]
        same = [e for e in dag.edges if e not in set(cut)]
        nx.draw_networkx_edges(dag, pos, edgelist=same, ax=ax, edge_color=INNER_EDGE_COLOR, width=0.6,
                               arrows=True, arrowsize=6, node_size=120)
        nx.draw_networkx_edges(dag, pos, edgelist=cut, ax=ax, edge_color=CUT_EDGE_COLOR, width=0.9,
                               arrows=True, arrowsize=7, node_size=120)
        nx.draw_networkx_nodes(dag, pos, nodelist=inner, ax=ax, node_size=120, linewidths=0.5,
                               edgecolors="black",
                               node_color=[UNIT_COLORS[part[v] % len(UNIT_COLORS)] for v in inner])
        nx.draw_networkx_nodes(dag, pos, nodelist=[source], ax=ax, node_size=220, node_shape="s",
                               node_color=COMMON_COLOR, edgecolors="black", linewidths=0.8)
        nx.draw_networkx_nodes(dag, pos, nodelist=[sink], ax=ax, node_size=220, node_shape="s",
                               node_color=GATHER_COLOR, edgecolors="black", linewidths=0.8)
        used = sorted({part[v] for v in inner})
        handles = [Patch(facecolor=UNIT_COLORS[p % len(UNIT_COLORS)], edgecolor="black", label=f"unit {p}") for p in used]
        handles += [
            Line2D([], [], marker="s", linestyle="", markerfacecolor=COMMON_COLOR, markeredgecolor="black", label="input (common)"),
            Line2D([], [], marker="s", linestyle="", markerfacecolor=GATHER_COLOR, markeredgecolor="black", label="output (gather)"),
            Line2D([], [], color=CUT_EDGE_COLOR, linewidth=0.9, label="edge cut between units\n(a transfer)"),
            Line2D([], [], color=INNER_EDGE_COLOR, linewidth=0.6, label="edge within a unit"),
        ]
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
        noun = "edge crosses" if len(cut) == 1 else "edges cross"
        ax.set_title(f"{units} units: {len(cut)} {noun} units", fontsize=10)
        ax.tick_params(left=False, labelleft=False, bottom=True, labelbottom=True)
        ax.set_xlabel("depth level (vertices from input)")
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    fig.suptitle(title)
    return fig


def inference_time_figure(normalized: pd.DataFrame) -> Figure:
    """Inference time normalised to FB per generator and units (paper Fig. 8).

    Parameters
    ----------
    normalized : pandas.DataFrame
        :func:`concurrent_nas.analysis.tables.normalized_latency` output.
    """
    fig = _panels_by_nodes(
        normalized, "normalized_time", "time / FB median time (1 = FB)",
        "Inference time normalized to FB (paper Fig. 8)", log=False, by=("nodes", "config", "source"),
    )
    for ax in fig.axes:
        if ax.get_xlabel():
            ax.axhline(1.0, color=generator_color("fb"), linewidth=0.8, linestyle="--")
    return fig


def latency_scaling_figure(scaling: pd.DataFrame) -> Figure:
    """Latency against the number of units, per generator (paper Fig. 13).

    One panel per vertex count and placement. Lines are medians over architectures,
    bands the 10-90 % range; measured lines are solid (one marker per transport),
    simulated ones dashed with hollow markers so they are never mistaken for
    measurements. Every line starts at one unit (``single_unit_ms``).

    Parameters
    ----------
    scaling : pandas.DataFrame
        :func:`concurrent_nas.analysis.tables.latency_scaling` output.
    """
    keys = sorted(scaling.groupby(["nodes", "placement"]).groups)
    generators = ordered_generators(scaling["generator"])
    markers = dict(zip(sorted(scaling.loc[scaling["source"] != "simulated", "transport"].unique()), "osD^v<>"))
    fig, axes = _new_figure(len(keys), sharey=True)
    for ax, (n, placement) in zip(axes[0], keys):
        panel = scaling[(scaling["nodes"] == n) & (scaling["placement"] == placement)]
        for gen in generators:
            colour = generator_color(gen)
            for (transport, source), line in panel[panel["generator"] == gen].groupby(["transport", "source"], sort=True):
                line = line.sort_values("units")
                simulated = source == "simulated"
                ax.plot(line["units"], line["median_ms"], color=colour,
                        linestyle="--" if simulated else "-", marker="o" if simulated else markers.get(transport, "o"),
                        markerfacecolor="white" if simulated else colour,
                        label=f"{gen}, {'simulated' if simulated else transport}")
                if not simulated:
                    ax.fill_between(line["units"], line["p10_ms"], line["p90_ms"], color=colour, alpha=0.15, linewidth=0)
        ax.set_title(_panel_title((n, placement)))
        ax.set_xlabel("units n (devices; 1 = whole network, one unit)")
        ax.set_xticks(sorted(panel["units"].unique()))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    axes[0][0].set_ylabel("single-input latency (ms)")
    fig.suptitle("Latency scaling with units (paper Fig. 13; band: 10-90 %)")
    return fig


def accuracy_figure(joined: pd.DataFrame, baselines: pd.DataFrame | None = None) -> Figure:
    """Top-1 accuracy against concurrency score, one panel per units (paper Fig. 2).

    Parameters
    ----------
    joined : pandas.DataFrame
        :func:`concurrent_nas.analysis.tables.accuracy_vs_score` output (``generator,
        units, cs, top1, dataset``); ``top1`` in percent, as ``cnas train`` writes it.
    baselines : pandas.DataFrame, optional
        Rows of ``accuracy.parquet`` for reference networks (``generator`` such as
        ``baseline-cifarnet``, ``dataset``, ``top1``): drawn as dashed horizontal lines,
        since they have no concurrency score.
    """
    units = sorted(joined["units"].unique())
    generators = ordered_generators(joined["generator"])
    markers = dict(zip(sorted(joined["dataset"].unique()), "osD^v<>"))
    fig, axes = _new_figure(len(units), sharey=True)
    for ax, n in zip(axes[0], units):
        panel = joined[joined["units"] == n]
        for gen in generators:
            for dataset, marker in markers.items():
                pts = panel[(panel["generator"] == gen) & (panel["dataset"] == dataset)]
                if len(pts):
                    ax.scatter(pts["cs"], pts["top1"], color=generator_color(gen), marker=marker,
                               edgecolors="black", linewidths=0.4, s=28, label=f"{gen}, {dataset}")
        if baselines is not None:
            for k, row in enumerate(baselines.sort_values(["generator", "dataset"]).itertuples(index=False)):
                ax.axhline(row.top1, color="#555555", linewidth=0.8, linestyle=("--", ":", "-.")[k % 3],
                           label=f"{row.generator}, {row.dataset}")
        ax.set_title(f"{n} units")
        ax.set_xlabel("concurrency score CS (lower is better)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("top-1 accuracy (%)")
    axes[0][-1].legend(fontsize=7, frameon=False, loc="best")
    fig.suptitle("Accuracy vs. concurrency score (paper Fig. 2)")
    return fig
