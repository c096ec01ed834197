"""Sample a population of architectures into one tidy table, and into a run directory."""

from __future__ import annotations

import datetime
import json
import math
import platform
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from . import dag as dagmod
from .errors import CnasError, check_integer
from .resources import check_memory
from .generators import generate, get_generator, params_json


def architecture_record(dag) -> dict[str, Any]:
    """The row of ``architectures.parquet`` that describes one DAG."""
    profile = dagmod.width_profile(dag)
    return {
        "arch_id": int(dag.graph["index"]),
        "generator": dag.graph["generator"],
        "params": params_json(dag.graph["params"]),
        "nodes": int(dag.graph["nodes"]),
        "seed": int(dag.graph["seed"]),
        "vertices": dag.number_of_nodes(),
        "edges": dag.number_of_edges(),
        "depth": len(profile),
        "max_width": max(profile),
        "width_profile": profile,
        "edge_list": [list(e) for e in dagmod.edge_list(dag)],
        "stage_vertices": dagmod.stage_vertices(dag),
    }


def sample_architectures(
    generator: str,
    count: int,
    *,
    nodes: int = 40,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    start: int = 0,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Generate ``count`` architectures and return them as one table.

    Architecture i is ``generate(generator, nodes, seed, index=i, **params)``, so any row
    can be rebuilt on its own.

    Parameters
    ----------
    generator : str
        Registered generator name.
    count : int
        Number of architectures (at least 1).
    nodes, seed, params
        As for :func:`concurrent_nas.generate`.
    start : int, default 0
        Index of the first architecture.
    progress : callable, optional
        Called with 1 after each architecture (e.g. ``tqdm.update``).

    Returns
    -------
    pandas.DataFrame
        One row per architecture; columns documented in the README.
    """
    count, nodes, seed, start = check_sample_numbers(count, nodes, seed, start)
    spec = get_generator(generator)
    resolved = spec.resolve_params(params)
    rows = []
    for i in range(start, start + count):
        rows.append(architecture_record(generate(generator, nodes, seed, index=i, **resolved)))
        if progress is not None:
            progress(1)
    return pd.DataFrame(rows)


#: Manifest entries that determine the sample: equal ones mean the same architectures.
SAMPLE_KEYS = ("generator", "params", "nodes", "count", "seed")


#: Blocks per architecture the generators are asked for at most: their time and memory
#: grow with the edges, and ER at 4000 blocks already has 1.6 M edges (14 s and about
#: 500 MiB for one architecture, measured on the development host).
MAX_NODES = 4000


def check_sample_numbers(count, nodes, seed, start=0) -> tuple[int, int, int, int]:
    """``count``, ``nodes``, ``seed`` and ``start`` as ints, each checked for its range."""
    return (
        check_integer(count, "count (--n)", low=1),
        check_integer(nodes, "nodes (--nodes)", low=1, high=MAX_NODES),
        check_integer(seed, "seed (--seed)"),
        check_integer(start, "start"),
    )


def check_table_fits(one: pd.DataFrame, count: int) -> None:
    """Refuse a sample whose table would not fit in memory, estimated from one architecture.

    The table is held three times while it is written (rows, frame, Arrow buffers).
    """
    check_memory(3 * count * int(one.memory_usage(deep=True).sum()), f"{count} architectures",
                 "sample fewer (--n) and split the run")


def results_in(out: str | Path) -> list[str]:
    """Names of what ``out`` holds besides the sample itself (tables and checkpoints of later commands)."""
    from .rundir import ARCHITECTURES, MANIFEST

    out = Path(out)
    if not out.is_dir():
        return []
    return sorted(p.name for p in out.iterdir()
                  if p.name not in (ARCHITECTURES, MANIFEST) and not p.name.endswith((".tmp", ".lock")))


def write_run(
    out: str | Path,
    generator: str,
    count: int,
    *,
    nodes: int = 40,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    force: bool = False,
    discard_results: bool = False,
    progress: Callable[[int], None] | None = None,
    command: str | None = None,
) -> pd.DataFrame:
    """Sample ``count`` architectures into a new run directory ``out`` (what ``cnas sample`` does).

    The directory holds ``architectures.parquet`` (:func:`sample_architectures`) and
    ``manifest.json`` (generator, resolved parameters, seeds, versions). It is built aside
    and renamed into place, so an interrupted call leaves nothing behind, and nothing is
    created before the count and one architecture have been checked.

    Parameters
    ----------
    out : str or Path
        The run directory to create.
    generator, count, nodes, seed, params, progress
        As for :func:`sample_architectures`.
    force : bool
        Replace an existing ``out`` made with other settings (otherwise it is an error).
        Without it, an ``out`` already sampled with the same generator, parameters,
        nodes, count and seed is kept as it is: the call reads its table and changes
        nothing (``table.attrs["unchanged"]`` is then true).
    discard_results : bool
        With ``force``, also replace a run that holds results of later commands
        (scores, latency, training, ...); without it such a run is refused, naming them.
    command : str, optional
        The command line that made the run, recorded in the manifest (and named by
        :class:`~concurrent_nas.rundir.Run` when a table is missing).

    Returns
    -------
    pandas.DataFrame
        The ``architectures.parquet`` table.
    """
    from . import __version__
    from .rundir import ARCHITECTURES, MANIFEST, new_run_dir, read_manifest, read_table, write_json, write_table

    count, nodes, seed, _ = check_sample_numbers(count, nodes, seed)
    resolved = get_generator(generator).resolve_params(params)
    pilot = sample_architectures(generator, 1, nodes=nodes, seed=seed, params=resolved)
    check_table_fits(pilot, count)
    manifest = {
        "package_version": __version__,
        "python": platform.python_version(),
        "generator": generator,
        "params": resolved,
        # The blocks the generator built (a fixed reference network ignores ``nodes``),
        # so the manifest agrees with the rows.
        "nodes": int(pilot["nodes"].iloc[0]),
        "count": count,
        "seed": seed,
        "arch_seeds": "architecture i uses numpy SeedSequence([seed, i])",
    }
    if command is not None:
        manifest["command"] = command
    try:
        json.dumps(manifest, allow_nan=False, default=str)
    except ValueError:
        bad = next((f"{k}={v}" for k, v in resolved.items() if isinstance(v, float) and not math.isfinite(v)), "")
        raise CnasError(f"parameter {bad or 'value'} is not a finite number; give a finite one") from None
    if not force and Path(out, MANIFEST).is_file():
        old = read_manifest(out)
        same = {k: json.loads(json.dumps(manifest[k], default=str)) for k in SAMPLE_KEYS}
        differ = next((k for k in SAMPLE_KEYS if old.get(k) != same[k]), None)
        if differ is None:
            table = read_table(out, ARCHITECTURES, made_by=f"cnas sample --out-dir {out} --force")
            table.attrs["unchanged"] = True
            return table
        raise CnasError(f"{out} already exists, sampled with {differ} {json.dumps(old.get(differ))} "
                        f"(not {json.dumps(same[differ])}); pass --force to replace it or choose another --out-dir")
    if force and not discard_results:
        kept = results_in(out)
        if kept:
            raise CnasError(f"{out} holds results of later commands ({', '.join(kept)}) that --force would delete; "
                            "add --discard-results to replace them too, or choose another --out-dir")
    with new_run_dir(out, force=force) as tmp:
        table = sample_architectures(generator, count, nodes=nodes, seed=seed, params=resolved, progress=progress)
        write_table(table, tmp / ARCHITECTURES)
        created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        write_json({**manifest, "created": created}, tmp / MANIFEST)
    return table
