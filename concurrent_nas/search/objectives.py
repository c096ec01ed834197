"""What a search optimises: latency, accuracy and parameters of one candidate.

Each objective is one function of (DAG, compile settings, :class:`SearchConfig`); the
search calls :func:`evaluate`, which times each and skips the costly ones for a
candidate that breaks a constraint.

``latency`` is *simulated* (:func:`simulated_latency_ms`): issue #15's
``predict_latency`` with device profiles had not landed when this was written; switching
is a change to that one function.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import CnasError
from ..placement.simulate import TransferModel, simulate
from ..placement.plan import build_plan
from ..placement.timed import timed_assignment
from ..scoring.config import DEFAULT_EPS
from ..shapes import vertex_costs
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
        Comma-separated, in order: latency (simulated ms at --units, minimised), accuracy
        (the --accuracy-method estimate, maximised), params (minimised).
    sampler : str
        nsga2 (NSGA-II), tpe or random (the paper's random sampling).
    units : int
        Units the latency objective splits each network over.
    max_params : float
        Constraint: architectures with more trainable parameters are infeasible (0: no limit).
    population : int
        NSGA-II population per generation.
    seed : int
        Seed of the sampler; with the same seed a single process proposes the same trials.
    accuracy_method : str
        The accuracy estimate (estimate_accuracy's methods; jacob-cov costs ~1 s, short-training minutes).
    accuracy_epochs : int
        Epochs of the short-training estimate.
    accuracy_image_size : int
        Image side the accuracy estimate reads digits at.
    gflops : float
        Compute speed of one unit in the latency model, GFLOP/s (assumed).
    vertex_overhead_us : float
        Fixed cost of running one block in the latency model, microseconds (assumed).
    bandwidth_mbit : float
        Link bandwidth of the latency model, Mbit/s (assumed).
    link_latency_ms : float
        Fixed one-way cost of a message in the latency model, ms (assumed).
    infeasible_after : int
        Stop with an error when this many trials in a row have no feasible architecture and none was ever found.
    """

    objectives: tuple[str, ...] = ("latency", "accuracy")
    sampler: str = "nsga2"
    units: int = 8
    max_params: float = 0.0
    population: int = 20
    seed: int = 0
    accuracy_method: str = "jacob-cov"
    accuracy_epochs: int = 1
    accuracy_image_size: int = 16
    gflops: float = 10.0
    vertex_overhead_us: float = 20.0
    bandwidth_mbit: float = 1000.0
    link_latency_ms: float = 0.1
    infeasible_after: int = 20

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
        for name in ("units", "population", "infeasible_after", "accuracy_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CnasError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if self.population < 2:
            raise CnasError(f"--population must be at least 2, got {self.population}")
        for name in ("gflops", "bandwidth_mbit"):
            if not getattr(self, name) > 0:
                raise CnasError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name in ("max_params", "vertex_overhead_us", "link_latency_ms"):
            if not getattr(self, name) >= 0:
                raise CnasError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        self.estimate_config()  # its own checks, with its own flag names

    @property
    def directions(self) -> list[str]:
        return [DIRECTIONS[o] for o in self.objectives]

    def estimate_config(self) -> EstimateConfig:
        return EstimateConfig(image_size=self.accuracy_image_size, epochs=self.accuracy_epochs, seed=self.seed)

    def transfer(self) -> TransferModel:
        return TransferModel.network(bandwidth_mbit=self.bandwidth_mbit, latency_ms=self.link_latency_ms)


def simulated_latency_ms(dag, settings, config: SearchConfig) -> float:
    """Simulated latency of one inference split over ``config.units`` units, milliseconds.

    Every block takes ``FLOPs / gflops + vertex_overhead_us`` on its unit, messages cost
    the assumed link (:meth:`SearchConfig.transfer`). The placement is KaHyPar on the
    time-weighted hypergraph for every eps of scoring, the fastest in the simulator
    (``placement="kahypar-time"``). This is the one function to change for issue #15's
    ``predict_latency``.
    """
    flops, out_bytes = vertex_costs(dag, settings)
    vertex_s = {v: flops[v] / (config.gflops * 1e9) + config.vertex_overhead_us * 1e-6 for v in dag}
    image_bytes = settings.in_channels * settings.image_size**2 * settings.bytes_per_element
    transfer = config.transfer()
    assignment = timed_assignment(dag, config.units, "kahypar-time", vertex_s, out_bytes, image_bytes,
                                  transfer, eps=DEFAULT_EPS, seed=config.seed)
    run = simulate(build_plan(dag, assignment, config.units), vertex_s, out_bytes, image_bytes, transfer)
    return run.latency_s * 1e3


def accuracy_estimate(dag, settings, config: SearchConfig) -> float:
    """``estimate_accuracy`` with the search's method, data and seed (higher is better)."""
    return float(estimate_accuracy(dag, config.accuracy_method, settings, config=config.estimate_config()))


OBJECTIVE_FUNCTIONS = {
    "latency": simulated_latency_ms,
    "accuracy": accuracy_estimate,
}


@dataclass(frozen=True)
class Evaluation:
    """One candidate's objective values (``None`` when infeasible), features and costs."""

    values: dict
    params: int
    flops: int
    seconds: dict
    infeasible: str | None = None


def evaluate(candidate, config: SearchConfig) -> Evaluation:
    """Objective values of ``candidate`` in ``config.objectives`` order, with the seconds of each.

    Parameters and FLOPs come first (the shape pass, no torch); a candidate over
    ``max_params``, or one its generator cannot build, is infeasible and the costly
    objectives are skipped.
    """
    from ..shapes import totals

    seconds = {}
    start = time.perf_counter()
    try:
        dag = candidate.dag()
        sizes = totals(dag, candidate.settings)
    except CnasError as exc:  # e.g. too few blocks per FB stage for its base generator
        return Evaluation({}, 0, 0, {"shape": time.perf_counter() - start}, infeasible=str(exc))
    seconds["shape"] = time.perf_counter() - start
    params, flops = int(sizes["params"]), int(sizes["flops"])
    if config.max_params and params > config.max_params:
        return Evaluation({}, params, flops, seconds, infeasible=f"{params} params > --max-params {config.max_params:g}")
    values = {}
    for name in config.objectives:
        start = time.perf_counter()
        values[name] = float(params) if name == "params" else OBJECTIVE_FUNCTIONS[name](dag, candidate.settings, config)
        seconds[name] = time.perf_counter() - start
    return Evaluation(values, params, flops, seconds)
