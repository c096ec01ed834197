"""Paper fidelity (issue #17): the measurements behind the README's comparisons with the paper.

Usage::

    python benchmarks/bench_fidelity.py table4 --n 1000     # paper Table 4 at the current defaults
    python benchmarks/bench_fidelity.py depth --n 60        # longest path and critical-path bound
    python benchmarks/bench_fidelity.py uc --n 200          # the paper's U_c: smallest edge per generator
    python benchmarks/bench_fidelity.py fig9 --n 200 --sizes 40   # Fig. 9 under U_c global/generator, dfs/index
    python benchmarks/bench_fidelity.py fig10 --n 200       # Fig. 10 under dfs and index orientation
    python benchmarks/bench_fidelity.py fig12 --n 100       # Figs. 11/12: paper placement (2-8 units) and KaHyPar
    python benchmarks/bench_fidelity.py groups --n 100      # the paper placement's path groups

Every part samples its own architectures (seed 0, indices 0 .. n-1) with the library,
so it needs no run directory, and writes ``benchmarks/results/fidelity_<part>.md`` and
``.json`` (``fidelity_fig9_<sizes>``); both name the commit they were made at (``+dirty`` when the measured code
differed from it). Only counts, FLOPs, bytes and CS are measured: nothing depends on the host's load.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import networkx as nx
import pandas as pd

import concurrent_nas as cnas
from concurrent_nas import dag as dagmod
from concurrent_nas.analysis.tables import markdown_table
from concurrent_nas.placement.assign import paper_assignment
from concurrent_nas.scoring import build_hypergraph, normalized_entropy, part_weights, score_architecture, smallest_edge_cost
from concurrent_nas.shapes import CompileSettings, plan_network, vertex_costs
from stamp import git_commit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PAPER_GENERATORS = ["er", "ba", "ws", "dp"]
FIG9_GENERATORS = ["er", "ba", "ws", "dp", "fb", "fb-randwire"]
# fb-randwire's nodes are per stage: 12 per stage gives 3 * (12 + 1) = 39 blocks, about
# the others' 40 (and 26 per stage 81 for 80).
FB_RANDWIRE_PER_STAGE = {40: 12, 80: 26}
# RandWire's own rule beside the default, where a part is cheap enough to show both.
FB_PRESCRIBED = ("fb-randwire", {"scaling": "prescribed"})
#: Which FB each column is; every results file that has FB columns says it.
FB_NOTE = ("FB: `fb` is our older FB (the N blocks split over 3 WS stages, staging only at its 2 merge "
           "vertices); `fb-randwire` is RandWire's FB (N vertices in every stage, a merge + downsample vertex "
           "before each) with the paper's scaling blocks inside its stages (`scaling=per-block`, the default: "
           "they stage as the staging mode says); `fb-randwire scaling=prescribed` stages at the merges only.")
# The paper's Table 4, greedy / probabilistic mean parameters (M), for the README row.
PAPER_TABLE4 = {"er": "48.63 / 46.03", "ba": "48.33 / 45.63", "ws": "42.03 / 36.44", "dp": "35.03 / 26.69"}
LARGE = CompileSettings(stem_channels=16, channel_cap=1024, image_size=224)


#: The code these measurements depend on; other packages' uncommitted work does not make them dirty.
MEASURED_CODE = ["concurrent_nas/generators", "concurrent_nas/dag.py", "concurrent_nas/shapes.py",
                 "concurrent_nas/scoring", "concurrent_nas/placement/assign.py", "benchmarks/bench_fidelity.py"]


def population(gen: str, n: int, nodes: int = 40, **params) -> list[nx.DiGraph]:
    """Architectures 0 .. n-1 of ``gen`` (seed 0), as ``cnas sample`` draws them."""
    if gen == "fb-randwire":
        nodes = FB_RANDWIRE_PER_STAGE.get(nodes, nodes)
    return [cnas.generate(gen, nodes, seed=0, index=i, **params) for i in range(n)]


def label(gen: str, params: dict) -> str:
    """``gen`` with its non-default parameters, e.g. ``dp p=0.3``."""
    return gen + "".join(f" {k}={v}" for k, v in params.items())


def write(part: str, title: str, tables: dict[str, pd.DataFrame], command: str, notes: str = "") -> None:
    """``fidelity_<part>.md`` (one markdown table per key) and ``.json`` (the same rows)."""
    commit = git_commit(MEASURED_CODE, short=True)
    text = [f"# {title}", "", f"Commit {commit}. Command: `{command}`", ""]
    if notes:
        text += [notes, ""]
    for name, frame in tables.items():
        text += [f"## {name}", "", markdown_table(frame, float_format=lambda v: f"{v:g}"), ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"fidelity_{part}.md").write_text("\n".join(text))
    payload = {"commit": commit, "command": command, "tables": {k: v.to_dict(orient="records") for k, v in tables.items()}}
    (RESULTS / f"fidelity_{part}.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
    print("\n".join(text))


def table4(args) -> None:
    """Mean / std of parameters (M) under greedy and probabilistic staging, both settings."""
    rows = []
    cases = [(gen, {}) for gen in FIG9_GENERATORS] + [FB_PRESCRIBED]
    for setting, base in (("defaults (stem 32, cap 256, 32 px)", CompileSettings()), ("stem 16, cap 1024, 224 px", LARGE)):
        for gen, params in cases:
            dags = population(gen, args.n, **params)
            row = {"settings": setting, "generator": label(gen, params), "count": len(dags)}
            for mode in ("greedy", "probabilistic"):
                s = CompileSettings(**{**base.__dict__, "staging": mode})
                params = [sum(p.params for p in plan_network(d, s)) / 1e6 for d in dags]
                row[f"{mode} mean M"] = round(statistics.fmean(params), 3)
                row[f"{mode} std M"] = round(statistics.pstdev(params), 3)
            rows.append(row)
            print(row, flush=True)
    frame = pd.DataFrame(rows)
    readme = [{"": "paper", **PAPER_TABLE4}]
    for setting, group in frame[frame["generator"].isin(FIG9_GENERATORS)].groupby("settings", sort=False):
        readme.append({"": f"ours, {setting}", **{
            r["generator"]: f"{r['greedy mean M']:.3f} / {r['probabilistic mean M']:.3f}" for r in group.to_dict("records")}})
    write("table4", "Paper Table 4: parameters (millions), 40 blocks",
          {"greedy / probabilistic mean (README)": pd.DataFrame(readme).fillna("–"), "table4": frame},
          f"python benchmarks/bench_fidelity.py table4 --n {args.n}",
          "Architectures 0..n-1 of seed 0 per generator at its current defaults; fb-randwire 12 vertices per stage "
          f"(39 blocks). {FB_NOTE}")


def critical_path_bound(dag: nx.DiGraph, settings: CompileSettings) -> float:
    """Total FLOPs / FLOPs of the heaviest input -> output path: no placement beats it."""
    flops, _ = vertex_costs(dag, settings)
    heaviest = {}
    for v in nx.topological_sort(dag):
        heaviest[v] = flops[v] + max((heaviest[u] for u in dag.pred[v]), default=0)
    return sum(flops.values()) / heaviest[dag.graph["output"]]


def depth(args) -> None:
    """Longest path and critical-path bound (224 px) by generator, orientation, staging."""
    rows = []
    cases = [(gen, {}) for gen in FIG9_GENERATORS] + [FB_PRESCRIBED, ("dp", {"p": 0.3})]
    for gen, params in cases:
        for orientation in ("dfs", "index"):
            dags = population(gen, args.n, orientation=orientation, **params)
            row = {"generator": label(gen, params), "orientation": orientation,
                   "count": len(dags), "blocks": dagmod.block_count(dags[0]),
                   "longest path (median vertices)": statistics.median(dagmod.longest_path_vertices(d) for d in dags),
                   "max width (median)": statistics.median(dagmod.max_width(d) for d in dags)}
            for mode in ("probabilistic", "uniform"):
                s = CompileSettings(image_size=224, staging=mode)
                row[f"bound {mode} (median x)"] = round(statistics.median(critical_path_bound(d, s) for d in dags), 2)
            rows.append(row)
            print(row, flush=True)
    write("depth", "Depth and the FLOP-weighted critical-path bound (224 px)", {"depth": pd.DataFrame(rows)},
          f"python benchmarks/bench_fidelity.py depth --n {args.n}",
          "Bound = total FLOPs / FLOPs on the heaviest input->output path: the speed-up no placement on any "
          "number of units exceeds (communication free). Longest path counts vertices, input and output included. "
          f"Under uniform staging fb-randwire's two scalings are the same network. {FB_NOTE}")


def uc(args) -> None:
    """The paper's U_c (smallest edge) per generator and how often an architecture has it."""
    rows = []
    for gen, params in [(gen, {}) for gen in FIG9_GENERATORS] + [FB_PRESCRIBED]:
        for nodes in (40, 80):
            smallest = [smallest_edge_cost(build_hypergraph(d)) for d in population(gen, args.n, nodes, **params)]
            low = min(smallest)
            rows.append({"generator": label(gen, params), "nodes": nodes, "count": len(smallest), "smallest edge (KiB)": low / 1024,
                         "share of architectures at it": round(sum(s == low for s in smallest) / len(smallest), 3),
                         "largest per-architecture minimum (KiB)": max(smallest) / 1024})
            print(rows[-1], flush=True)
    write("uc", "U_c: the smallest communication of an edge, per generator (default compile settings)",
          {"uc": pd.DataFrame(rows)}, f"python benchmarks/bench_fidelity.py uc --n {args.n}",
          f"The global U_c (default) is the stem map, 128 KiB. {FB_NOTE}")


def fig9(args) -> None:
    """Median [IQR] best CS per generator and units, U_c global vs generator, dfs vs index."""
    rows = []
    cases = [(gen, {}) for gen in FIG9_GENERATORS] + [FB_PRESCRIBED]
    for nodes in args.sizes:
        for gen, params in cases:
            for orientation in ("dfs", "index"):
                best = {("global", k): [] for k in args.units} | {("generator", k): [] for k in args.units}
                for d in population(gen, args.n, nodes, orientation=orientation, **params):
                    frame = score_architecture(d, units=args.units)
                    hg_min = smallest_edge_cost(build_hypergraph(d))
                    for k, group in frame.groupby("units"):
                        best[("global", k)].append(group["cs"].min())
                        # Per-architecture U_c rescales every option's CS alike, so the
                        # best option is the same and only its value changes.
                        scale = (group["unit_bytes"].iloc[0] / hg_min) ** (1.5 / 3)
                        best[("generator", k)].append(group["cs"].min() * scale)
                for (mode, k), values in best.items():
                    q = pd.Series(values).quantile([0.25, 0.5, 0.75])
                    rows.append({"nodes": nodes, "generator": label(gen, params), "orientation": orientation, "uc": mode, "units": k,
                                 "cell": f"{q[0.5]:.2f} [{q[0.25]:.2f}-{q[0.75]:.2f}]"})
                print(gen, nodes, orientation, [r["cell"] for r in rows[-2 * len(args.units):]], flush=True)
    frame = pd.DataFrame(rows)
    tables = {}
    for (nodes, mode, orientation), group in frame.groupby(["nodes", "uc", "orientation"], sort=False):
        wide = group.pivot(index="units", columns="generator", values="cell")[[label(*c) for c in cases]].reset_index()
        tables[f"{nodes} blocks, U_c {mode}, orientation {orientation}"] = wide
    write("fig9_" + "_".join(map(str, args.sizes)), "Fig. 9: median best CS [IQR] under both U_c and both orientations", tables,
          f"python benchmarks/bench_fidelity.py fig9 --n {args.n} --sizes {','.join(map(str, args.sizes))}",
          f"{args.n} architectures per cell (seed 0, indices 0..n-1; the README's main Fig. 9 uses 1000), eps "
          "0.03,0.1,0.2,0.3,0.5, fast preset, default compile settings. fb-randwire: 12 vertices per stage "
          "(39 blocks) in the 40 rows, 26 (81 blocks) in the 80 rows. U_c generator = the architecture's "
          f"smallest edge (the paper's definition; see fidelity_uc.md). {FB_NOTE}")


def placement_entropy(dag: nx.DiGraph, assignment: dict, units: int) -> float:
    """Normalised entropy of the FLOPs each unit gets under ``assignment``."""
    flops, _ = vertex_costs(dag, CompileSettings())
    verts = sorted(dag)
    return normalized_entropy(part_weights([flops[v] for v in verts], [assignment[v] for v in verts], units))


def fig12(args) -> None:
    """Figs. 11 and 12 the paper's way (appendix placement, 2/4/6/8 units) and ours (KaHyPar, 4-10)."""
    from concurrent_nas.analysis.figures import entropy_figure, partition_figure
    from concurrent_nas.scoring import partition_dag

    paper_units, kahypar_units = (2, 4, 6, 8), tuple(args.units)
    rows = []
    for gen in FIG9_GENERATORS:
        for d in population(gen, args.n):
            flops, _ = vertex_costs(d, CompileSettings())
            for k in paper_units:
                rows.append({"placement": "paper", "generator": gen, "nodes": 40, "units": k,
                             "entropy": placement_entropy(d, paper_assignment(d, k, flops), k)})
            frame = score_architecture(d, units=kahypar_units)
            for k, group in frame[frame["best"]].groupby("units"):
                rows.append({"placement": "kahypar", "generator": gen, "nodes": 40, "units": int(k),
                             "entropy": float(group["entropy"].iloc[0])})
        print(gen, flush=True)
    frame = pd.DataFrame(rows)
    summary = (frame.groupby(["placement", "generator", "units"], sort=False)["entropy"]
               .quantile([0.01, 0.25, 0.5, 0.75, 0.99]).unstack().round(3).reset_index())
    summary.columns = ["placement", "generator", "units", "p1", "q25", "median", "q75", "p99"]
    figures = ROOT / "docs" / "figures"
    titles = {"paper": "Fig. 12, paper placement (path groups + greedy)",
              "kahypar": "Fig. 12, ours: best KaHyPar partition"}
    for placement, title in titles.items():
        fig = entropy_figure(frame[frame["placement"] == placement], title=title)
        fig.savefig(figures / f"fig12_entropy_{placement}.png", dpi=100, metadata={"Software": None})
    dag = population("dp", 1)[0]
    flops, _ = vertex_costs(dag, CompileSettings())
    drawings = {
        "paper": ({k: paper_assignment(dag, k, flops) for k in paper_units}, "the paper's placement (appendix)"),
        "kahypar": ({k: partition_dag(dag, k, 0.03) for k in kahypar_units}, "KaHyPar, eps 0.03 (our variant)"),
    }
    for placement, (partitions, how) in drawings.items():
        fig = partition_figure(dag, partitions, f"DP-40 architecture 0 (seed 0) over units: {how} (paper Fig. 11)")
        fig.savefig(figures / f"fig11_partition_{placement}.png", dpi=100, metadata={"Software": None})
    write("fig12", "Figs. 11 and 12: load balance (normalised entropy) by placement", {"fig12": summary},
          f"python benchmarks/bench_fidelity.py fig12 --n {args.n}",
          "paper = the appendix placement (path grouping, then greedy balancing by FLOPs) on 2/4/6/8 units, as "
          "the paper draws Figs. 11 and 12; kahypar = the best-CS KaHyPar option on 4-10 units (ours). 40 blocks "
          "(fb-randwire 39), default settings. Figures: docs/figures/fig11_partition_{paper,kahypar}.png, "
          f"docs/figures/fig12_entropy_{{paper,kahypar}}.png. {FB_NOTE}")


def groups(args) -> None:
    """Why the paper placement balances: how many path groups it spreads, and how heavy."""
    from concurrent_nas.placement.assign import sequential_groups

    rows = []
    for gen in FIG9_GENERATORS:
        counts, shares = [], []
        for d in population(gen, args.n):
            flops, _ = vertex_costs(d, CompileSettings())
            found = sequential_groups(d)
            counts.append(len(found))
            shares.append(max(sum(flops[v] for v in g) for g in found) / sum(flops.values()))
        rows.append({"generator": gen, "count": args.n, "path groups (median)": statistics.median(counts),
                     "heaviest group, share of FLOPs (median)": round(statistics.median(shares), 3),
                     "heaviest group, share of FLOPs (max)": round(max(shares), 3)})
        print(rows[-1], flush=True)
    write("groups", "The paper placement's path groups (40 blocks, default settings)", {"groups": pd.DataFrame(rows)},
          f"python benchmarks/bench_fidelity.py groups --n {args.n}",
          f"Greedy balancing of groups whose heaviest is under 1/8 of the total can balance 8 units almost exactly. {FB_NOTE}")


def fig10(args) -> None:
    """Fig. 10 (vertices per depth level) under the paper's DFS and RandWire's id orientation."""
    from concurrent_nas.analysis.figures import width_depth_figure

    rows = []
    for orientation in ("dfs", "index"):
        frame = pd.DataFrame([
            {"generator": gen, "nodes": dagmod.block_count(d), "width_profile": dagmod.width_profile(d)}
            for gen in FIG9_GENERATORS for d in population(gen, args.n, orientation=orientation)
        ])
        fig = width_depth_figure(frame, {"resnet50 (reference)": cnas.generate("resnet50")})
        fig.suptitle(f"Width/depth histograms (paper Fig. 10), orientation {orientation}; bars: mean, band: 10-90 %")
        fig.savefig(ROOT / "docs" / "figures" / f"fig10_width_depth_{orientation}.png", dpi=100,
                    metadata={"Software": None})
        for gen, group in frame.groupby("generator", sort=False):
            profiles = group["width_profile"]
            rows.append({"generator": gen, "orientation": orientation, "count": len(group),
                         "depth levels (median)": statistics.median(len(p) for p in profiles),
                         "widest level (median)": statistics.median(max(p) for p in profiles)})
        print(orientation, flush=True)
    write("fig10", "Fig. 10: width/depth under both orientations", {"fig10": pd.DataFrame(rows)},
          f"python benchmarks/bench_fidelity.py fig10 --n {args.n}",
          "40 blocks (fb-randwire 39), architectures 0..n-1 of seed 0. Figures: "
          "docs/figures/fig10_width_depth_dfs.png, docs/figures/fig10_width_depth_index.png.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["table4", "depth", "uc", "fig9", "fig10", "fig12", "groups"])
    parser.add_argument("--n", type=int, default=100, help="architectures per generator")
    parser.add_argument("--sizes", default="40", help="block counts for fig9, e.g. 40,80")
    parser.add_argument("--units", default="4,6,8,10")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.units = [int(u) for u in args.units.split(",")]
    {"table4": table4, "depth": depth, "uc": uc, "fig9": fig9, "fig10": fig10, "fig12": fig12, "groups": groups}[args.part](args)


if __name__ == "__main__":
    main()
