"""``cnas sample``: a reproducible population of architectures in a run directory."""

from __future__ import annotations

import shlex
import sys

from ..errors import CnasError
from .common import add_deprecated_aliases, parse_params, progress_bar


def register(sub) -> None:
    p = sub.add_parser("sample", help="sample random architecture DAGs into a run directory")
    p.add_argument("--gen", required=True, help="generator name (see `cnas generators`)")
    p.add_argument("--n", type=int, default=1000, help="number of architectures (default 1000)")
    p.add_argument("--nodes", type=int, default=40, help="building blocks per architecture (default 40)")
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="generator parameter, repeatable")
    p.add_argument("--out-dir", dest="out", help="run directory (default runs/<gen><nodes>-n<n>-s<seed>)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out-dir sampled with other settings (the same command again "
                   "keeps the run as it is and needs no --force)")
    p.add_argument("--discard-results", action="store_true",
                   help="with --force: also replace a run holding results of later commands (scores, latency, ...)")
    add_deprecated_aliases(p, {"--out": "--out-dir"})
    p.set_defaults(func=run)


def run(args) -> int:
    from ..sampling import write_run

    out = args.out or f"runs/{args.gen}{args.nodes}-n{args.n}-s{args.seed}"
    if args.n < 1:
        raise CnasError(f"--n must be a positive integer, got {args.n}")
    if args.discard_results and not args.force:
        raise CnasError("--discard-results only applies with --force")
    try:
        with progress_bar(args.n, f"sample {args.gen}", unit="arch") as bar:
            table = write_run(
                out, args.gen, args.n, nodes=args.nodes, seed=args.seed, params=parse_params(args.param),
                force=args.force, discard_results=args.discard_results, progress=bar.update,
                command=shlex.join(["cnas", *args.argv]),
            )  # fmt: skip
    except KeyboardInterrupt:
        # The run is built aside: an interrupt leaves nothing (and an existing --out as it was).
        print(f"cnas: interrupted; nothing was written to {out}", file=sys.stderr)
        return 130
    if table.attrs.get("unchanged"):
        print(f"{out} already holds this sample (same generator, parameters, nodes, count and seed); "
              "nothing to do", file=sys.stderr)
    print(
        f"{out}: {len(table)} {args.gen} architectures, {int(table['nodes'].median())} blocks, "
        f"median depth {int(table['depth'].median())}, median max width {int(table['max_width'].median())}"
    )
    return 0
