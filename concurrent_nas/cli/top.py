"""``cnas top RUN --by cs@4``: the best architectures of a run by any column of its tables.

Also the ``--rank N --by COLUMN`` options that ``cnas compile`` and ``cnas export`` take
in place of an architecture id (:func:`add_rank_options`, :func:`architecture_id`).
"""

from __future__ import annotations

from ..errors import CnasError

BY_HELP = ("column to rank by: COLUMN@UNITS for a table with units (cs@4, comm_bytes@8, median_ms@2), "
           "else COLUMN (top1, estimate); an unknown one lists what the run has")


def register(sub) -> None:
    p = sub.add_parser(
        "top",
        help="the best architectures of a run by a column of its tables (cs@4, top1, ...)",
        description="Rank the architectures of a run by one column of its tables (scores: the best "
        "eps option per unit count; latency, accuracy, estimates, params and any other table with "
        "arch_id). Lower values rank first, except for accuracy, estimates, entropy and speedups. An "
        "architecture with several rows (placements, datasets, methods) counts with its best one; "
        "narrow them with --where.",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--by", default="cs@4", help=BY_HELP + " (default cs@4)")
    p.add_argument("-k", type=int, default=10, help="how many to list (default 10)")
    _add_filters(p)
    p.set_defaults(func=run)


def _add_filters(p) -> None:
    p.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE",
                   help="keep only rows of the ranked table with this value (repeatable), e.g. placement=kahypar")
    p.add_argument("--best", choices=("low", "high"), help="which end ranks first (default: by the column)")


def add_rank_options(p) -> None:
    """``--rank N`` and ``--by COLUMN`` (with ``--where``, ``--best``) for a command taking an id."""
    group = p.add_argument_group("choose the architecture by rank instead of id")
    group.add_argument("--rank", type=int, help="the architecture ranked N (1 = best) by --by")
    group.add_argument("--by", default="cs@4", help=BY_HELP + " (default cs@4)")
    _add_filters(group)


def architecture_id(args, run: str, command: str) -> int:
    """The id given, or the one at ``--rank``; a one-line error when both or neither apply."""
    if args.rank is None:
        if args.id is None:
            raise CnasError(f"give an architecture id or a rank: `cnas {command} {run} ID` (ids start at 0) "
                            f"or `cnas {command} {run} --rank 1 --by cs@4`")
        return args.id
    if args.id is not None:
        raise CnasError(f"give an architecture id or --rank, not both (got id {args.id} and --rank {args.rank})")
    from ..analysis.ranking import architecture_at_rank

    return architecture_at_rank(run, args.rank, args.by, where=args.where, best=args.best)


def run(args) -> int:
    from ..analysis.ranking import top_architectures
    from ..analysis.tables import markdown_table

    ranked = top_architectures(args.run, args.by, k=args.k, where=args.where, best=args.best)
    print(markdown_table(ranked))
    return 0
