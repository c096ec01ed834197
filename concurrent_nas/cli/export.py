"""``cnas export RUN ID``: one architecture as networkx node-link JSON."""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("export", help="write one architecture of a run as node-link JSON")
    p.add_argument("run", help="run directory")
    p.add_argument("id", type=int, help="architecture id")
    p.add_argument("--out", help="file to write (default: standard output)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..graphjson import to_node_link, write_graph
    from ..rundir import atomic_output, load_architectures

    [(_, _, dag)] = load_architectures(args.run, [args.id])
    if args.out:
        with atomic_output(args.out, what="graph") as tmp:
            write_graph(dag, tmp)
    else:
        json.dump(to_node_link(dag), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    return 0
