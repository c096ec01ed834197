"""``cnas search``: multi-objective architecture search (Optuna) into a search directory."""

from __future__ import annotations

import shlex
import sys


def register(sub) -> None:
    from ..search.objectives import SAMPLERS, SearchConfig
    from ..shapes import CompileSettings
    from .common import COMPILE_FLAGS, add_deprecated_aliases, add_options

    p = sub.add_parser(
        "search",
        help="search the generators' space for the Pareto front of latency, accuracy and params",
        description="Multi-objective search (Optuna: NSGA-II by default) over generator family and "
        "parameters, nodes, orientation, staging, merge, widths and seed. The study lives in OUT_DIR "
        "(or --storage, shared by several processes); the same command resumes a killed search. "
        "Writes OUT_DIR/trials.parquet, pareto.parquet, front/ (a run directory), pareto.png, summary.md.",
    )
    p.add_argument("--out-dir", dest="out", default="runs/search", help="search directory (default runs/search)")
    p.add_argument("--trials", type=int, default=100,
                   help="finished trials the study should hold, over all processes (default 100)")
    p.add_argument("--storage", help="Optuna storage URL shared by several processes "
                   "(sqlite:///PATH, postgresql://..., journal:PATH; default a journal file in OUT_DIR)")
    p.add_argument("--set", action="append", metavar="KEY=SPEC",
                   help="change a dimension of the space: a,b,c or LOW:HIGH[:STEP] (e.g. generator=dp,ws "
                   "or nodes=40); repeatable; see --space")
    p.add_argument("--space", action="store_true", help="print the search space (with --set) and exit")
    p.add_argument("--compare-dir", dest="baseline", metavar="DIR", help="another search directory (e.g. --sampler random) "
                   "drawn beside this one in pareto.png")
    add_options(p, SearchConfig, choices={"sampler": SAMPLERS}, flags={"seed": "--sampler-seed"},
                title="objectives and constraints")
    add_options(p, CompileSettings, fields=("image_size", "num_classes"), flags=COMPILE_FLAGS,
                title="fixed network settings")
    add_deprecated_aliases(p, {"--out": "--out-dir", "--seed": "--sampler-seed", "--baseline": "--compare-dir"})
    p.set_defaults(func=run)


def run(args) -> int:
    from ..search import search
    from ..search.objectives import SearchConfig
    from ..search.space import space_from_settings
    from ..shapes import CompileSettings
    from .common import options_from_args, options_given

    space = space_from_settings(args.set, options_from_args(args, CompileSettings))
    if args.space:
        width = max(map(len, space.describe()))
        for name, domain in space.describe().items():
            print(f"{name:<{width}}  {domain}")
        return 0
    progress = SearchProgress(sys.stderr)
    given = options_given(args, SearchConfig)
    objectives = given.pop("objectives", SearchConfig.objectives)
    try:
        result = search(space, objectives, args.trials, out=args.out, storage=args.storage, progress=progress,
                        command=shlex.join(["cnas", *args.argv]), baseline=args.baseline, **given)
    finally:
        progress.close()
    feasible = int(result.trials["feasible"].sum()) if len(result.trials) else 0
    print(f"{result.out}: {len(result.trials)} trials ({feasible} feasible, {result.ran} run now); "
          f"front of {len(result.pareto)} in {result.front_run}; see {result.out}/summary.md")
    return 0


def best_text(best: dict[str, float]) -> str:
    """``latency 1.23, accuracy -70.1`` (the best value of each objective so far)."""
    return ", ".join(f"{name} {value:.4g}" for name, value in best.items()) or "no feasible trial yet"


class SearchProgress:
    """The search's ``progress`` callback on the one progress mechanism of every command
    (:func:`.progress.progress_bar`): a bar on a terminal, heartbeat lines elsewhere, with
    the best value of each objective so far; off a terminal also a last line at the end.
    """

    def __init__(self, stream):
        self.stream, self.bar, self.last = stream, None, ""

    def __call__(self, done: int, budget: int, best: dict[str, float]) -> None:
        from .progress import progress_bar

        if self.bar is None:
            self.bar = progress_bar(budget, "search", unit="trial", stream=self.stream)
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix_str(best_text(best))
        self.last = f"search: {done}/{budget} trials; best {best_text(best)}"

    def close(self) -> None:
        if self.bar is None:
            return
        self.bar.close()
        if not self.stream.isatty():
            print(self.last, file=self.stream, flush=True)
