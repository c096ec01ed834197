"""The tables behind the figures: pure functions from run tables to tidy summaries.

Every function takes plain ``pandas.DataFrame`` objects (run tables concatenated over
runs, with a ``run`` column naming where each row came from) and returns a new frame.
Nothing here draws or touches files, so the figures, ``summary.md`` and a notebook all
read the same numbers.

Conventions
-----------
* An architecture's score for n units is its *best* option (lowest CS over the eps
  values scored), as in paper §3.3; :func:`best_options` picks those rows.
* MB means 10**6 bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import CnasError

BYTES_PER_MB = 1_000_000

#: Columns of ``scores.parquet`` the report reads (``parts`` only for the unit drawing).
SCORE_COLUMNS = ("arch_id", "generator", "nodes", "units", "eps", "cs", "comm_bytes", "entropy")
#: Columns of ``architectures.parquet`` the report reads.
ARCHITECTURE_COLUMNS = ("arch_id", "generator", "nodes", "width_profile")
#: Columns of ``latency.parquet`` the report reads.
LATENCY_COLUMNS = ("arch_id", "generator", "nodes", "units", "median_ms")
#: Columns of ``accuracy.parquet`` the report reads.
ACCURACY_COLUMNS = ("arch_id", "generator", "nodes", "dataset", "top1")

_KEYS = ["run", "arch_id"]


def missing_columns(frame: pd.DataFrame, required: Sequence[str]) -> list[str]:
    """Required column names that ``frame`` lacks, in the order given."""
    return [c for c in required if c not in frame.columns]


def best_options(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, architecture, units): the option with the lowest CS.

    Uses the ``best`` flag written by ``cnas score`` when present; otherwise (or for a
    table written by other code) takes the lowest CS, ties to the smallest eps.

    Parameters
    ----------
    scores : pandas.DataFrame
        ``scores.parquet`` rows, with a ``run`` column (added by the report loader).

    Returns
    -------
    pandas.DataFrame
        The chosen rows, sorted by run, generator, nodes, units, arch_id.
    """
    frame = scores if "run" in scores.columns else scores.assign(run="")
    if "best" in frame.columns:
        best = frame[frame["best"].astype(bool)]
    else:
        ordered = frame.sort_values([*_KEYS, "units", "cs", "eps"], kind="stable")
        best = ordered.groupby([*_KEYS, "units"], sort=False).head(1)
    best = best.sort_values(["run", "generator", "nodes", "units", "arch_id"], kind="stable")
    return best.reset_index(drop=True)


def _quantiles(values: pd.Series, qs: Sequence[float]) -> list[float]:
    return [float(v) for v in np.quantile(values.to_numpy(dtype=float), qs)]


def _summarise(best: pd.DataFrame, value: pd.Series, qs: Sequence[tuple[str, float]]) -> pd.DataFrame:
    rows = []
    frame = best.assign(_value=value.to_numpy())
    for (gen, nodes, units), group in frame.groupby(["generator", "nodes", "units"], sort=False):
        vals = group["_value"]
        row = {
            "generator": gen,
            "nodes": int(nodes),
            "units": int(units),
            "architectures": int(len(group)),
            "median": float(vals.median()),
            "mean": float(vals.mean()),
        }
        row.update(zip((name for name, _ in qs), _quantiles(vals, [q for _, q in qs])))
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["_order"] = out["generator"].map(generator_rank)
    out = out.sort_values(["nodes", "units", "_order", "generator"], kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


def cs_summary(best: pd.DataFrame) -> pd.DataFrame:
    """Concurrency score per generator x vertex count x units (paper Fig. 9).

    Columns ``generator, nodes, units, architectures, median, mean, q25, q75``.
    """
    return _summarise(best, best["cs"], [("q25", 0.25), ("q75", 0.75)])


def communication_summary(best: pd.DataFrame) -> pd.DataFrame:
    """Total communication in MB (10**6 bytes) of the best partition (paper Fig. 7).

    Columns ``generator, nodes, units, architectures, median, mean, q25, q75`` in MB.
    """
    return _summarise(best, best["comm_bytes"] / BYTES_PER_MB, [("q25", 0.25), ("q75", 0.75)])


def entropy_summary(best: pd.DataFrame) -> pd.DataFrame:
    """Normalised Shannon entropy of part weights (paper Fig. 12: 1 = balanced).

    Columns ``generator, nodes, units, architectures, median, mean, p1, q25, q75, p99``:
    the paper shows the median, the 25-75 % and the 1-99 % ranges.
    """
    return _summarise(
        best, best["entropy"], [("p1", 0.01), ("q25", 0.25), ("q75", 0.75), ("p99", 0.99)]
    )


def profile_matrix(profiles: Sequence[Sequence[int]]) -> np.ndarray:
    """Width profiles as one zero-padded matrix: row = architecture, column = depth level."""
    profiles = [list(p) for p in profiles]
    depth = max((len(p) for p in profiles), default=0)
    matrix = np.zeros((len(profiles), depth), dtype=float)
    for i, p in enumerate(profiles):
        matrix[i, : len(p)] = p
    return matrix


def width_depth_summary(architectures: pd.DataFrame) -> pd.DataFrame:
    """Depth and width of each population (paper Fig. 10).

    Depth counts levels from the input to the output (both included), width is the
    largest number of vertices on one level.

    Returns
    -------
    pandas.DataFrame
        ``generator, nodes, architectures, median_depth, median_max_width,
        mean_width_per_depth`` (mean over architectures of max width / depth).
    """
    rows = []
    for (gen, nodes), group in architectures.groupby(["generator", "nodes"], sort=False):
        depth = group["width_profile"].map(len).astype(float)
        width = group["width_profile"].map(max).astype(float)
        rows.append(
            {
                "generator": gen,
                "nodes": int(nodes),
                "architectures": int(len(group)),
                "median_depth": float(depth.median()),
                "median_max_width": float(width.median()),
                "mean_width_per_depth": float((width / depth).mean()),
            }
        )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["_order"] = out["generator"].map(generator_rank)
    out = out.sort_values(["nodes", "_order", "generator"], kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


#: Columns that, besides nodes and units, tell one latency configuration from another.
LATENCY_CONFIG = ("placement", "transport", "threads", "image_size", "source")


def distributed_latency(latency: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``latency.parquet`` where the network ran split over units.

    ``cnas latency`` also stores its baselines as rows (``placement == "single"``: the
    whole network in one process, with one or several threads); those are dropped here
    (every distributed row carries ``single_unit_ms`` for comparison). Adds ``config``, a
    label such as ``"kahypar over gloo"`` that keeps placements and transports apart.
    """
    frame = latency
    if "placement" in frame.columns:
        frame = frame[frame["placement"] != "single"]
    placement = frame["placement"].astype(str) if "placement" in frame.columns else pd.Series("", index=frame.index)
    if "transport" in frame.columns:
        config = placement + " over " + frame["transport"].astype(str)
    else:
        config = placement
    if "threads" in frame.columns:
        threads = frame["threads"].fillna(1).astype(int)
        config = config.where(threads == 1, config + ", " + threads.astype(str) + " threads/unit")
    return frame.assign(config=config.str.strip()).reset_index(drop=True)


def normalized_latency(latency: pd.DataFrame) -> pd.DataFrame:
    """Inference time of every architecture divided by FB's median (paper Fig. 8).

    Uses the distributed rows (:func:`distributed_latency`). Within each (nodes, units)
    and configuration (placement, transport, threads, image size, measured or simulated)
    every architecture's ``median_ms`` is divided by the median ``median_ms`` of the FB
    architectures of the same group, so FB sits at 1 and lower is faster. Groups without
    FB rows are dropped (there is nothing to normalise to).

    Returns
    -------
    pandas.DataFrame
        The latency rows that could be normalised, with ``config`` and ``normalized_time``.
    """
    frame = distributed_latency(latency)
    keys = ["nodes", "units", *(k for k in LATENCY_CONFIG if k in frame.columns)]
    fb = frame[frame["generator"] == "fb"]
    if fb.empty:
        return frame.iloc[0:0].assign(normalized_time=pd.Series(dtype=float))
    reference = fb.groupby(keys, dropna=False)["median_ms"].median().rename("_fb_ms").reset_index()
    merged = frame.merge(reference, on=keys, how="inner")
    merged["normalized_time"] = merged["median_ms"] / merged["_fb_ms"]
    return merged.drop(columns="_fb_ms").reset_index(drop=True)


def normalized_latency_summary(normalized: pd.DataFrame) -> pd.DataFrame:
    """Median and quartiles of ``normalized_time`` per configuration, generator, nodes, units."""
    parts = []
    for config, group in normalized.groupby("config", sort=True):
        table = _summarise(group, group["normalized_time"], [("q25", 0.25), ("q75", 0.75)])
        parts.append(table.assign(config=config))
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    return out[["config", *[c for c in out.columns if c != "config"]]]


def latency_scaling(latency: pd.DataFrame) -> pd.DataFrame:
    """Latency against the number of units (paper Fig. 13).

    One line per placement (and threads per unit), generator, vertex count, transport
    and source (measured, or simulated for more units than the host has): the median
    over architectures of each one's median latency, with the 10th and 90th percentiles.
    Every line starts at units = 1 with ``single_unit_ms`` (the whole network in one
    process with one thread, measured in the same invocation), which is also what the
    simulator is calibrated on.

    Returns
    -------
    pandas.DataFrame
        ``placement, generator, nodes, transport, source, units, architectures,
        median_ms, p10_ms, p90_ms``.
    """
    frame = distributed_latency(latency)
    placement = frame["placement"].astype(str) if "placement" in frame.columns else pd.Series("", index=frame.index)
    if "threads" in frame.columns:
        threads = frame["threads"].fillna(1).astype(int)
        placement = placement.where(threads == 1, placement + ", " + threads.astype(str) + " threads/unit")
    frame = frame.assign(
        placement=placement,
        transport=frame["transport"].astype(str) if "transport" in frame.columns else "",
        source=frame["source"] if "source" in frame.columns else "measured",
    )
    line = ["placement", "generator", "nodes", "transport", "source"]
    cols = [*line, "run", "arch_id", "units", "median_ms"]
    parts = [frame[cols]]
    if "single_unit_ms" in frame.columns:
        one = frame.dropna(subset=["single_unit_ms"]).drop_duplicates([*line, "run", "arch_id"])
        parts.insert(0, one.assign(units=1, median_ms=one["single_unit_ms"])[cols])
    frame = pd.concat(parts, ignore_index=True).drop_duplicates([*line, "run", "arch_id", "units"])
    rows = []
    for key, group in frame.groupby([*line, "units"], sort=True):
        p10, p90 = _quantiles(group["median_ms"], [0.1, 0.9])
        rows.append(
            {
                **dict(zip([*line, "units"], key)),
                "architectures": int(group[["run", "arch_id"]].drop_duplicates().shape[0]),
                "median_ms": float(group["median_ms"].median()),
                "p10_ms": p10,
                "p90_ms": p90,
            }
        )
    out = pd.DataFrame(rows)
    if len(out):
        out["nodes"] = out["nodes"].astype(int)
        out["units"] = out["units"].astype(int)
    return out


def accuracy_vs_score(accuracy: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of each trained architecture beside its concurrency score (paper Fig. 2).

    Joins on (run, arch_id, generator): one row per trained architecture, dataset and
    units, with ``top1`` and ``cs``.
    """
    left = accuracy.drop(columns=[c for c in ("nodes",) if c in accuracy.columns and c in best.columns])
    cols = [*_KEYS, "generator", "nodes", "units", "cs"]
    return left.merge(best[cols], on=[*_KEYS, "generator"], how="inner").reset_index(drop=True)


def accuracy_summary(joined: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, generator and units: architectures, median top-1 and median CS."""
    rows = []
    for (dataset, gen, units), group in joined.groupby(["dataset", "generator", "units"], sort=True):
        rows.append(
            {
                "dataset": dataset,
                "generator": gen,
                "units": int(units),
                "architectures": int(len(group)),
                "median_top1": float(group["top1"].median()),
                "median_cs": float(group["cs"].median()),
            }
        )
    return pd.DataFrame(rows)


def generator_rank(name: str) -> tuple[int, str]:
    """Sort key: registered generators in the registry's order (the paper's), others after by name."""
    from ..generators import list_generators

    order = list_generators()
    try:
        return (order.index(name), "")
    except ValueError:
        return (len(order), str(name))


def ordered_generators(names) -> list[str]:
    """Distinct generator names in the paper's order."""
    return sorted(set(names), key=generator_rank)


def require_columns(frame: pd.DataFrame, required: Sequence[str], where: str, made_by: str) -> None:
    """Raise a one-line :class:`CnasError` if ``frame`` lacks a required column."""
    missing = missing_columns(frame, required)
    if missing:
        raise CnasError(
            f"{where} lacks column(s) {', '.join(missing)}; re-create it with `{made_by}`"
        )


def markdown_table(frame: pd.DataFrame, float_format=lambda v: f"{v:.5g}") -> str:
    """``frame`` as a GitHub markdown table (no ``tabulate`` dependency).

    Parameters
    ----------
    frame : pandas.DataFrame
    float_format : callable, optional
        Formats float cells (default: 5 significant digits); other cells use ``str``.
    """
    def cell(value) -> str:
        return float_format(value) if isinstance(value, float) else str(value)

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


# -- ranking architectures (``cnas top``) -------------------------------------------------
#: Columns that identify or configure a row; never something to rank by.
KEY_COLUMNS = frozenset({
    "run", "arch_id", "generator", "nodes", "units", "eps", "best", "threads", "image_size", "repeats",
    "seed", "epochs", "index", "vertices", "longest_path", "empty_parts", "max_width",
})
#: Words of a column name where larger is better; every other column ranks low first.
HIGHER_IS_BETTER = frozenset({"top1", "top5", "accuracy", "acc", "estimate", "entropy", "speedup"})


def higher_is_better(column: str) -> bool:
    """Whether a larger ``column`` means a better architecture.

    True when one of the ``_``-separated words of its name is in :data:`HIGHER_IS_BETTER`
    (``top1``, ``best_top1``, ``acc_per_mparam``, ``pred_speedup``, ``speedup_same_cores``).
    """
    return not HIGHER_IS_BETTER.isdisjoint(column.split("_"))


def ranking_columns(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Every ``--by`` value the tables offer: ``COLUMN@UNITS`` where a table has units, else ``COLUMN``.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Table name -> rows keyed by ``arch_id`` (scores reduced to :func:`best_options`).
    """
    names: list[str] = []
    for frame in tables.values():
        for column in _metric_columns(frame):
            if "units" in frame.columns:
                names += [f"{column}@{int(u)}" for u in sorted(frame["units"].dropna().unique())]
            else:
                names.append(column)
    return list(dict.fromkeys(names))


def _metric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in KEY_COLUMNS and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])]


def parse_where(pairs: Sequence[str]) -> dict[str, str]:
    """``["placement=kahypar"]`` -> ``{"placement": "kahypar"}``, a one-line error otherwise."""
    where = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CnasError(f"--where expects COLUMN=VALUE, got '{pair}'")
        where[key.strip()] = value.strip()
    return where


def rank_architectures(
    tables: dict[str, pd.DataFrame],
    by: str,
    *,
    k: int | None = 10,
    where: dict[str, str] | None = None,
    best: str | None = None,
) -> pd.DataFrame:
    """The ``k`` best architectures by one column of a run's tables.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Table name -> its rows (``arch_id, generator, nodes`` and metric columns; the
        scores reduced to the best option per units with :func:`best_options`). The first
        table in order that has the column is used.
    by : str
        ``COLUMN@UNITS`` (e.g. ``cs@4``) for a table with a ``units`` column, else
        ``COLUMN`` (e.g. ``top1``).
    k : int or None, default 10
        How many to return (``None``: all).
    where : dict, optional
        ``{column: value}``: keep only rows whose column, as text, equals the value
        (e.g. ``{"placement": "kahypar"}``, ``{"method": "synflow"}``).
    best : {"low", "high"}, optional
        Which end ranks first; default :func:`higher_is_better` of the column.

    Returns
    -------
    pandas.DataFrame
        ``rank, arch_id, generator, nodes, <by>, rows``: rank 1 is the best; an
        architecture with several matching rows (placements, datasets, methods) is
        ranked by its best one and ``rows`` says how many there were. Ties go to the
        lower ``arch_id``. Rows with a negative ``arch_id`` (trained baselines) are left out.

    Raises
    ------
    CnasError
        An unknown column or unit count (the message lists what the tables offer), a
        ``where`` column the table lacks, or no row left.
    """
    column, _, units_text = by.partition("@")
    available = ranking_columns(tables)
    found = [(name, frame) for name, frame in tables.items() if column in _metric_columns(frame)]
    if not found:
        raise CnasError(f"--by {by}: no table has a numeric column '{column}'; choose from "
                        f"{', '.join(available) or 'nothing (score the run first: cnas score RUN)'}")
    name, frame = found[0]
    if "units" in frame.columns:
        if not units_text:
            raise CnasError(f"--by {by}: {name} has a value per unit count; say which, e.g. "
                            f"{', '.join(a for a in available if a.startswith(column + '@'))}")
        try:
            units = int(units_text)
        except ValueError:
            raise CnasError(f"--by {by}: units after '@' must be an integer, e.g. {column}@4") from None
        frame = frame[frame["units"] == units]
        if frame.empty:
            raise CnasError(f"--by {by}: {name} has no rows for {units} units; choose from "
                            f"{', '.join(a for a in available if a.startswith(column + '@'))}")
    elif units_text:
        raise CnasError(f"--by {by}: {name} has no units column; use --by {column}")
    for key, value in (where or {}).items():
        if key not in frame.columns:
            raise CnasError(f"--where {key}={value}: {name} has no column '{key}'; it has "
                            f"{', '.join(map(str, frame.columns))}")
        frame = frame[frame[key].astype(str) == value]
    frame = frame[(frame["arch_id"] >= 0) & frame[column].notna()]
    if frame.empty:
        raise CnasError(f"--by {by}: no architecture has a value" + (" matching --where" if where else ""))
    if best not in (None, "low", "high"):
        raise CnasError(f"--best must be low or high, got '{best}'")
    high = higher_is_better(column) if best is None else best == "high"
    ids = [c for c in ("generator", "nodes") if c in frame.columns]
    grouped = frame.groupby("arch_id", sort=True)
    out = grouped[column].max() if high else grouped[column].min()
    out = out.rename(by).to_frame()
    out["rows"] = grouped.size()
    out = out.join(grouped[ids].first()).reset_index()
    out = out.sort_values([by, "arch_id"], ascending=[not high, True], kind="stable")
    out.insert(0, "rank", range(1, len(out) + 1))
    out = out[["rank", "arch_id", *ids, by, "rows"]].reset_index(drop=True)
    return out if k is None else out.head(k)
