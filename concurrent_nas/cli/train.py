"""``cnas train RUN``: train sampled architectures and baselines, record accuracy."""

from __future__ import annotations

import sys

from ..errors import CnasError
from .common import parse_int_list

#: TrainConfig fields whose flag is the field itself; the rest need a mapping (below).
CONFIG_FIELDS = ("epochs", "batch_size", "weight_decay", "seed", "workers")
#: TrainConfig fields whose flag names what they hold (``--seed`` is the run seed of `cnas sample`).
CONFIG_FLAGS = {"seed": "--model-seed", "workers": "--loader-workers"}


def register(sub) -> None:
    from ..training.config import AUGMENTATIONS, TrainConfig
    from .common import MODEL_SEED_HELP, TORCH_THREADS_HELP, add_compile_options, add_deprecated_aliases, add_options

    default = TrainConfig()
    first = default.phases[0]
    p = sub.add_parser(
        "train",
        help="train architectures of a run (and CifarNet / ResNet-50) on an image data set",
        description="Compile architectures of RUN for the data set, train each with SGD, "
        "evaluate top-1 on the test split every epoch. Writes RUN/accuracy.parquet, "
        "RUN/history.parquet and a checkpoint per model every epoch under RUN/checkpoints/, each keyed "
        "by a short hash of the configuration (settings in RUN/train_configs.json), so other --lr, "
        "--model-seed, ... train beside earlier ones; re-running the same command resumes where it stopped.",
    )
    p.add_argument("run", help="run directory made by `cnas sample`")
    p.add_argument("--ids", help="comma-separated architecture ids (default all; 'none' for baselines only)")
    p.add_argument("--dataset", required=True, help="cifar10 | flowers102 | digits | folder:PATH")
    p.add_argument("--data-dir", help="where cifar10 / flowers102 live (default data/<dataset>)")
    p.add_argument("--image-size", type=int, help="square input size (default 32 for cifar10, 16 for digits, 224 otherwise)")
    p.add_argument("--baseline", action="append", default=[], metavar="NAME",
                   help="also train a reference network: cifarnet | resnet50 (repeatable or comma-separated)")
    p.add_argument("--schedule", choices=("constant", "paper"), default="constant",
                   help="constant: --lr/--momentum throughout; paper: the paper's recipe "
                   "(CIFAR-10 100 epochs lr 1e-3 m 0.9; Flowers-102 300 epochs, lr 5e-4 m 0.95 after epoch 100)")
    add_options(p, TrainConfig, fields=CONFIG_FIELDS, flags=CONFIG_FLAGS, helps={
        "epochs": "epochs, or the schedule's with --schedule paper",
        "seed": MODEL_SEED_HELP,
    })  # fmt: skip
    # Not 1:1 with TrainConfig: --lr/--momentum build its phases, --augment's default
    # depends on the data set, --device 'auto' is resolved here.
    p.add_argument("--lr", type=float, help=f"learning rate of --schedule constant (default {first.lr})")
    p.add_argument("--momentum", type=float, help=f"SGD momentum of --schedule constant (default {first.momentum})")
    p.add_argument("--augment", choices=AUGMENTATIONS,
                   help="training augmentation (default flip-crop, none for digits)")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default: cuda if available)")
    p.add_argument("--torch-threads", dest="threads", type=int, default=0, help=TORCH_THREADS_HELP)
    p.add_argument("--match-params", metavar="BASELINE|N",
                   help="size each architecture's stem width and channel cap so its parameter count is within "
                   "10%% of this baseline's (cifarnet | resnet50, built for the data set) or of N parameters "
                   "(e.g. 1.76M); --stem-channels/--channel-cap give the starting ratio")
    p.add_argument("--restart", action="store_true", help="discard checkpoints and train from scratch")
    add_compile_options(p, skip=("image_size", "in_channels", "num_classes"))
    add_deprecated_aliases(p, {"--seed": "--model-seed", "--workers": "--loader-workers",
                               "--threads": "--torch-threads"})
    p.set_defaults(func=run)


def config_from_args(args, dataset: str):
    """The :class:`TrainConfig` named by the options (schedule, epochs, lr, ...).

    Flags left out keep TrainConfig's defaults; TrainConfig checks the values.
    """
    from ..training.config import Phase, TrainConfig, paper_schedule
    from ..training.loop import resolve_device
    from .common import options_from_args

    mapped = {}
    if args.schedule == "paper":
        for flag, value in (("--lr", args.lr), ("--momentum", args.momentum)):
            if value is not None:
                raise CnasError(f"{flag} conflicts with --schedule paper (which fixes it); drop one of them")
        epochs, mapped["phases"] = paper_schedule(dataset)
        if args.epochs is None:
            mapped["epochs"] = epochs
    elif args.lr is not None or args.momentum is not None:
        first = TrainConfig().phases[0]
        lr = first.lr if args.lr is None else args.lr
        momentum = first.momentum if args.momentum is None else args.momentum
        mapped["phases"] = (Phase(0, lr, momentum),)
    mapped["augment"] = args.augment or ("none" if dataset == "digits" else "flip-crop")
    mapped["device"] = str(resolve_device(args.device))
    return options_from_args(args, TrainConfig, **mapped)


def run(args) -> int:
    from ..rundir import require_run
    from ..training.experiment import check_request
    from .common import compile_settings_from_args

    require_run(args.run)
    ids = None
    if args.ids is not None:
        ids = [] if args.ids.strip().lower() == "none" else parse_int_list(args.ids, "--ids")
    baselines = tuple(b.strip() for item in args.baseline for b in item.split(",") if b.strip())
    kind = "folder" if args.dataset.startswith("folder:") else args.dataset
    # Everything cheap is validated before the data set is read (minutes for big ones).
    settings = compile_settings_from_args(args)
    check_request(args.run, ids=ids, baselines=baselines, match_params=args.match_params)
    if args.threads < 0:
        raise CnasError(f"--torch-threads must be >= 0, got {args.threads}")
    config = config_from_args(args, kind)

    from ..training.data import describe, load_dataset
    from ..training.experiment import train_run

    from ..placement.threads import use_threads

    use_threads(args.threads)
    data = load_dataset(args.dataset, args.data_dir, image_size=args.image_size)
    print(f"{describe(data)}; {config.epochs} epochs on {config.device}", file=sys.stderr)
    from .progress import training_heartbeat

    try:
        with training_heartbeat() as report:
            table = train_run(
                args.run, data, config, ids=ids, baselines=baselines, settings=settings,
                match_params=args.match_params, restart=args.restart, progress=True, report=report,
            )  # fmt: skip
    except KeyboardInterrupt:
        print(
            "cnas: interrupted; finished epochs are checkpointed, run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    config = f" (config {table['config'].iloc[0]}; `cnas top {args.run} --by top1 --where config=...` ranks one)" \
        if len(table) else ""
    print(f"{args.run}/accuracy.parquet: {len(table)} model(s) on {data.name}{config}")
    return 0
