"""Why probabilistic staging has fewer (or more) parameters than greedy: paper Table 4.

Usage::

    python benchmarks/table4_breakdown.py [--stem 32 --cap 256 --image 32] [--count 300]

For architectures 0 .. count-1 (seed 0, the first rows of ``cnas sample --gen G --n 1000``)
of each generator at its current defaults and both staging modes it prints: the share of blocks whose output reached the channel cap, the number
of 1x1 scaling convolutions per architecture, the share of parameters in them, and the
parameters outside them. Writes ``benchmarks/results/table4_breakdown_stem<S>_cap<C>.md``,
naming the commit it was made at.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from bench_fidelity import git_commit, population
from concurrent_nas.analysis.tables import markdown_table
from concurrent_nas.shapes import CompileSettings, plan_network

RESULTS = Path(__file__).parent / "results"


def breakdown(dags, settings):
    at_cap, convs, share, rest, total = [], [], [], [], []
    for dag in dags:
        plans = plan_network(dag, settings)
        blocks = [p for p in plans if p.role == "block"]
        at_cap.append(np.mean([p.out_channels == settings.channel_cap for p in blocks]))
        convs.append(sum(sum(p.conv_inputs) for p in plans))
        scaling = sum(
            c * p.mid_channels for p in plans for (c, _), up in zip(p.in_shapes, p.conv_inputs) if up
        )
        params = sum(p.params for p in plans)
        share.append(scaling / params)
        rest.append((params - scaling) / 1e6)
        total.append(params / 1e6)
    return {
        "blocks at cap": f"{np.mean(at_cap):.0%}",
        "1x1 scaling convs / arch": f"{np.mean(convs):.1f}",
        "params in scaling convs": f"{np.mean(share):.0%}",
        "params outside them (M)": f"{np.mean(rest):.2f}",
        "params (M)": f"{np.mean(total):.2f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stem", type=int, default=32)
    parser.add_argument("--cap", type=int, default=256)
    parser.add_argument("--image", type=int, default=32)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    rows = []
    for gen in ("er", "ba", "ws", "dp"):
        dags = population(gen, args.count)
        for mode in ("greedy", "probabilistic"):
            settings = CompileSettings(stem_channels=args.stem, channel_cap=args.cap, image_size=args.image, staging=mode)
            rows.append({"generator": gen, "staging": mode, **breakdown(dags, settings)})
    text = markdown_table(pd.DataFrame.from_records(rows))
    print(text)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"table4_breakdown_stem{args.stem}_cap{args.cap}.md"
    out.write_text(
        f"Commit {git_commit()}. stem {args.stem}, cap {args.cap}, image {args.image}, architectures 0..{args.count - 1} "
        "(seed 0) per generator at its current defaults\n\n"
        f"{text}\n\nCommand: `python benchmarks/table4_breakdown.py --stem {args.stem} --cap {args.cap} "
        f"--image {args.image} --count {args.count}`\n"
    )


if __name__ == "__main__":
    main()
