"""One ``cnas latency`` experiment as a plain function: the table of a run, measured and resumed.

:func:`latency_run` measures every architecture of a run directory (or one JSON graph)
on the options' units, placements and transports, writes each row to ``latency.parquet``
as soon as it exists and, called again, measures only the rows the table lacks.
:func:`latency_unit` is one machine's unit of a run spread over several machines
(``cnas latency --master HOST:PORT --rank R``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import dag as dagmod
from ..errors import CnasError, check_integer
from ..resources import check_memory
from ..rundir import LATENCY, Run, check_writable, load_architectures, read_table, run_lock, write_table
from ..shapes import CompileSettings
from .assign import make_assignment
from .distributed import make_config, probe_transfers
from .failures import describe
from .measure import KEY, assignment_column, measure_architecture, measured_row
from .options import LatencyOptions, check_image_size
from .plan import build_plan
from .ports import check_port
from .simulate import TransferModel
from .worker import run_unit

#: The command named in errors about a latency table (and that re-makes it).
MADE_BY = "cnas latency"


@dataclass(frozen=True)
class LatencyResult:
    """What :func:`latency_run` leaves behind.

    Attributes
    ----------
    table : pandas.DataFrame
        Every row of the latency table: those it already held and the new ones.
    path : Path
        Where the table is (``RUN/latency.parquet``, or ``GRAPH.latency.parquet`` beside
        a JSON graph).
    """

    table: pd.DataFrame
    path: Path


def latency_path(source: str | Path) -> Path:
    """The latency table of a run directory, or the one beside a JSON graph file."""
    source = Path(source)
    return source / LATENCY if source.is_dir() else source.with_suffix(".latency.parquet")


def previous_rows(path: Path) -> pd.DataFrame:
    """The rows a latency table already holds (none if there is no table yet)."""
    if not path.exists():
        return pd.DataFrame()
    return read_table(path.parent, path.name, made_by=MADE_BY)


def scored_parts(run: Run | None, arch_id: int, vertices: Iterable[int]) -> Callable[[int], list[int] | None]:
    """units -> the partition of the lowest-CS option ``cnas score`` found (``None``: none scored)."""
    order = sorted(vertices)

    def parts(units: int) -> list[int] | None:
        best = run.best_parts(arch_id, units) if run is not None else None
        return None if best is None else [best[v] for v in order]

    return parts


#: Memory one unit process holds before it builds its part (torch imported, spawned):
#: 144 MiB unique set size measured for ``python -c "import torch, torch.distributed"``
#: (torch 2.13 CPU, Python 3.11); rounded up.
UNIT_PROCESS_BYTES = 160 * 2**20


def check_units_fit(archs, options: LatencyOptions) -> None:
    """Refuse, before anything is measured, unit counts that some architecture or this host cannot run.

    Every measured or simulated unit needs a vertex of its own, and every measured unit
    is a process of its own (:data:`UNIT_PROCESS_BYTES` at least).

    Raises
    ------
    CnasError
        Naming the architecture with too few vertices, or the memory estimate and what
        the host has available.
    """
    wanted = max((*options.units, *options.simulate_units))
    for arch_id, _, dag in archs:
        if wanted > dag.number_of_nodes():
            raise CnasError(f"architecture {arch_id} has {dag.number_of_nodes()} vertices, too few for {wanted} "
                            "units (each unit needs one); ask for fewer --units/--simulate-units")
    check_memory(max(options.units) * UNIT_PROCESS_BYTES, f"the processes of --units {max(options.units)}",
                 "measure fewer units (simulate more with --simulate-units)")


def latency_run(
    source: str | Path,
    options: LatencyOptions | None = None,
    settings: CompileSettings | None = None,
    *,
    ids: list[int] | None = None,
    progress: Callable[[int], object] | None = None,
) -> LatencyResult:
    """Measure (and simulate) the architectures of ``source``; resume where a table exists.

    Parameters
    ----------
    source : str or Path
        A run directory (``cnas sample``) or a node-link JSON graph file.
    options : LatencyOptions, optional
        What to measure (default ``LatencyOptions()``).
    settings : CompileSettings, optional
        How to build the networks (default ``CompileSettings()``); its ``image_size`` is
        the image measured.
    ids : list of int, optional
        Architectures to measure (default: all).
    progress : callable, optional
        ``progress(total)`` returns a tqdm-like bar (a context manager with ``update`` and
        ``set_postfix_str``), e.g. ``lambda n: tqdm(total=n)``.

    Returns
    -------
    LatencyResult
        The whole table and its path. Rows are written as they are measured, so an
        interruption loses nothing finished.

    Notes
    -----
    The ``kahypar`` placement uses the partition of the lowest concurrency score in the
    run's ``scores.parquet`` for each unit count (:meth:`.rundir.Run.best_parts`), and
    runs KaHyPar where there is none. Transfer models are probed once per call, and only
    when a row needs one (a resumed run may not).
    """
    options = options if options is not None else LatencyOptions()
    settings = settings if settings is not None else CompileSettings()
    check_image_size(settings.image_size)
    archs = load_architectures(source, ids)
    check_units_fit(archs, options)
    run = Run(source) if Path(source).is_dir() else None
    out = latency_path(source)
    check_writable(out.parent, why=" (nothing was measured)")
    # One measuring process per run: two would each rewrite the table from their own rows.
    with run_lock(run.path, "measured") if run is not None else nullcontext():
        table = previous_rows(out)
        existing = {tuple(rec[k] for k in KEY): rec for rec in table.to_dict("records")}
        rows = table.to_dict("records")

        def emit(row: dict) -> None:
            rows.append(row)
            write_table(pd.DataFrame(rows), out)  # after every row: an interruption loses nothing

        models: dict[str, TransferModel] = {}

        def transfer_model(transport: str) -> TransferModel | None:
            if transport == "nccl":
                return None
            if transport not in models:
                models[transport], _ = probe_transfers(transport, timeout_s=options.timeout_s)
            return models[transport]

        with (progress(len(archs)) if progress is not None else nullcontext()) as bar:
            for arch_id, generator, dag in archs:
                measure_architecture(
                    arch_id, generator, dag, settings, options, done=set(existing), existing=existing,
                    emit=emit, transfer_model=transfer_model, parts=scored_parts(run, arch_id, dag),
                    progress=bar.set_postfix_str if bar is not None else lambda what: None,
                )
                if bar is not None:
                    bar.update(1)
        return LatencyResult(pd.DataFrame(rows), out)


def latency_unit(
    source: str | Path,
    options: LatencyOptions,
    settings: CompileSettings,
    *,
    master: str,
    rank: int,
    ids: list[int] | None = None,
    on_row: Callable[[dict], None] = lambda row: None,
) -> list[dict]:
    """Be unit ``rank`` of a run whose units sit on several machines.

    Every machine calls this with the same arguments but its own ``rank``; unit 0 listens
    on ``master``. The largest of ``options.units`` units run the first placement over
    the first transport, one architecture after the other; unit 0 measures, adds a row
    per architecture to the run's ``latency.parquet`` (baselines come from a local
    :func:`latency_run`) and passes it to ``on_row``.

    Returns
    -------
    list of dict
        Unit 0's rows (empty on the other units).

    Raises
    ------
    CnasError
        A bad rank or ``master``, a transport that cannot span machines, or a unit that
        failed (named, with the architecture).
    """
    check_image_size(settings.image_size)
    units = max(options.units)
    if not 0 <= rank < units:
        raise CnasError(f"--rank must be in 0..{units - 1} for --units {','.join(map(str, options.units))}")
    if "shm" in options.transports:
        raise CnasError("--transport shm only works for units on one host; use gloo with --master")
    host, _, port = master.rpartition(":")
    if not port.isdigit():
        raise CnasError(f"--master expects HOST:PORT, got '{master}'")
    port = check_integer(int(port), "--master's port", low=1, high=65535)
    if rank == 0:
        check_port(host or "127.0.0.1", port)
    placement, transport = options.placements[0], options.transports[0]
    archs = load_architectures(source, ids)
    check_units_fit(archs, options)
    out = Path(source) / LATENCY if Path(source).is_dir() and rank == 0 else None
    rows = []
    for arch_id, generator, dag in archs:
        assignment = make_assignment(dag, units, placement, settings=settings, seed=options.seed)
        plan = build_plan(dag, assignment, units)
        cfg = make_config(dag, settings, plan, transport=transport, threads=options.threads,
                          repeats=options.repeats, warmup=options.warmup, seed=options.seed,
                          timeout_s=options.timeout_s, master=master)
        try:
            result = run_unit(rank, cfg)
        except CnasError:
            raise
        except Exception as exc:  # a peer vanished, timed out or disagrees: one line, exit 2
            raise CnasError(
                f"unit {rank} failed on architecture {arch_id}: {describe(exc)[:300]}; "
                f"check that every unit runs the same command and reaches {master}"
            ) from None
        if result is None:
            continue
        row = measured_row(result, arch_id=arch_id, generator=generator, nodes=dagmod.block_count(dag),
                           units=units, placement=placement, transport=transport, threads=options.threads,
                           image_size=settings.image_size, repeats=options.repeats)
        row.update(master=master, baseline=None, single_unit_ms=None, speedup=None,
                   assignment=assignment_column(plan))
        rows.append(row)
        if out is not None:
            write_table(pd.concat([previous_rows(out), pd.DataFrame([row])], ignore_index=True), out)
        on_row(row)
    return rows
