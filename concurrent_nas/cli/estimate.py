"""``cnas estimate RUN``: a cheap accuracy estimate per architecture, for search."""

from __future__ import annotations

from ..errors import CnasError
from .common import parse_int_list


def register(sub) -> None:
    from ..training.estimate import DEFAULT_METHOD, ESTIMATES, METHODS, EstimateConfig
    from .common import MODEL_SEED_HELP, TORCH_THREADS_HELP, add_compile_options, add_deprecated_aliases, add_options

    p = sub.add_parser(
        "estimate",
        help="estimate each architecture's accuracy cheaply (short training or a zero-cost proxy)",
        description="Compile architectures of RUN for the data set and estimate how well each will "
        "classify with one method: short-training (test top-1 after a few epochs) or a zero-cost "
        "proxy scored at initialisation (synflow, naswot, grad-norm, jacob-cov) or the parameter "
        f"count. Higher is better. Writes RUN/{ESTIMATES}, one row per architecture and method.",
    )
    p.add_argument("run", help="run directory made by `cnas sample`")
    p.add_argument("--method", default=DEFAULT_METHOD, metavar="M",
                   help=f"{' | '.join(METHODS)} (default {DEFAULT_METHOD})")
    p.add_argument("--ids", help="comma-separated architecture ids (default all)")
    add_options(p, EstimateConfig, flags={"seed": "--model-seed"},
                helps={"epochs": "epochs of the short-training proxy", "seed": MODEL_SEED_HELP})
    p.add_argument("--torch-threads", dest="threads", type=int, default=0, help=TORCH_THREADS_HELP)
    add_compile_options(p, skip=("image_size", "in_channels", "num_classes"))
    add_deprecated_aliases(p, {"--seed": "--model-seed", "--threads": "--torch-threads"})
    p.set_defaults(func=run)


def run(args) -> int:
    from ..rundir import require_run
    from ..training.estimate import ESTIMATES, EstimateConfig, check_method
    from .common import compile_settings_from_args, options_from_args, progress_bar

    # Everything cheap is checked before torch is imported or a data set read.
    check_method(args.method)
    require_run(args.run)
    ids = None if args.ids is None else parse_int_list(args.ids, "--ids")
    if args.threads < 0:
        raise CnasError(f"--torch-threads must be >= 0, got {args.threads}")
    settings = compile_settings_from_args(args)
    config = options_from_args(args, EstimateConfig)

    from ..rundir import load_architectures
    from ..training.estimate import estimate_run

    total = len(load_architectures(args.run, ids))
    from ..placement.threads import use_threads

    use_threads(args.threads)
    with progress_bar(total, f"estimate {args.method}", unit="arch") as bar:
        table = estimate_run(args.run, args.method, ids=ids, settings=settings, config=config, progress=bar.update)
    if len(table):
        print(
            f"{args.run}/{ESTIMATES}: {len(table)} architecture(s), {args.method} on {config.dataset} at "
            f"{config.image_size} px; estimate median {table['estimate'].median():.4g} "
            f"[{table['estimate'].min():.4g}, {table['estimate'].max():.4g}], "
            f"{table['seconds'].median():.2f} s per architecture"
        )
    return 0
