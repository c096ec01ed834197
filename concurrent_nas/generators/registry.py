"""One registry of architecture generators, read by the API, the CLI and the docs.

A generator is a function ``build(nodes, rng, **params) -> networkx.Graph | DiGraph``
registered with :func:`register`. Undirected results are oriented by DFS preorder and
given an input and an output vertex (:mod:`concurrent_nas.dag`); generators that already
build a DAG (``builds_dag=True``) get only the input and output vertices. Every
undirected generator takes the parameter ``orientation``: ``dfs`` (the paper's DFS
preorder, the default) or ``index`` (RandWire's lower id -> higher id). Adding a
generator is adding one module to this package that calls :func:`register`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from .. import dag as dagmod
from ..errors import CnasError, check_integer

MIN_NODES = 4

ORIENTATION = "orientation"
"""The parameter every undirected generator takes; its values are ``dag.ORIENTATIONS``."""


@dataclass(frozen=True)
class GeneratorSpec:
    """What the registry knows about one generator."""

    name: str
    build: Callable[..., nx.Graph]
    summary: str
    family: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    random: bool = True
    builds_dag: bool = False
    fixed_size: bool = False
    color: str | None = None

    def resolve_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overridden by ``params``, each coerced to its default's type.

        Raises
        ------
        CnasError
            On an unknown key or a value that does not parse as the default's type.
        """
        resolved = dict(self.defaults)
        for key, value in (params or {}).items():
            if key not in self.defaults:
                known = ", ".join(self.defaults) or "none"
                raise CnasError(
                    f"generator '{self.name}' has no parameter '{key}' (its parameters: {known})"
                )
            resolved[key] = _coerce(self.name, key, value, self.defaults[key])
        if ORIENTATION in resolved and resolved[ORIENTATION] not in dagmod.ORIENTATIONS:
            raise CnasError(
                f"parameter '{ORIENTATION}' of generator '{self.name}' must be one of "
                f"{', '.join(dagmod.ORIENTATIONS)}, got {resolved[ORIENTATION]!r}"
            )
        return resolved


_REGISTRY: dict[str, GeneratorSpec] = {}


def register(
    name: str,
    *,
    summary: str,
    family: str,
    defaults: Mapping[str, Any] | None = None,
    random: bool = True,
    builds_dag: bool = False,
    fixed_size: bool = False,
    color: str | None = None,
) -> Callable[[Callable[..., nx.Graph]], Callable[..., nx.Graph]]:
    """Decorator adding a generator function to the registry under ``name``.

    ``color`` is the generator's colour in every figure (a stable one is derived from
    the name when it is not given).
    """

    def decorate(build: Callable[..., nx.Graph]) -> Callable[..., nx.Graph]:
        if name in _REGISTRY:
            raise RuntimeError(f"generator {name!r} registered twice")
        params = dict(defaults or {})
        if not builds_dag:
            params.setdefault(ORIENTATION, "dfs")
        _REGISTRY[name] = GeneratorSpec(
            name, build, summary, family, params, random, builds_dag, fixed_size, color
        )
        return build

    return decorate


def get_generator(name: str) -> GeneratorSpec:
    """The registered generator ``name``; a clear error listing the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise CnasError(
            f"unknown generator '{name}'; choose one of: {', '.join(list_generators())}"
        ) from None


def list_generators(random_only: bool = False) -> list[str]:
    """Names of the registered generators, in registration order."""
    # Random families first, then the references, each in registration order.
    names = [n for n, s in _REGISTRY.items() if s.random] + [
        n for n, s in _REGISTRY.items() if not s.random
    ]
    return [n for n in names if _REGISTRY[n].random or not random_only]


def architecture_rng(seed: int, index: int = 0) -> np.random.Generator:
    """The random stream of architecture ``index`` of a run seeded with ``seed``.

    Derived with a ``SeedSequence`` so that every architecture is reproducible on its
    own, and streams of neighbouring indices or seeds are independent.
    """
    # 1.5 or True would otherwise be truncated to another architecture's stream.
    seed = check_integer(seed, "seed")
    index = check_integer(index, "index")
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def generate(
    name: str,
    nodes: int = 40,
    seed: int = 0,
    *,
    index: int = 0,
    **params: Any,
) -> nx.DiGraph:
    """Build one architecture DAG.

    Parameters
    ----------
    name : str
        A registered generator (see :func:`list_generators`): ``er``, ``ba``, ``ws``,
        ``dp``, ``fb``, ``chain``, ``resnet50``.
    nodes : int, default 40
        Number of building blocks N (the DAG has N + 2 vertices with input and output).
        Ignored by fixed-size references such as ``resnet50``.
    seed : int, default 0
        Seed of the run; with ``index`` it fixes the graph bit for bit.
    index : int, default 0
        Position of the architecture within its run.
    **params
        Generator parameters overriding the defaults (``p``, ``k``, ``m``, ``alpha``...,
        and ``orientation`` for the undirected families).

    Returns
    -------
    networkx.DiGraph
        Validated DAG, input vertex 0, output vertex N + 1; ``graph`` holds
        ``generator``, ``params``, ``nodes``, ``seed`` and ``index``.
    """
    spec = get_generator(name)
    resolved = spec.resolve_params(params)
    if not spec.fixed_size:
        if isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)):
            raise CnasError(f"nodes must be an integer, got {nodes!r}")
        if nodes < MIN_NODES:
            raise CnasError(f"nodes must be at least {MIN_NODES}, got {nodes}")
    rng = architecture_rng(seed, index)
    if spec.builds_dag:
        oriented = spec.build(int(nodes), rng, **resolved)
    else:
        build_params = {k: v for k, v in resolved.items() if k != ORIENTATION}
        oriented = dagmod.orient(spec.build(int(nodes), rng, **build_params), resolved[ORIENTATION])
    dag = dagmod.add_input_output(oriented)
    dag.graph.update(
        generator=name, params=resolved, nodes=dagmod.block_count(dag), seed=int(seed), index=int(index)
    )
    return dag


def params_json(params: Mapping[str, Any]) -> str:
    """Canonical JSON text of a parameter dict (sorted keys), as stored in run tables."""
    return json.dumps(dict(params), sort_keys=True)


def _coerce(gen: str, key: str, value: Any, default: Any) -> Any:
    kind = type(default)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is bool:
            text = str(value).strip().lower()
            if text in ("1", "true", "yes"):
                return True
            if text in ("0", "false", "no"):
                return False
            raise ValueError(text)
        if kind is int:
            as_float = float(value)
            if not as_float.is_integer():
                raise ValueError(value)
            return int(as_float)
        return kind(value)
    except (TypeError, ValueError):
        raise CnasError(
            f"parameter '{key}' of generator '{gen}' must be {kind.__name__}, got {value!r}"
        ) from None


def check_probability(gen: str, key: str, value: float) -> None:
    """Raise a clear error unless ``value`` lies in [0, 1]."""
    if not 0.0 <= value <= 1.0:
        raise CnasError(f"parameter '{key}' of generator '{gen}' must lie in [0, 1], got {value}")
