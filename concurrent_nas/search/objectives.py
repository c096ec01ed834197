"""What a search optimises: latency, accuracy and parameters of one candidate.

Each objective is one function of (DAG, compile settings, :class:`SearchConfig`); the
search calls :func:`evaluate`, which times each and skips the costly ones for a
candidate that breaks a constraint.

``latency`` is issue #15's predicted latency (:func:`predicted_latency`): the device
profile's compute and link models, the best of KaHyPar, the paper's greedy and HEFT
placements with local moves, in the simulator of :mod:`concurrent_nas.placement`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from ..errors import CnasError
from ..predict import load_profile, predict_latency
from ..training.estimate import METHODS, EstimateConfig, estimate_accuracy

#: Objective -> Optuna direction. The order of ``--objectives`` is the order of a trial's values.
DIRECTIONS = {"latency": "minimize", "accuracy": "maximize", "params": "minimize"}
UNITS_OF = {"latency": "ms", "accuracy": "estimate", "params": "parameters"}
SAMPLERS = ("nsga2", "tpe", "random")


@dataclass(frozen=True)
class SearchConfig:
    """What a search optimises and under which constraints (every field is a ``cnas search`` flag).

    Attributes
    ----------
    objectives : tuple of str
        Comma-separated, in order: latency (predicted ms at --units on --profile, minimised), accuracy
        (the --accuracy-method estimate, maximised), params (minimised).
    sampler : str
        nsga2 (NSGA-II), tpe or random (the paper's random sampling).
    units : int
        Units the latency objective splits each network over.
    profile : str
        Device profile of the latency objective: a shipped one (multicore: cores of one CPU
        with shared memory, where splitting pays; paper; edge) or a TOML file.
    max_params : float
        Constraint: architectures with more trainable parameters are infeasible (0: no limit).
    population : int
        NSGA-II population per generation.
    seed : int
        Seed of the sampler; with the same seed a single process proposes the same trials.
    accuracy_method : str
        The accuracy estimate: one of estimate_accuracy's methods (jacob-cov is a zero-cost proxy; short-training trains).
    accuracy_epochs : int
        Epochs of the short-training estimate.
    accuracy_image_size : int
        Image side the accuracy estimate reads digits at.
    infeasible_after : int
        Stop with an error once this many trials have finished without a single feasible architecture.
    mutate : int
        Second stage: edge mutants of the front's DAGs the study should hold once --trials are done (0: none).
    mutate_moves : int
        Edges each mutant adds or removes.
    """

    objectives: tuple[str, ...] = ("latency", "accuracy")
    sampler: str = "nsga2"
    units: int = 8
    profile: str = "multicore"
    max_params: float = 0.0
    population: int = 20
    seed: int = 0
    accuracy_method: str = "jacob-cov"
    accuracy_epochs: int = 1
    accuracy_image_size: int = 16
    infeasible_after: int = 20
    mutate: int = 0
    mutate_moves: int = 2

    def __post_init__(self):
        objectives = tuple(self.objectives)
        object.__setattr__(self, "objectives", objectives)
        unknown = [o for o in objectives if o not in DIRECTIONS]
        if unknown or not objectives:
            raise CnasError(f"unknown objective '{unknown[0] if unknown else ''}'; choose from {', '.join(DIRECTIONS)}")
        if len(set(objectives)) != len(objectives):
            raise CnasError(f"--objectives names an objective twice: {','.join(objectives)}")
        if self.sampler not in SAMPLERS:
            raise CnasError(f"unknown sampler '{self.sampler}'; choose one of {', '.join(SAMPLERS)}")
        if self.accuracy_method not in METHODS:
            raise CnasError(f"unknown --accuracy-method '{self.accuracy_method}'; choose one of {', '.join(METHODS)}")
        if isinstance(self.mutate, bool) or not isinstance(self.mutate, int) or self.mutate < 0:
            raise CnasError(f"--mutate must be a non-negative integer, got {self.mutate!r}")
        for name in ("units", "population", "infeasible_after", "accuracy_epochs", "mutate_moves"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CnasError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if self.population < 2:
            raise CnasError(f"--population must be at least 2, got {self.population}")
        if not self.max_params >= 0:
            raise CnasError(f"--max-params must be >= 0, got {self.max_params}")
        self.estimate_config()  # its own checks, with its own flag names
        if "latency" in objectives:
            load_profile(self.profile).check_units(self.units)

    @property
    def directions(self) -> list[str]:
        return [DIRECTIONS[o] for o in self.objectives]

    def estimate_config(self) -> EstimateConfig:
        return EstimateConfig(image_size=self.accuracy_image_size, epochs=self.accuracy_epochs, seed=self.seed)


def predicted_latency(dag, settings, config: SearchConfig):
    """Issue #15's :func:`~concurrent_nas.predict.predict_latency` at ``config.units`` on ``config.profile``.

    The one function the latency objective goes through; returns its
    :class:`~concurrent_nas.predict.LatencyPrediction` (``pred_latency_ms``, ``cp_bound``, ...).
    """
    return predict_latency(dag, config.units, config.profile, settings=settings, seed=config.seed)


def accuracy_estimate(dag, settings, config: SearchConfig) -> float:
    """``estimate_accuracy`` with the search's method, data and seed (higher is better)."""
    return float(estimate_accuracy(dag, config.accuracy_method, settings, config=config.estimate_config()))




@dataclass(frozen=True)
class Evaluation:
    """One candidate's objective values (empty when infeasible), features and costs.

    ``features`` holds what the latency prediction says besides the latency: its
    speed-up over one unit, the critical-path bound and the placement it chose.
    """

    values: dict
    params: int
    flops: int
    seconds: dict
    infeasible: str | None = None
    features: dict = dataclasses.field(default_factory=dict)


def evaluate(candidate, config: SearchConfig, dag=None) -> Evaluation:
    """Objective values of ``candidate`` in ``config.objectives`` order, with the seconds of each.

    Parameters and FLOPs come first (the shape pass, no torch); a candidate over
    ``max_params``, or one its generator cannot build, is infeasible and the costly
    objectives are skipped. So is one an objective refuses (a one-line
    :class:`CnasError`), such as a network with more downsamplings than the accuracy
    estimate's image size allows. ``dag`` replaces the candidate's own DAG (a mutant of
    it, built with the candidate's settings).
    """
    from ..shapes import totals

    seconds = {}
    start = time.perf_counter()
    try:
        dag = candidate.dag() if dag is None else dag
        sizes = totals(dag, candidate.settings)
    except CnasError as exc:  # e.g. too few blocks per FB stage for its base generator
        return Evaluation({}, 0, 0, {"shape": time.perf_counter() - start}, infeasible=str(exc))
    seconds["shape"] = time.perf_counter() - start
    params, flops = int(sizes["params"]), int(sizes["flops"])
    if config.max_params and params > config.max_params:
        return Evaluation({}, params, flops, seconds, infeasible=f"{params} params > --max-params {config.max_params:g}")
    values, features = {}, {}
    for name in config.objectives:
        start = time.perf_counter()
        try:
            if name == "params":
                values[name] = float(params)
            elif name == "accuracy":
                values[name] = accuracy_estimate(dag, candidate.settings, config)
            else:
                prediction = predicted_latency(dag, candidate.settings, config)
                values[name] = float(prediction.pred_latency_ms)
                features = {"pred_speedup": prediction.pred_speedup, "cp_bound": prediction.cp_bound,
                            "placement": prediction.placement}
        except CnasError as exc:  # e.g. more downsamplings than the estimate's smaller images allow
            seconds[name] = time.perf_counter() - start
            return Evaluation({}, params, flops, seconds, infeasible=f"{name}: {exc}")
        seconds[name] = time.perf_counter() - start
    return Evaluation(values, params, flops, seconds, features=features)
