"""Train the architectures of a run directory (and baselines) into run tables.

This is the I/O edge of training: it compiles each architecture for the data set,
trains it with :func:`~concurrent_nas.training.loop.train_model`, checkpoints under
``RUN/checkpoints/<dataset>/<config>/<model>/last.pt`` and keeps two tables up to date
after every model (``accuracy.parquet``) and every epoch (``history.parquet``).

``<config>`` is a short hash of the training configuration
(:meth:`~.config.TrainConfig.config_hash`: schedule, batch size, weight decay, seed,
augmentation, compile settings, ``--match-params``); its settings are kept in
``RUN/train_configs.json``. Rows are keyed by (dataset, config, arch_id, generator), so
one run holds several configurations side by side: the same configuration again
replaces (and resumes) its own rows, another one adds rows. Tables written before the
hash existed get ``config`` ``-`` the first time the run is trained again, and their
checkpoints resume when they hold the configuration asked for.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import dag as dagmod
from ..errors import CnasError
from ..rundir import (
    ACCURACY,
    CHECKPOINTS,
    HISTORY,
    atomic_output,
    check_writable,
    load_architectures,
    require_run,
    run_lock,
    upsert_table,
    write_table,
)
from .baselines import BASELINES
from .data import ImageData, dataset_key
from .loop import CHECKPOINT, TrainConfig, count_flops, count_parameters, derive_seed, train_model

ACCURACY_KEYS = ["dataset", "config", "arch_id", "generator"]
HISTORY_KEYS = [*ACCURACY_KEYS, "epoch"]
# Baselines are not rows of architectures.parquet; they get negative ids.
BASELINE_IDS = {name: -(i + 1) for i, name in enumerate(BASELINES)}
#: Settings of each configuration hash trained in a run: {hash: settings}.
TRAIN_CONFIGS = "train_configs.json"
#: The ``config`` of rows written before configurations were hashed.
LEGACY_CONFIG = "-"


@dataclass(frozen=True)
class Candidate:
    """One network to train: its table identity, checkpoint folder name and builder."""

    arch_id: int
    generator: str
    nodes: int
    tag: str
    build: Callable[[], object]
    identity: dict
    settings: object = None  # CompileSettings of a compiled architecture, None for baselines


def check_baselines(baselines: tuple[str, ...]) -> None:
    """Raise :class:`CnasError` naming the first of ``baselines`` not in ``BASELINES``."""
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise CnasError(f"unknown baseline '{unknown[0]}'; choose from {', '.join(BASELINES)}")


def check_request(
    run: str | Path,
    *,
    ids: list[int] | None = None,
    baselines: tuple[str, ...] = (),
    match_params: str | int | None = None,
) -> None:
    """Check what :func:`train_run` is asked to train without reading any data set.

    Reading a data set can take minutes, so ``cnas train`` calls this first.

    Raises
    ------
    CnasError
        For a missing run, an unknown baseline (also as ``match_params``), nothing to
        train (``ids == []`` and no baselines), or an id the run does not hold.
    """
    from .capacity import parse_target

    run = require_run(run)
    check_baselines(baselines)
    if isinstance(match_params, str):
        parse_target(match_params)
    if ids == [] and not baselines:
        raise CnasError("nothing to train: --ids none and no --baseline")
    if ids != []:
        load_architectures(run, ids)


def candidates(
    run: str | Path,
    data: ImageData,
    *,
    ids: list[int] | None = None,
    baselines: tuple[str, ...] = (),
    settings=None,
    seed: int = 0,
    match_params: str | int | None = None,
) -> list[Candidate]:
    """The networks ``cnas train`` would train, without building any of them.

    Architecture ``i`` is compiled with ``settings`` adapted to the data set (image size,
    3 channels, classes) and initial weights seeded by ``(seed, i)``; baselines are
    named ``baseline-<name>`` in the ``generator`` column, ``nodes`` 0. With
    ``match_params`` (a baseline's name or a parameter count) each architecture's stem
    width and channel cap are chosen by :func:`~.capacity.match_channels`, all of them
    before anything is trained, so an unreachable target fails with nothing written.
    """
    from ..shapes import CompileSettings
    from .capacity import match_channels, parameter_target

    check_baselines(baselines)
    settings = dataclasses.replace(
        settings or CompileSettings(),
        image_size=data.image_size, in_channels=3, num_classes=data.num_classes,
    )  # fmt: skip
    found: list[Candidate] = []
    archs = [] if ids == [] else load_architectures(run, ids)
    target = None if match_params is None else parameter_target(match_params, data.num_classes, data.image_size)
    for arch_id, generator, dag in archs:
        arch_settings = settings
        if target is not None:
            try:
                arch_settings = match_channels(dag, settings, target)
            except CnasError as exc:
                raise CnasError(f"--match-params {match_params}: architecture {arch_id}: {exc}") from None

        def build(dag=dag, arch_id=arch_id, settings=arch_settings):
            from ..compiler import build_network

            return build_network(dag, settings, init_seed=derive_seed(seed, 0, arch_id))

        nodes = dagmod.block_count(dag)
        # A checkpoint resumes only for the same architecture, data and settings.
        identity = {
            "model": f"{generator}:{dagmod.edge_list(dag)}:{sorted(v for v, s in dag.nodes(data='stage') if s)}",
            "settings": dataclasses.asdict(arch_settings),
            "dataset": data.name,
        }
        found.append(Candidate(arch_id, generator, nodes, f"arch-{arch_id:05d}", build, identity, arch_settings))
    for name in baselines:

        def build_base(name=name):
            import torch

            from .baselines import build_baseline

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(derive_seed(seed, 1, -BASELINE_IDS[name]))
                return build_baseline(name, data.num_classes, data.image_size)

        identity = {"model": name, "image_size": data.image_size, "dataset": data.name}
        found.append(Candidate(BASELINE_IDS[name], f"baseline-{name}", 0, f"baseline-{name}", build_base, identity))
    return found


def upsert(run: Path, name: str, rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Replace the rows of table ``name`` that share ``keys`` with ``rows``; write atomically."""
    return upsert_table(run, name, rows, keys, made_by="cnas train")


def schedule_name(config: TrainConfig) -> str:
    """A short text form of the learning-rate schedule, e.g. ``0:1e-3/0.9,100:5e-4/0.95``."""
    return ",".join(f"{p.start}:{p.lr:g}/{p.momentum:g}" for p in config.phases)


def configuration(
    config: TrainConfig, settings=None, match_params: str | int | None = None, image_size: int | None = None
) -> tuple[str, dict]:
    """The hash naming what ``train_run`` would train with these options, and its settings.

    ``image_size`` is the data set's input side (the compile settings' own is replaced by it).
    """
    from ..shapes import CompileSettings

    extra = {"settings": dataclasses.asdict(settings or CompileSettings()),
             "match_params": "" if match_params is None else str(match_params), "image_size": image_size}
    return config.config_hash(**extra), {**config.fingerprint(), **extra}


def adopt_legacy_tables(run: Path) -> None:
    """Give ``config`` :data:`LEGACY_CONFIG` to accuracy/history tables written before it existed."""
    for name, keys in ((ACCURACY, ACCURACY_KEYS), (HISTORY, HISTORY_KEYS)):
        if (run / name).exists():
            table = pd.read_parquet(run / name)
            legacy = "config" not in table.columns and len(table)
            # Only a table that was ours before hashes: a damaged one (key columns missing)
            # is left as it is, for upsert to refuse by name instead of rewriting it.
            if legacy and all(k in table.columns for k in keys if k != "config"):
                write_table(table.assign(config=LEGACY_CONFIG), run / name)


def adopt_legacy_checkpoint(legacy: Path, ckpt: Path, fingerprint: dict) -> None:
    """Move ``legacy`` (the layout before config hashes) to ``ckpt`` if it holds this configuration.

    So a run trained before the hashes resumes the same command where it stopped; a
    checkpoint of another configuration stays where it is, unused.
    """
    if ckpt.exists() or not (legacy / CHECKPOINT).is_file():
        return
    import torch

    try:
        saved = torch.load(legacy / CHECKPOINT, map_location="cpu", weights_only=True).get("fingerprint")
    except Exception:  # unreadable: left for the user, as any other damaged file
        return
    if saved == fingerprint:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        legacy.rename(ckpt)


def record_configuration(run: Path, config_id: str, described: dict) -> None:
    """Add ``described`` under ``config_id`` to ``RUN/train_configs.json`` (atomically)."""
    path = run / TRAIN_CONFIGS
    known = json.loads(path.read_text()) if path.exists() else {}
    if known.get(config_id) == described:
        return
    known[config_id] = described
    with atomic_output(path, what="training configurations") as tmp:
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")


def train_run(
    run: str | Path,
    data: ImageData,
    config: TrainConfig,
    *,
    ids: list[int] | None = None,
    baselines: tuple[str, ...] = (),
    settings=None,
    match_params: str | int | None = None,
    restart: bool = False,
    progress: bool = False,
    report: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Train architectures of ``run`` (all, or ``ids``) and ``baselines`` on ``data``.

    Parameters
    ----------
    run : str or Path
        A run directory made by ``cnas sample``.
    data : ImageData
    config : TrainConfig
    ids : list of int, optional
        Architecture ids; ``None`` trains all, ``[]`` none (baselines only).
    baselines : tuple of str
        Names from ``BASELINES``.
    settings : CompileSettings, optional
        Channels, staging and merge of the compiled architectures (image size and
        classes come from the data set).
    match_params : str or int, optional
        Size every architecture's channels to this many parameters (±10 %): a baseline's
        name (its count for this data set) or a number; see :mod:`.capacity`.
    restart : bool
        Discard existing checkpoints instead of resuming from them.
    progress : bool
        tqdm bars on a terminal.
    report : callable, optional
        Receives one line per finished model.

    Returns
    -------
    pandas.DataFrame
        The rows of ``accuracy.parquet`` written by this call.
    """
    run = check_writable(require_run(run), why=" (nothing was trained)")
    found = candidates(run, data, ids=ids, baselines=baselines, settings=settings, seed=config.seed,
                       match_params=match_params)
    if not found:
        raise CnasError("nothing to train: give --ids or --baseline")
    config_id, described = configuration(config, settings, match_params, data.image_size)
    # One training process per run: two would each upsert the tables from their own copy.
    with run_lock(run, "trained"):
        adopt_legacy_tables(run)
        record_configuration(run, config_id, described)
        key = dataset_key(data.name)
        rows = []
        for cand in found:
            ckpt = run / CHECKPOINTS / key / config_id / cand.tag
            if restart and ckpt.exists():
                shutil.rmtree(ckpt)
            if not restart:
                adopt_legacy_checkpoint(ckpt.parent.parent / cand.tag, ckpt, {**config.fingerprint(), **cand.identity})
            model = cand.build()
            params = count_parameters(model)
            flops = count_flops(model, data.image_size)
            # `name` (the checkpoint folder: arch-00003, baseline-cifarnet) tells baselines apart
            # without decoding their negative arch_id.
            ident = {"arch_id": cand.arch_id, "name": cand.tag, "generator": cand.generator, "nodes": cand.nodes,
                     "dataset": data.name, "config": config_id}

            def write_epoch(record: dict, ident=ident) -> None:
                upsert(run, HISTORY, pd.DataFrame([{**ident, **record}]), HISTORY_KEYS)

            result = train_model(
                model, data, config, checkpoint_dir=ckpt, on_epoch=write_epoch, progress=progress,
                desc=f"{cand.tag}", identity=cand.identity,
            )  # fmt: skip
            history = pd.DataFrame(result.history)
            row = {
                **ident,
                "kind": "baseline" if cand.arch_id < 0 else "sampled",
                "epochs": config.epochs,
                "top1": result.top1,
                "best_top1": result.best_top1,
                "params": params,
                "flops": flops,
                "acc_per_mparam": result.top1 / (params / 1e6),
                "image_size": data.image_size,
                "batch_size": config.batch_size,
                "schedule": schedule_name(config),
                "weight_decay": config.weight_decay,
                "augment": config.augment,
                "seed": config.seed,
                "device": str(config.device),
                "seconds_per_epoch": float(history["seconds"].median()),
                # What the compiled architecture was built with (widths differ per model
                # under --match-params); empty / 0 for baselines.
                "merge": cand.settings.merge if cand.settings else "",
                "stem_channels": cand.settings.stem_channels if cand.settings else 0,
                "channel_cap": cand.settings.channel_cap if cand.settings else 0,
                "match_params": str(match_params) if match_params is not None else "",
            }
            upsert(run, ACCURACY, pd.DataFrame([row]), ACCURACY_KEYS)
            rows.append(row)
            if report is not None:
                resumed = f", resumed after epoch {result.resumed_from}" if result.resumed_from else ""
                widths = f"stem {row['stem_channels']} / cap {row['channel_cap']}, " if cand.settings else ""
                report(
                    f"{cand.tag} ({cand.generator}): top-1 {result.top1:.2f}% (best {result.best_top1:.2f}%), "
                    f"{params / 1e6:.3f} M params, {flops / 1e6:.1f} MFLOPs, {widths}"
                    f"{row['seconds_per_epoch']:.1f} s/epoch{resumed}"
                )
            del model
        return pd.DataFrame(rows)
