"""``cnas train RUN``: train sampled architectures and baselines, record accuracy."""

from __future__ import annotations

import sys

from ..errors import CnasError
from .common import parse_int_list

DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_MOMENTUM = 10, 0.01, 0.9


def register(sub) -> None:
    from .common import add_compile_options

    p = sub.add_parser(
        "train",
        help="train architectures of a run (and CifarNet / ResNet-50) on an image data set",
        description="Compile architectures of RUN for the data set, train each with SGD, "
        "evaluate top-1 on the test split every epoch. Writes RUN/accuracy.parquet, "
        "RUN/history.parquet and a checkpoint per model every epoch under RUN/checkpoints/; "
        "re-running the same command resumes where it stopped.",
    )
    p.add_argument("run", help="run directory made by `cnas sample`")
    p.add_argument("--ids", help="comma-separated architecture ids (default all; 'none' for baselines only)")
    p.add_argument("--dataset", required=True, help="cifar10 | flowers102 | digits | folder:PATH")
    p.add_argument("--data-dir", help="where cifar10 / flowers102 live (default data/<dataset>)")
    p.add_argument("--image-size", type=int, help="square input size (default 32 for cifar10/digits, 224 otherwise)")
    p.add_argument("--baseline", action="append", default=[], metavar="NAME",
                   help="also train a reference network: cifarnet | resnet50 (repeatable or comma-separated)")
    p.add_argument("--schedule", choices=("constant", "paper"), default="constant",
                   help="constant: --lr/--momentum throughout; paper: the paper's recipe "
                   "(CIFAR-10 100 epochs lr 1e-3 m 0.9; Flowers-102 300 epochs, lr 5e-4 m 0.95 after epoch 100)")
    p.add_argument("--epochs", type=int, help=f"epochs (default {DEFAULT_EPOCHS}, or the schedule's)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--lr", type=float, help=f"learning rate of --schedule constant (default {DEFAULT_LR})")
    p.add_argument("--momentum", type=float, help=f"SGD momentum of --schedule constant (default {DEFAULT_MOMENTUM})")
    p.add_argument("--weight-decay", type=float, default=0.0, help="SGD weight decay (default 0)")
    p.add_argument("--augment", choices=("none", "flip-crop"),
                   help="training augmentation (default flip-crop, none for digits)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, data order, augmentation (default 0)")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default: cuda if available)")
    p.add_argument("--workers", type=int, default=0, help="processes decoding image files (default 0)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads of torch (default: torch's choice; 1 is fastest on a busy machine)")
    p.add_argument("--restart", action="store_true", help="discard checkpoints and train from scratch")
    add_compile_options(p, skip=("image_size", "in_channels", "num_classes"))
    p.set_defaults(func=run)


def config_from_args(args, dataset: str):
    """The :class:`TrainConfig` named by the options (schedule, epochs, lr, ...)."""
    from ..training.loop import Phase, TrainConfig, paper_schedule, resolve_device

    if args.schedule == "paper":
        for flag, value in (("--lr", args.lr), ("--momentum", args.momentum)):
            if value is not None:
                raise CnasError(f"{flag} conflicts with --schedule paper (which fixes it); drop one of them")
        epochs, phases = paper_schedule(dataset)
    else:
        epochs = DEFAULT_EPOCHS
        lr = DEFAULT_LR if args.lr is None else args.lr
        momentum = DEFAULT_MOMENTUM if args.momentum is None else args.momentum
        phases = (Phase(0, lr, momentum),)
    augment = args.augment or ("none" if dataset == "digits" else "flip-crop")
    return TrainConfig(
        epochs=args.epochs if args.epochs is not None else epochs,
        batch_size=args.batch_size,
        phases=phases,
        weight_decay=args.weight_decay,
        seed=args.seed,
        augment=augment,
        device=str(resolve_device(args.device)),
        workers=args.workers,
    )


def run(args) -> int:
    from ..rundir import require_run
    from .common import compile_settings_from_args


    require_run(args.run)
    ids = None
    if args.ids is not None:
        ids = [] if args.ids.strip().lower() == "none" else parse_int_list(args.ids, "--ids")
    baselines = tuple(b.strip() for item in args.baseline for b in item.split(",") if b.strip())
    if args.dataset.startswith("folder:"):
        kind = "folder"
    else:
        kind = args.dataset
    # Everything cheap is validated before the data set is read (minutes for big ones).
    settings = compile_settings_from_args(args)
    from ..rundir import load_architectures
    from ..training.baselines import BASELINES

    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise CnasError(f"unknown baseline '{unknown[0]}'; choose from {', '.join(BASELINES)}")
    if ids == [] and not baselines:
        raise CnasError("nothing to train: --ids none and no --baseline")
    if ids != []:
        load_architectures(args.run, ids)

    from ..training.data import describe, load_dataset
    from ..training.runner import train_run

    if args.threads < 0:
        raise CnasError(f"--threads must be >= 0, got {args.threads}")
    config = config_from_args(args, kind)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.data_dir, image_size=args.image_size)
    print(f"{describe(data)}; {config.epochs} epochs on {config.device}", file=sys.stderr)
    try:
        table = train_run(
            args.run, data, config, ids=ids, baselines=baselines, settings=settings,
            restart=args.restart, progress=True, report=print,
        )  # fmt: skip
    except KeyboardInterrupt:
        print(
            "cnas: interrupted; finished epochs are checkpointed, run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    print(f"{args.run}/accuracy.parquet: {len(table)} model(s) on {data.name}")
    return 0
