"""The search space, declared in one place: what a trial may choose, and how it becomes a network.

A space is a mapping of dimension name -> :class:`Choice`, :class:`IntRange` or
:class:`FloatRange`. Every trial suggests *every* dimension, including the parameters
of generator families it did not pick: the space stays the same for every trial, so
NSGA-II can cross over and mutate all of it (Optuna samples dimensions outside the
shared space at random), and a parameter of another family simply waits unused until
a child switches family.

Dimension names:

* ``generator``, ``nodes``, ``seed``: the architecture (``seed`` is its architecture
  seed: the same candidate is the same DAG bit for bit);
* ``<family>.<param>``: a generator parameter, e.g. ``dp.p``, ``ws.k``;
* ``orientation``: every undirected family's orientation (``dfs``, ``index``);
* any field of :class:`~concurrent_nas.shapes.CompileSettings` (``staging``,
  ``staging_prob``, ``merge``, ``stem_channels``, ``channel_cap``, ...).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CnasError
from ..generators import generate, get_generator, list_generators, params_json
from ..generators.registry import ORIENTATION
from ..shapes import MERGES, STAGING_MODES, CompileSettings, plan_network

ARCHITECTURE_DIMS = ("generator", "nodes", "seed")


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (categorical)."""

    values: tuple

    def suggest(self, trial, name: str):
        return trial.suggest_categorical(name, list(self.values))

    def text(self) -> str:
        return ",".join(map(str, self.values))


@dataclass(frozen=True)
class IntRange:
    """An integer in ``[low, high]`` on a grid of ``step``."""

    low: int
    high: int
    step: int = 1

    def suggest(self, trial, name: str):
        return trial.suggest_int(name, self.low, self.high, step=self.step)

    def text(self) -> str:
        return f"{self.low}:{self.high}" + (f":{self.step}" if self.step != 1 else "")


@dataclass(frozen=True)
class FloatRange:
    """A real number in ``[low, high]``."""

    low: float
    high: float

    def suggest(self, trial, name: str):
        return trial.suggest_float(name, self.low, self.high)

    def text(self) -> str:
        return f"{self.low:g}:{self.high:g}"


#: The default space: every random family of the paper with ranges around RandWire's and
#: the paper's values, both orientations, every staging mode and merge, three widths.
DEFAULT_SPACE: dict[str, Choice | IntRange | FloatRange] = {
    "generator": Choice(("er", "ba", "ws", "dp", "fb")),
    "nodes": IntRange(20, 60, 10),
    "seed": IntRange(0, 2**20 - 1),
    "er.p": FloatRange(0.05, 0.5),
    "ba.m": IntRange(1, 8),
    "ws.k": IntRange(2, 8, 2),
    "ws.p": FloatRange(0.0, 1.0),
    "dp.p": FloatRange(0.1, 0.9),
    "dp.alpha": FloatRange(0.2, 1.0),
    "dp.beta": FloatRange(0.5, 2.0),
    "fb.stages": IntRange(2, 3),
    ORIENTATION: Choice(("dfs", "index")),
    "staging": Choice(STAGING_MODES),
    "staging_prob": FloatRange(0.1, 0.9),
    "merge": Choice(MERGES),
    "stem_channels": Choice((8, 16, 32)),
    "channel_cap": Choice((32, 64, 128, 256)),
}

_SETTING_FIELDS = {f.name: f for f in dataclasses.fields(CompileSettings)}


@dataclass(frozen=True)
class Candidate:
    """What one trial chose: an architecture and the settings of its network."""

    generator: str
    nodes: int
    seed: int
    params: dict
    settings: CompileSettings

    def dag(self):
        """The architecture DAG (``generate(generator, nodes, seed, **params)``)."""
        return generate(self.generator, self.nodes, self.seed, **self.params)

    def key(self) -> str:
        """Canonical text of the candidate's choices."""
        return json.dumps({"generator": self.generator, "nodes": self.nodes, "seed": self.seed,
                           "params": json.loads(params_json(self.params)),
                           "settings": dataclasses.asdict(self.settings)}, sort_keys=True)

    def network_key(self) -> str:
        """A digest of the network the candidate builds: equal for choices that build the same one.

        Different choices often do (FB prescribes its own staging in every mode, a channel
        cap above what staging reaches is never used), and a search should neither pay
        twice for one network nor list it twice on its front. The digest covers the
        edges, every vertex's plan (shapes, staging, parameters) and the merge. A
        candidate its generator or the shape pass refuses falls back to :meth:`key`.
        """
        try:
            return network_digest(self.dag(), self.settings)
        except CnasError:
            return self.key()


def network_digest(dag, settings: CompileSettings) -> str:
    """SHA-256 of the network ``dag`` builds under ``settings``: its edges, every vertex's plan, the merge.

    Raises
    ------
    CnasError
        When the shape pass refuses the network.
    """
    text = repr((sorted(dag.edges), plan_network(dag, settings), settings.merge))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions a search chooses from.

    Parameters
    ----------
    dims : mapping str -> Choice | IntRange | FloatRange
        Dimension name -> its domain (see the module docstring for the names).
    base : CompileSettings
        Settings of every field the space does not search (image size, classes, ...).

    Raises
    ------
    CnasError
        On a dimension name that is neither an architecture dimension, a parameter of a
        registered generator nor a compile setting, or a family that is not random.
    """

    dims: Mapping[str, Choice | IntRange | FloatRange] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_SPACE))
    base: CompileSettings = CompileSettings()

    def __post_init__(self):
        dims = dict(self.dims)
        for name in ("generator", "nodes", "seed"):
            if name not in dims:
                raise CnasError(f"the search space needs the dimension '{name}'")
        families = self.families
        random = list_generators(random_only=True)
        bad = [f for f in families if f not in random]
        if bad:
            raise CnasError(f"'{bad[0]}' is not a random generator family; choose from {', '.join(random)}")
        # Parameters of families the space leaves out would only be noise in every trial.
        dims = {k: v for k, v in dims.items() if "." not in k or k.partition(".")[0] in families}
        for name in dims:
            if name in ARCHITECTURE_DIMS or name == ORIENTATION or name in _SETTING_FIELDS:
                continue
            family, _, param = name.partition(".")
            if family not in random or param not in get_generator(family).defaults:
                raise CnasError(f"unknown search dimension '{name}'; see `cnas search --space` for the names")
        object.__setattr__(self, "dims", dims)

    @property
    def families(self) -> tuple[str, ...]:
        domain = self.dims["generator"]
        return tuple(domain.values) if isinstance(domain, Choice) else ()

    def replace(self, **dims) -> SearchSpace:
        """A copy with some dimensions changed (a bare value fixes the dimension)."""
        fixed = {k: v if isinstance(v, (Choice, IntRange, FloatRange)) else Choice((v,))
                 for k, v in dims.items()}
        return SearchSpace({**self.dims, **fixed}, self.base)

    def suggest(self, trial) -> Candidate:
        """The candidate ``trial`` chooses (every dimension is suggested, see the module docstring)."""
        values = {name: domain.suggest(trial, name) for name, domain in self.dims.items()}
        return self.candidate(values)

    def candidate(self, values: Mapping[str, Any]) -> Candidate:
        """The candidate of one trial's parameters (``FrozenTrial.params`` or a ``trials.parquet`` row)."""
        values = {k: v.item() if isinstance(v, np.generic) else v for k, v in values.items()}
        generator = values["generator"]
        spec = get_generator(generator)
        params = {p: values[f"{generator}.{p}"] for p in spec.defaults if f"{generator}.{p}" in values}
        if ORIENTATION in spec.defaults and ORIENTATION in values:
            params[ORIENTATION] = values[ORIENTATION]
        settings = {k: v for k, v in values.items() if k in _SETTING_FIELDS}
        return Candidate(generator, int(values["nodes"]), int(values["seed"]), spec.resolve_params(params),
                         self.base.replace(**settings))

    def describe(self) -> dict[str, str]:
        """Dimension -> its domain as text (what ``cnas search --space`` prints and a study records)."""
        text = {name: domain.text() for name, domain in self.dims.items()}
        base = {f"fixed {k}": str(v) for k, v in dataclasses.asdict(self.base).items() if k not in self.dims}
        return {**text, **base}


def parse_domain(name: str, text: str, like=None) -> Choice | IntRange | FloatRange:
    """``"a,b,c"`` -> :class:`Choice`, ``"lo:hi[:step]"`` -> a range (ints when both ends are).

    ``like`` (the dimension's current domain) types the values of a choice.
    """
    text = text.strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) not in (2, 3):
                raise ValueError(text)
            if all(_is_int(p) for p in parts):
                low, high, *step = (int(p) for p in parts)
                domain = IntRange(low, high, *step)
            else:
                domain = FloatRange(float(parts[0]), float(parts[1]))
            if domain.low > domain.high:
                raise ValueError(text)
            return domain
        kind = {IntRange: int, FloatRange: float}.get(type(like))
        if isinstance(like, Choice) and like.values:
            kind = type(like.values[0])
        values = tuple(_typed(v.strip(), kind) for v in text.split(",") if v.strip())
        if not values:
            raise ValueError(text)
        return Choice(values)
    except (TypeError, ValueError):
        raise CnasError(f"--set {name}={text}: expected a,b,c or LOW:HIGH[:STEP] with LOW <= HIGH") from None


def _is_int(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def _typed(text: str, kind):
    if kind is int or (kind is None and _is_int(text)):
        return int(text)
    if kind is float:
        return float(text)
    return text


def space_from_settings(sets: list[str] | None = None, base: CompileSettings | None = None) -> SearchSpace:
    """The default space with ``KEY=SPEC`` changes (``cnas search --set``), e.g. ``generator=dp,ws``.

    ``SPEC`` is ``a,b,c`` (a choice; one value fixes the dimension) or ``LOW:HIGH[:STEP]``
    (a range). ``KEY=`` with nothing after it removes a generator-parameter dimension, so
    the generator's own default applies.
    """
    dims = dict(DEFAULT_SPACE)
    for item in sets or []:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CnasError(f"--set expects KEY=SPEC, got '{item}'")
        if not text.strip():
            if name in ARCHITECTURE_DIMS:
                raise CnasError(f"--set {name}= cannot remove '{name}'; give it a value or a range")
            dims.pop(name, None)
            continue
        dims[name] = parse_domain(name, text, dims.get(name))
    return SearchSpace(dims, base if base is not None else CompileSettings())
