"""The search itself: an Optuna study over a :class:`SearchSpace`, resumable and shareable.

Optuna does the optimising (NSGA-II, TPE or random sampling) and keeps every trial in
its storage: a journal file inside the search directory by default, or any RDB URL
(``--storage``) that several processes, on several machines, share as one study. A
budget is the number of finished trials the *study* should hold, so a killed search
resumes with the same command, and processes sharing a study stop together.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import socket
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CnasError
from . import objectives as obj
from .objectives import SearchConfig
from .mutate import MUTANT_ATTR, mutate_edges, trial_dag
from .outputs import INFO_ATTR, TRIALS, SearchResult, write_outputs
from .pareto import pareto_mask
from .space import SearchSpace, network_digest

STUDY_NAME = "search"
STUDY_FILE = "study.journal"
RECORD_ATTR = "record"
# A trial whose process stopped sending heartbeats for this long is marked failed.
HEARTBEAT_S, GRACE_S = 10, 60
#: Mixed into the seed of the mutation stage, so its draws are not the sampler's.
MUTATION_STREAM = 2
#: Config fields that change what a trial's values mean; resuming with another value is refused.
RECORDED_FIELDS = ("objectives", "units", "profile", "max_params", "accuracy_method", "accuracy_epochs",
                   "accuracy_image_size")


def study_record(space: SearchSpace, config: SearchConfig) -> dict:
    """What a study was made with; a resumed search must match it."""
    fields = {f: getattr(config, f) for f in RECORDED_FIELDS}
    fields["objectives"] = list(config.objectives)
    return {"space": space.describe(), **fields}


def record_differences(old: dict, new: dict) -> list[str]:
    """``name: old -> new`` for every recorded setting that differs (space dimensions by name)."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if key == "space" and isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"space {d}: {a.get(d, 'absent')} -> {b.get(d, 'absent')}"
                      for d in sorted(set(a) | set(b)) if a.get(d) != b.get(d)]
        elif a != b:
            diffs.append(f"{key}: {_text(a)} -> {_text(b)}")
    return diffs


def _text(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def open_storage(url: str):
    """An Optuna storage for ``url`` with heartbeats, or a one-line error when it cannot be reached.

    ``journal:PATH`` opens Optuna's journal file; anything else is an RDB URL
    (``sqlite:///file.db``, ``postgresql://...``).
    """
    import optuna

    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            path = Path(url[len("journal:"):])
            if not path.parent.is_dir():
                raise FileNotFoundError(f"no directory {path.parent}")
            return JournalStorage(JournalFileBackend(str(path)))
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna, and what resuming needs
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    except Exception as exc:  # sqlalchemy, drivers and the file system each raise their own
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CnasError(f"cannot open --storage {url}: {reason[:200]}") from None


def make_sampler(config: SearchConfig, started_with: int):
    """The Optuna sampler of ``config``, seeded by (seed, trials already in the study).

    The second part keeps a resumed search from proposing its first trials again.
    """
    import optuna

    seed = int(np.random.SeedSequence([config.seed, started_with]).generate_state(1)[0])
    if config.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=config.population, seed=seed)
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    return optuna.samplers.RandomSampler(seed=seed)


def _finished(study, mutants: bool = False) -> tuple[int, int]:
    """(finished trials, feasible ones) in ``study``: the sampled ones, or with ``mutants`` the second stage's."""
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
              if (MUTANT_ATTR in t.user_attrs) == mutants]
    return len(trials), sum(t.state == TrialState.COMPLETE for t in trials)


def search(
    space: SearchSpace | None = None,
    objectives=("latency", "accuracy"),
    budget: int = 100,
    *,
    out: str | Path,
    storage: str | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    command: str | None = None,
    baseline: str | Path | None = None,
    **settings,
) -> SearchResult:
    """Search ``space`` for the Pareto front of ``objectives`` with ``budget`` finished trials.

    Parameters
    ----------
    space : SearchSpace, optional
        What trials choose from (default :class:`SearchSpace()`, printed by
        ``cnas search --space``).
    objectives : sequence of str
        Any of ``latency`` (predicted ms at ``units`` on ``profile``), ``accuracy`` (estimate),
        ``params``, in order.
    budget : int
        Finished trials (feasible or not) the study should hold. A study that already
        holds them runs nothing and only rewrites the outputs.
    out : str or Path
        The search directory: the study's journal file (unless ``storage``), ``trials.parquet``,
        ``pareto.parquet``, ``front/`` (a run directory), ``pareto.png``, ``summary.md``.
    storage : str, optional
        An Optuna storage URL shared by several processes (``sqlite:///...``,
        ``postgresql://...``, ``journal:PATH``).
    progress : callable, optional
        Called after every trial with (finished trials, budget, best value per objective).
    command : str, optional
        The command line, recorded in the front's manifest.
    baseline : str or Path, optional
        Another search directory (e.g. ``--sampler random`` at the same budget) whose
        trials the Pareto figure draws beside this search's.
    **settings
        Fields of :class:`SearchConfig` (``sampler``, ``units``, ``max_params``, ...).

    Returns
    -------
    SearchResult

    Raises
    ------
    CnasError
        On a bad objective, sampler or budget; an unreachable storage; a study in
        ``out``/``storage`` made with another space or objectives (the differences are
        named); no feasible trial in the first ``infeasible_after``. The study is left
        as it was in each case.

    Examples
    --------
    >>> import concurrent_nas as cnas                                          # doctest: +SKIP
    >>> result = cnas.search(objectives=("latency", "params"), budget=50, out="runs/s")  # doctest: +SKIP
    >>> result.pareto[["trial", "generator", "latency", "params"]]             # doctest: +SKIP
    """
    import optuna

    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise CnasError(f"--trials must be a positive integer, got {budget!r}")
    try:
        config = SearchConfig(objectives=tuple(objectives), **settings)
    except TypeError as exc:
        raise CnasError(f"bad search setting: {exc}") from None
    space = space if space is not None else SearchSpace()
    record = study_record(space, config)
    baseline_trials = read_baseline(baseline)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CnasError(f"{out} is a file; give a directory for the search")
    # The journal file, not SQLite, by default: one append per change instead of a
    # transaction per write, several times less storage wall time per trial here.
    url = storage or f"journal:{out / STUDY_FILE}"
    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
    store = open_storage(url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        old = optuna.load_study(study_name=STUDY_NAME, storage=store)
    except KeyError:
        old = None
    if old is not None:
        diffs = record_differences(old.user_attrs.get(RECORD_ATTR, {}), record)
        if diffs:
            raise CnasError(f"the study in {url} was made with other settings ({'; '.join(diffs)}); "
                            "use the same ones to resume, or another --out/--storage")
    out.mkdir(parents=True, exist_ok=True)
    started_with = len(old.trials) if old is not None else 0
    study = optuna.create_study(storage=store, study_name=STUDY_NAME, directions=config.directions,
                                sampler=make_sampler(config, started_with), load_if_exists=True)
    if old is None:
        study.set_user_attr(RECORD_ATTR, record)

    done, _ = _finished(study)
    ran = 0
    if done < budget:
        ran = _optimize(study, space, config, budget, progress)
    if _finished(study, mutants=True)[0] < config.mutate:
        ran += mutation_stage(study, space, config, budget, progress)
    return write_outputs(out, study, space, config, command=command, ran=ran, baseline=baseline_trials)


def read_baseline(baseline: str | Path | None) -> pd.DataFrame | None:
    """The ``trials.parquet`` of search directory ``baseline`` (``None`` for none)."""
    if baseline is None:
        return None
    path = Path(baseline) / TRIALS
    if not path.is_file():
        raise CnasError(f"--baseline {baseline} has no {TRIALS}; give a directory `cnas search` wrote")
    return pd.read_parquet(path)


def _cached_values(study) -> dict[str, tuple]:
    """Candidate key -> (values, user attrs) of the study's complete trials, to skip re-evaluation."""
    from optuna.trial import TrialState

    cache = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        info = t.user_attrs.get(INFO_ATTR, {})
        if "key" in info:
            cache[info["key"]] = (t.values, {"params": info.get("params"), "flops": info.get("flops")})
    return cache


def _optimize(study, space: SearchSpace, config: SearchConfig, budget: int, progress) -> int:
    """Run trials until the study holds ``budget`` finished ones; return how many this process ran."""
    import optuna

    cache = _cached_values(study)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    ran = 0
    stopped_infeasible = []

    def objective(trial):
        candidate = space.suggest(trial)
        key = candidate.network_key()
        info = {"key": key, "worker": worker}
        if key in cache:  # the same network again: same values, no cost
            values, known = cache[key]
            trial.set_user_attr(INFO_ATTR, {**info, **known, "cached": True})
            return list(values)
        evaluation = obj.evaluate(candidate, config)
        info.update(params=evaluation.params, flops=evaluation.flops, seconds=evaluation.seconds,
                    **evaluation.features)
        # One attribute, one write to the storage per trial.
        trial.set_user_attr(INFO_ATTR, {**info, "infeasible": evaluation.infeasible})
        if evaluation.infeasible:
            raise optuna.TrialPruned(evaluation.infeasible)
        values = [evaluation.values[o] for o in config.objectives]
        cache[key] = (values, {"params": evaluation.params, "flops": evaluation.flops})
        return values

    def after_trial(study, trial):
        nonlocal ran
        ran += 1
        done, feasible = _finished(study)
        if progress is not None:
            progress(done, budget + config.mutate, best_values(study, config))
        if done >= budget:
            study.stop()
        elif feasible == 0 and done >= config.infeasible_after:
            stopped_infeasible.append(done)
            study.stop()

    study.optimize(objective, n_trials=budget, callbacks=[after_trial], catch=())
    if stopped_infeasible:
        raise CnasError(infeasible_message(study, config, stopped_infeasible[0]))
    return ran


def mutation_stage(study, space: SearchSpace, config: SearchConfig, budget: int, progress=None) -> int:
    """The second stage: edge mutants of the front's DAGs until the study holds ``config.mutate``.

    Each mutant's parent is drawn uniformly from the current front (first-stage trials
    and mutants alike, one per network), mutated by ``config.mutate_moves`` edge moves
    (:func:`.mutate.mutate_edges`) and evaluated with the first stage's objectives and
    constraints. It enters the study as a finished trial with its parent's choices (so
    its compile settings are the parent's) and its edge list in the ``mutant`` attribute;
    NSGA-II's generations leave it out, and ``--trials`` does not count it. The randomness
    is seeded by (seed, mutants already in the study). Returns the mutants this call added.
    """
    import optuna
    from optuna.trial import TrialState

    cache = _cached_values(study)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    added = 0
    while (have := _finished(study, mutants=True)[0]) < config.mutate:
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            raise CnasError("no feasible architecture to mutate; run more --trials first (finished trials are kept)")
        front = [t for t, keep in zip(complete, pareto_mask([t.values for t in complete], config.directions)) if keep]
        front = list({t.user_attrs.get(INFO_ATTR, {}).get("key", t.number): t for t in reversed(front)}.values())
        front.sort(key=lambda t: t.number)
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, have, MUTATION_STREAM]))
        parent = front[int(rng.integers(len(front)))]
        candidate = space.candidate(parent.params)
        started = datetime.datetime.now()
        child, changes = mutate_edges(trial_dag(space, parent.params, parent.user_attrs.get(MUTANT_ATTR)), rng, config.mutate_moves)
        mutant = {"parent": parent.number, "edges": [list(e) for e in sorted(child.edges)], "changes": " ".join(changes)}
        try:
            key = network_digest(child, candidate.settings)
        except CnasError:
            key = repr((mutant["edges"], candidate.key()))
        info = {"key": key, "worker": worker}
        if key in cache:  # a move that undid another, or a network seen before
            values, known = cache[key]
            info.update(known, cached=True)
            state = TrialState.COMPLETE
        else:
            evaluation = obj.evaluate(candidate, config, dag=child)
            info.update(params=evaluation.params, flops=evaluation.flops, seconds=evaluation.seconds,
                        infeasible=evaluation.infeasible, **evaluation.features)
            values = None if evaluation.infeasible else [evaluation.values[o] for o in config.objectives]
            state = TrialState.PRUNED if evaluation.infeasible else TrialState.COMPLETE
            if values is not None:
                cache[key] = (values, {"params": evaluation.params, "flops": evaluation.flops})
        trial = optuna.trial.create_trial(state=state, values=values, params=parent.params,
                                          distributions=parent.distributions,
                                          user_attrs={INFO_ATTR: info, MUTANT_ATTR: mutant})
        trial.datetime_start = started  # the trial's duration is the mutation and its evaluation
        study.add_trial(trial)
        added += 1
        if progress is not None:
            progress(_finished(study)[0] + have + 1, budget + config.mutate, best_values(study, config))
    return added


def infeasible_message(study, config: SearchConfig, done: int) -> str:
    """Why no trial was feasible, with the smallest architecture seen."""
    sizes = [t.user_attrs[INFO_ATTR]["params"] for t in study.trials if t.user_attrs.get(INFO_ATTR, {}).get("params")]
    smallest = f"; the smallest had {min(sizes)} params" if sizes else ""
    limit = f"--max-params {config.max_params:g}" if config.max_params else "the space"
    return (f"no feasible architecture in {done} trials under {limit}{smallest}; "
            "relax the constraint or narrow the space (finished trials are kept)")


def best_values(study, config: SearchConfig) -> dict[str, float]:
    """The best value of each objective among the study's complete trials."""
    from optuna.trial import TrialState

    values = np.array([t.values for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))])
    if not len(values):
        return {}
    return {name: float(values[:, i].min() if direction == "minimize" else values[:, i].max())
            for i, (name, direction) in enumerate(zip(config.objectives, config.directions))}


def config_fields() -> list[str]:
    """Names of the :class:`SearchConfig` fields (flags of ``cnas search``)."""
    return [f.name for f in dataclasses.fields(SearchConfig)]
