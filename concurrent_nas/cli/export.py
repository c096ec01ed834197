"""``cnas export RUN ID``: one architecture as networkx node-link JSON."""

from __future__ import annotations

import json
import sys

from .top import add_rank_options, architecture_id


def register(sub) -> None:
    p = sub.add_parser("export", help="write one architecture of a run as node-link JSON")
    p.add_argument("run", help="run directory")
    p.add_argument("id", type=int, nargs="?", help="architecture id (or give --rank)")
    add_rank_options(p)
    p.add_argument("--out", help="file to write (default: standard output)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..graphjson import to_node_link, write_graph
    from ..rundir import check_output, load_architectures

    if args.out:
        check_output(args.out, force=args.force)
    [(_, _, dag)] = load_architectures(args.run, [architecture_id(args, args.run, "export")])
    if args.out:
        write_graph(dag, args.out)
    else:
        json.dump(to_node_link(dag), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    return 0
