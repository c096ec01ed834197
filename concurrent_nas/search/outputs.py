"""What a search leaves in its directory, all derived from the study alone.

``trials.parquet`` (every trial), ``pareto.parquet`` (the front), ``front/`` (the front as
an ordinary run directory), ``pareto.png`` and ``summary.md``. Each is rewritten whole
from the storage after every call, so the outputs of a resumed or shared study always
describe all of it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..rundir import ARCHITECTURES, MANIFEST, atomic_output, new_run_dir, write_json, write_table
from ..sampling import architecture_record
from .mutate import MUTANT_ATTR, trial_dag
from .objectives import UNITS_OF, SearchConfig
from .pareto import pareto_mask
from .space import SearchSpace

TRIALS = "trials.parquet"
PARETO = "pareto.parquet"
FRONT_DIR = "front"
FIGURE = "pareto.png"
SUMMARY = "summary.md"
#: The search's :class:`SearchConfig`, for readers of the directory such as ``cnas report``.
CONFIG = "search.json"
#: The trial attribute holding its candidate key, worker, params, FLOPs and seconds per objective.
INFO_ATTR = "info"
#: Columns of ``trials.parquet`` besides the objectives and the space's dimensions.
TRIAL_COLUMNS = ("trial", "state", "feasible", "infeasible", "worker", "cached", "duration_s", "params", "flops")


@dataclass
class SearchResult:
    """What :func:`search` returns: the study and the tables it wrote.

    Attributes
    ----------
    out : Path
        The search directory.
    study : optuna.Study
        The study (``study.best_trials`` is the Pareto front).
    trials : pandas.DataFrame
        ``trials.parquet``: one row per trial.
    pareto : pandas.DataFrame
        ``pareto.parquet``: the feasible, non-dominated trials.
    ran : int
        Trials this call finished (the rest were there before, or run by other processes).
    """

    out: Path
    study: object
    trials: pd.DataFrame
    pareto: pd.DataFrame
    ran: int

    @property
    def front_run(self) -> Path:
        """The front as an ordinary run directory (``cnas score/compile/latency/train`` take it)."""
        return self.out / FRONT_DIR


def trials_table(study, space: SearchSpace, config: SearchConfig) -> pd.DataFrame:
    """One row per trial: number, state, objectives, every dimension, seconds per objective."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        info = t.user_attrs.get(INFO_ATTR, {})
        row = {
            "trial": t.number,
            "state": t.state.name,
            "feasible": t.state.name == "COMPLETE",
            "infeasible": info.get("infeasible"),
            "worker": info.get("worker"),
            "cached": bool(info.get("cached", False)),
            "duration_s": t.duration.total_seconds() if t.duration is not None else np.nan,
            "params": info.get("params"),
            "flops": info.get("flops"),
            "pred_speedup": info.get("pred_speedup"),
            "cp_bound": info.get("cp_bound"),
            "placement": info.get("placement"),
            "mutated_from": t.user_attrs.get(MUTANT_ATTR, {}).get("parent"),
            "mutation": t.user_attrs.get(MUTANT_ATTR, {}).get("changes"),
        }
        values = t.values if t.values is not None else [np.nan] * len(config.objectives)
        row.update({name: float(v) for name, v in zip(config.objectives, values)})
        row.update({f"seconds_{k}": v for k, v in info.get("seconds", {}).items()})
        row.update({name: t.params.get(name) for name in space.dims})
        row["key"] = info.get("key")
        rows.append(row)
    table = pd.DataFrame(rows)
    if not len(table):
        return table
    table["mutated_from"] = table["mutated_from"].astype("Int64")
    table["mutation"] = table["mutation"].astype("string")
    # A dimension holds numbers or text, never both, so Parquet can store it; integer
    # dimensions stay integers beside trials that chose nothing yet.
    for name in space.dims:
        if table[name].map(lambda v: isinstance(v, str)).any():
            table[name] = table[name].astype("string")
        elif table[name].dropna().map(lambda v: isinstance(v, int)).all():
            table[name] = table[name].astype("Int64")
    return table


def pareto_table(trials: pd.DataFrame, config: SearchConfig) -> pd.DataFrame:
    """The feasible trials no other feasible trial dominates, best first objective first."""
    feasible = trials[trials["feasible"]] if len(trials) else trials
    if not len(feasible):
        return feasible
    front = feasible[pareto_mask(feasible[list(config.objectives)].to_numpy(), config.directions)]
    # One network chosen twice (its key is the network's digest) is one architecture.
    front = front.drop_duplicates("key")
    ascending = config.directions[0] == "minimize"
    return front.sort_values([config.objectives[0], "trial"], ascending=[ascending, True]).reset_index(drop=True)


def write_front_run(out: Path, pareto: pd.DataFrame, chosen: dict[int, dict], space: SearchSpace,
                    config: SearchConfig, command: str | None, mutants: dict[int, dict] | None = None) -> None:  # fmt: skip
    """The front's architectures as a run directory ``out/front`` (arch_id = trial number).

    ``chosen`` maps a trial number to the values it chose (``FrozenTrial.params``): the
    table's columns may have been widened to floats by trials that chose nothing yet.
    ``mutants`` maps the second stage's trials to their ``mutant`` attribute: their rows
    keep the parent's generator, parameters and seed, with ``mutated_from`` (the parent
    trial, -1 for none) and their own ``edge_list``, which is what run readers rebuild.
    """
    from .. import __version__

    mutants = mutants or {}
    records, settings = [], {}
    for row in pareto.to_dict("records"):
        trial = int(row["trial"])
        candidate = space.candidate(chosen[trial])
        dag = trial_dag(space, chosen[trial], mutants.get(trial))
        dag.graph["index"] = trial
        record = architecture_record(dag)
        record["mutated_from"] = int(mutants[trial]["parent"]) if trial in mutants else -1
        # Prefixed: the table's own "params" column is the generator's parameters.
        record.update({f"search_{name}": float(row[name]) for name in config.objectives})
        record["param_count"] = int(row["params"])
        record["compile_settings"] = json.dumps(dataclasses.asdict(candidate.settings), sort_keys=True)
        records.append(record)
        settings[int(row["trial"])] = dataclasses.asdict(candidate.settings)
    manifest = {
        "package_version": __version__,
        "generator": "search",
        "count": len(records),
        "arch_seeds": "arch_id is the search trial; each row's generator, params, nodes and seed rebuild it, "
                      "except rows with mutated_from >= 0 (edge mutants of that trial's DAG): their edge_list",
        "objectives": list(config.objectives),
        "compile_settings": settings,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if command is not None:
        manifest["command"] = command
    with new_run_dir(out / FRONT_DIR, force=True) as tmp:
        write_table(pd.DataFrame(records), tmp / ARCHITECTURES)
        write_json(manifest, tmp / MANIFEST)


def pareto_figure(trials: pd.DataFrame, pareto: pd.DataFrame, config: SearchConfig,
                  baseline: pd.DataFrame | None = None, *, label: str = "search", baseline_label: str = "random"):
    """Scatter of every feasible trial with the front drawn as a step line (first two objectives).

    ``baseline`` (another search's trials, e.g. random sampling) is drawn beside it in its
    own colour, with its own front.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(config.objectives)
    x, y = (names[0], names[1]) if len(names) > 1 else ("trial", names[0])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    groups = [(label, trials, pareto, "tab:red")]
    if baseline is not None and len(baseline):
        base_front = pareto_table(baseline, config)
        groups.append((baseline_label, baseline, base_front, "tab:blue"))
    for name, table, front, colour in groups:
        feasible = table[table["feasible"]]
        ax.scatter(feasible[x], feasible[y], s=8, alpha=0.35, color=colour, label=f"{name}: {len(feasible)} trials")
        if len(front):
            front = front.sort_values(x)
            ax.step(front[x], front[y], where="post", color=colour, lw=1.5)
            ax.scatter(front[x], front[y], s=24, color=colour, edgecolor="black", lw=0.5,
                       label=f"{name} front: {len(front)}")
    ax.set_xlabel(f"{x} ({UNITS_OF.get(x, 'number')})")
    ax.set_ylabel(f"{y} ({UNITS_OF.get(y, '')})")
    ax.set_title(f"Pareto front, {config.sampler}, {config.units} units of {config.profile}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def summary_text(out: Path, trials: pd.DataFrame, pareto: pd.DataFrame, chosen: dict[int, dict],
                 space: SearchSpace, config: SearchConfig, ran: int) -> str:  # fmt: skip
    """``summary.md``: counts, the front, time per objective and what to run next.

    ``chosen`` is trial number -> the values it chose, as for :func:`write_front_run`.
    """
    states = trials["state"].value_counts().to_dict() if len(trials) else {}
    lines = [
        f"# Search {out.name}",
        "",
        f"Sampler {config.sampler}, objectives {', '.join(f'{o} ({d})' for o, d in zip(config.objectives, config.directions))}, "
        f"{config.units} units" + (f", at most {config.max_params:g} params" if config.max_params else "") + ".",
        f"Trials: {len(trials)} ({', '.join(f'{n} {s.lower()}' for s, n in sorted(states.items()))}); "
        f"{ran} run by the last call. Infeasible trials are the pruned ones.",
        *([f"Second stage: {int(trials['mutated_from'].notna().sum())} edge mutants of front DAGs "
           f"({config.mutate_moves} moves each; `mutated_from`, `mutation` in `{TRIALS}`)."]
          if len(trials) and trials["mutated_from"].notna().any() else []),
        *([f"Latency is predicted (`predict_latency`) on {config.units} units of the `{config.profile}` profile."]
          if "latency" in config.objectives else []),
        *([f"Accuracy is the `{config.accuracy_method}` estimate on digits at {config.accuracy_image_size} px."]
          if "accuracy" in config.objectives else []),
        "",
        f"## Pareto front ({len(pareto)} architectures, `{FRONT_DIR}/` is their run directory)",
        "",
    ]
    shown = ["trial", "generator", "nodes", *config.objectives, *(["params"] if "params" not in config.objectives else [])]
    if len(pareto):  # plain text: analysis.tables.markdown_table sits above this package
        lines += ["```", pareto[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"), "```"]
    finished = trials[trials["state"].isin(["COMPLETE", "PRUNED"])] if len(trials) else trials
    seconds = [c for c in trials.columns if c.startswith("seconds_")]
    if len(finished) and seconds:
        total = finished[seconds].sum()
        share = ", ".join(f"{c[len('seconds_'):]} {v / total.sum():.0%}" for c, v in total.items())
        minutes = finished["duration_s"].sum() / 60
        lines += ["", f"Time: {finished['duration_s'].sum():.1f} s of trials, "
                  f"{len(finished) / minutes if minutes else float('nan'):.1f} trials/min per process; "
                  f"share per objective: {share}."]
    lines += ["", "## Next", "", f"    cnas score {out / FRONT_DIR} --units {config.units}", "",
              "Front architectures differ in their compile settings (also in `front/manifest.json`), "
              "so each is measured with its own flags:", ""]
    for trial in pareto["trial"] if len(pareto) else []:
        settings = space.candidate(chosen[int(trial)]).settings
        lines.append(f"    cnas latency {out / FRONT_DIR} --ids {trial} --units 1,2 --placement predicted "
                     + " ".join(compile_flags(settings)))
    return "\n".join(lines) + "\n"


def compile_flags(settings) -> list[str]:
    """The command-line flags that give ``settings`` (those that differ from the defaults)."""
    from ..shapes import CompileSettings

    default = CompileSettings()
    flags = []
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if value != getattr(default, field.name):
            flag = "--classes" if field.name == "num_classes" else "--" + field.name.replace("_", "-")
            flags += [flag, str(value)]
    return flags


def write_outputs(out: Path, study, space: SearchSpace, config: SearchConfig, *, command: str | None = None,
                  ran: int = 0, baseline: pd.DataFrame | None = None):  # fmt: skip
    """Write every output of the search directory from ``study``; return the :class:`SearchResult`.

    ``baseline`` (another search's ``trials.parquet``, e.g. random sampling) is drawn
    beside this one in the figure.
    """
    out = Path(out)
    trials = trials_table(study, space, config)
    pareto = pareto_table(trials, config)
    if len(trials):
        write_table(trials, out / TRIALS)
        write_table(pareto, out / PARETO)
        write_json(dataclasses.asdict(config), out / CONFIG)
        chosen = {t.number: t.params for t in study.get_trials(deepcopy=False)}
        mutants = {t.number: t.user_attrs[MUTANT_ATTR] for t in study.get_trials(deepcopy=False)
                   if MUTANT_ATTR in t.user_attrs}
        write_front_run(out, pareto, chosen, space, config, command, mutants)
        fig = pareto_figure(trials, pareto, config, baseline)
        with atomic_output(out / FIGURE, what="Pareto figure") as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        import matplotlib.pyplot as plt

        plt.close(fig)
        with atomic_output(out / SUMMARY, what="summary") as tmp:
            Path(tmp).write_text(summary_text(out, trials, pareto, chosen, space, config, ran))
    return SearchResult(out, study, trials, pareto, ran)


def search_figure(run: str | Path):
    """The Pareto figure of the search whose front is run directory ``run``, or ``None``.

    ``cnas report`` calls it for every run it is given, so a search's ``front/`` gets
    the search drawn beside the paper's figures.
    """
    search_dir = Path(run).resolve().parent
    files = [search_dir / name for name in (CONFIG, TRIALS, PARETO)]
    if Path(run).name != FRONT_DIR or not all(f.is_file() for f in files):
        return None
    config = SearchConfig(**json.loads(files[0].read_text()))
    return pareto_figure(pd.read_parquet(files[1]), pd.read_parquet(files[2]), config)
