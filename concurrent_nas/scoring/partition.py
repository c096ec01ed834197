"""Hypergraph partitioning with KaHyPar or Mt-KaHyPar (connectivity - 1 objective).

KaHyPar is the default. Mt-KaHyPar (``partitioner="mtkahypar"``, the ``mtkahypar``
package of the ``[mtkahypar]`` extra) has wheels where KaHyPar has none (Windows, Intel
Macs); it runs in its deterministic mode with one thread per process, seeded, so the
same seed gives the same partition. Both get the same hypergraph and the same block
limits, and both partitions go through :func:`rebalance`.

kahypar 1.3.7 has hazards this module exists to contain:

* a ``Context`` used for a second ``partition()`` prompts on stdin and then hangs or
  ends the process: the partitioner leaves its per-block weight limits in the context,
  and a second call asks whether to use them. Reading the .ini into a fresh context
  costs about 1 ms, a fifth of a call on our graphs, so the ``fast`` preset keeps one
  context per process and sets the block limits itself before every call
  (``setCustomTargetBlockWeights``, the same limits KaHyPar derives from eps): then
  there is nothing to ask, and a test checks that a reused context gives the same
  partition as a fresh one whatever ran before. ``quality`` stays the stock
  reference: a fresh context per call with KaHyPar's own eps handling;
* a missing or unknown key in the .ini ends the process with exit code 255 instead of
  raising, so we ship our own presets (``presets/*.ini``), check their keys here
  (:func:`preset_path` refuses anything else) and in the tests;
* without ``suppressOutput`` it prints about 7 KB per call;
* at large eps and k >= 8 it may leave a part empty: we accept that partition as it is
  (it is a legal solution) and report the count of empty parts.
* on our small weighted hypergraphs its heaviest part often exceeds its own bound
  ``floor((1 + eps) * ceil(W / k))`` (up to 16 %, mostly at eps 0.03): every partition
  goes through :func:`rebalance`, which restores the bound wherever moves and swaps of
  single vertices can, and otherwise leaves the documented fallback (docs/scoring.md,
  "The eps bound").

A crash inside the C++ library cannot be caught in Python; the run scheduler
(:mod:`concurrent_nas.scoring.scheduler`) therefore partitions in worker processes and
turns a dead worker into an error for that one architecture.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..errors import CnasError
from .hypergraph import CommHypergraph, integer_weights

PRESETS = ("fast", "quality")
#: Partitioning libraries; the first is the default.
PARTITIONERS = ("kahypar", "mtkahypar")
DEFAULT_PARTITIONER = "kahypar"
# Presets partitioned with one reused context per process and explicit block limits.
REUSED_CONTEXT_PRESETS = frozenset({"fast"})
# KaHyPar keeps process-wide state (statistics, timers); threads of one process (a Dask
# worker with several threads) take turns. Processes are how we run in parallel.
_KAHYPAR_LOCK = threading.Lock()
DEFAULT_PRESET = "fast"
# Version of :func:`rebalance`, part of every score fingerprint: raise it whenever a change
# there can change a partition, so checkpoints and scores.parquet made before are redone.
REBALANCE_VERSION = 1

# Every key our presets set, each a documented KaHyPar option (see the kahypar config/
# directory and its wiki). kahypar 1.3.7 needs all of them and rejects any other by
# exiting, so a preset must set exactly these.
PRESET_KEYS = frozenset(
    """
    mode objective seed cmaxnet vcycles
    p-use-sparsifier p-sparsifier-min-median-he-size p-sparsifier-max-hyperedge-size
    p-sparsifier-max-cluster-size p-sparsifier-min-cluster-size p-sparsifier-num-hash-func
    p-sparsifier-combined-num-hash-func
    p-detect-communities p-detect-communities-in-ip p-reuse-communities
    p-max-louvain-pass-iterations p-min-eps-improvement p-louvain-edge-weight p-large-he-threshold
    p-smallest-maxnet-threshold p-maxnet-removal-factor
    c-type c-s c-t c-rating-score c-rating-use-communities c-rating-heavy_node_penalty
    c-rating-acceptance-criterion c-fixed-vertex-acceptance-criterion
    i-mode i-technique i-c-type i-c-s i-c-t i-c-rating-score i-c-rating-use-communities
    i-c-rating-heavy_node_penalty i-c-rating-acceptance-criterion
    i-c-fixed-vertex-acceptance-criterion i-algo i-runs
    i-bp-algorithm i-bp-heuristic-prepacking i-bp-early-restart i-bp-late-restart
    i-r-type i-r-runs i-r-fm-stop i-r-fm-stop-i
    r-type r-runs r-fm-stop r-fm-stop-alpha r-fm-stop-i r-flow-execution-policy
    r-hfc-size-constraint r-hfc-scaling r-hfc-distance-based-piercing r-hfc-mbc
    """.split()
)


def read_preset(path: str | Path) -> dict[str, str]:
    """Parse a KaHyPar .ini file into ``{key: value}`` (comments and blanks skipped).

    Raises
    ------
    CnasError
        On a line that is not ``key=value`` or a key given twice.
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise CnasError(f"{path}:{number}: expected key=value, got {raw!r}")
        if key in values:
            raise CnasError(f"{path}:{number}: key {key!r} given twice")
        values[key] = value
    return values


def check_preset(values: dict[str, str], where: str = "preset") -> None:
    """Raise if the preset's keys differ from :data:`PRESET_KEYS` or its objective is not km1."""
    unknown = sorted(set(values) - PRESET_KEYS)
    missing = sorted(PRESET_KEYS - set(values))
    if unknown:
        raise CnasError(f"{where}: unknown KaHyPar key {unknown[0]!r} (kahypar would exit the process)")
    if missing:
        raise CnasError(f"{where}: missing KaHyPar key {missing[0]!r} (kahypar would exit the process)")
    if values["objective"] != "km1" or values["mode"] != "direct":
        raise CnasError(f"{where}: must use mode=direct and objective=km1 (connectivity - 1)")


@lru_cache(maxsize=None)
def preset_path(name: str = DEFAULT_PRESET) -> str:
    """Filesystem path of a shipped, checked preset (``"fast"`` or ``"quality"``)."""
    if name not in PRESETS:
        raise CnasError(f"preset must be one of {', '.join(PRESETS)}, got {name!r}")
    path = Path(str(resources.files("concurrent_nas.scoring") / "presets" / f"{name}.ini"))
    if not path.is_file():
        raise CnasError(f"preset file {path} is missing; reinstall concurrent-nas")
    check_preset(read_preset(path), str(path))
    return str(path)


def check_units_eps(units: int, eps: float, num_vertices: int | None = None) -> None:
    """Raise a one-line error for a unit count or imbalance bound KaHyPar cannot use."""
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise CnasError(f"units must be a positive integer, got {units!r}")
    if num_vertices is not None and units > num_vertices:
        raise CnasError(f"cannot split {num_vertices} vertices over {units} units; use fewer units")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise CnasError(f"eps must be a positive number (allowed imbalance, e.g. 0.03), got {eps!r}")


@dataclass(frozen=True)
class KahyparInput:
    """A hypergraph in KaHyPar's CSR form with integer weights, built once per architecture."""

    index_vector: list[int]
    edge_vector: list[int]
    edge_weights: list[int]
    vertex_weights: list[int]

    @classmethod
    def of(cls, hg: CommHypergraph) -> "KahyparInput":
        index_vector = [0]
        edge_vector: list[int] = []
        for edge in hg.hyperedges:
            edge_vector.extend(edge)
            index_vector.append(len(edge_vector))
        return cls(index_vector, edge_vector, integer_weights(hg.costs), integer_weights(hg.weights))


def partition_hypergraph(
    hg: CommHypergraph,
    units: int,
    eps: float,
    *,
    seed: int = 0,
    preset: str = DEFAULT_PRESET,
    prepared: KahyparInput | None = None,
    partitioner: str = DEFAULT_PARTITIONER,
) -> list[int]:
    """Partition ``hg`` into ``units`` parts minimising connectivity - 1.

    Parameters
    ----------
    hg : CommHypergraph
        The hypergraph; its exact weights and costs are scaled to integers for KaHyPar
        with :func:`~concurrent_nas.scoring.hypergraph.integer_weights`.
    units : int
        Number of parts k (1 needs no partitioner: everything on part 0).
    eps : float
        Allowed imbalance: every part weighs at most
        ``L = floor((1 + eps) * ceil(W / units))``, W the total of the integer vertex
        weights (:func:`block_limits`). KaHyPar alone exceeds it on some of our small
        weighted hypergraphs, so its partition goes through :func:`rebalance`; where
        no partition meets ``L`` at all, every part above ``L`` is left no heavier than
        the lightest other part plus its own lightest vertex (see :func:`rebalance`).
    seed : int, default 0
        KaHyPar's random seed; the same seed gives the same partition.
    preset : {"fast", "quality"}
        Shipped configuration (see ``presets/``).
    prepared : KahyparInput, optional
        ``KahyparInput.of(hg)``, to build it once when partitioning ``hg`` many times.
    partitioner : {"kahypar", "mtkahypar"}, default "kahypar"
        The library: KaHyPar, or Mt-KaHyPar in its deterministic mode (``fast`` is its
        ``DETERMINISTIC`` preset, ``quality`` its ``DETERMINISTIC_QUALITY``).

    Returns
    -------
    list of int
        Part index of every vertex, in ``hg.vertices`` order. A part may be empty.
    """
    check_units_eps(units, eps, hg.num_vertices)
    arrays = prepared if prepared is not None else KahyparInput.of(hg)
    library = mtkahypar_parts if check_partitioner(partitioner) == "mtkahypar" else kahypar_parts
    parts = library(hg, units, eps, seed=seed, preset=preset, prepared=arrays)
    limit = block_limits(arrays.vertex_weights, units, float(eps))[0]
    return rebalance(parts, arrays.vertex_weights, hg.hyperedges, arrays.edge_weights, units, limit)


def kahypar_parts(
    hg: CommHypergraph,
    units: int,
    eps: float,
    *,
    seed: int = 0,
    preset: str = DEFAULT_PRESET,
    prepared: KahyparInput | None = None,
) -> list[int]:
    """KaHyPar's own partition, before :func:`rebalance`; arguments as :func:`partition_hypergraph`.

    Its heaviest part may exceed the bound of ``eps`` (docs/scoring.md, "The eps bound").
    """
    check_units_eps(units, eps, hg.num_vertices)
    ini = preset_path(preset)
    if units == 1 or not hg.hyperedges:
        return [0] * hg.num_vertices if units == 1 else _spread(hg, units)
    import kahypar

    arrays = prepared if prepared is not None else KahyparInput.of(hg)
    eps = float(eps)
    hypergraph = kahypar.Hypergraph(
        hg.num_vertices,
        hg.num_hyperedges,
        arrays.index_vector,
        arrays.edge_vector,
        units,
        arrays.edge_weights,
        arrays.vertex_weights,
    )
    with _KAHYPAR_LOCK:
        if preset in REUSED_CONTEXT_PRESETS:
            context = _reused_context(ini)
            # Explicit limits every call: a reused context without them prompts on stdin.
            context.setCustomTargetBlockWeights(block_limits(arrays.vertex_weights, units, eps))
        else:
            context = kahypar.Context()
            context.loadINIconfiguration(ini)
            context.suppressOutput(True)
        context.setK(units)
        context.setEpsilon(eps)
        context.setSeed(int(seed))
        kahypar.partition(hypergraph, context)
    parts = [hypergraph.blockID(i) for i in range(hg.num_vertices)]
    if min(parts) < 0 or max(parts) >= units:
        raise CnasError(f"KaHyPar returned an invalid partition (blocks {min(parts)}..{max(parts)} for k={units})")
    return parts


def check_partitioner(name: str) -> str:
    """``name`` if it is a partitioner that can run here, else a one-line :class:`CnasError`."""
    if name not in PARTITIONERS:
        raise CnasError(f"--partitioner must be one of {', '.join(PARTITIONERS)}, got {name!r}")
    if name == "mtkahypar":
        try:
            import mtkahypar  # noqa: F401
        except ImportError:
            raise CnasError("--partitioner mtkahypar needs the mtkahypar package: "
                            "pip install 'concurrent-nas[mtkahypar]'") from None
    return name


#: Mt-KaHyPar's deterministic presets standing in for ours.
MTKAHYPAR_PRESETS = {"fast": "DETERMINISTIC", "quality": "DETERMINISTIC_QUALITY"}


def mtkahypar_parts(
    hg: CommHypergraph,
    units: int,
    eps: float,
    *,
    seed: int = 0,
    preset: str = DEFAULT_PRESET,
    prepared: KahyparInput | None = None,
) -> list[int]:
    """Mt-KaHyPar's partition, before :func:`rebalance`; arguments as :func:`partition_hypergraph`.

    One thread per process (processes are how scoring runs in parallel) and the
    deterministic preset, seeded before every call, so a seed gives one partition.
    The block limits are the ones given to KaHyPar (:func:`block_limits`).
    """
    check_units_eps(units, eps, hg.num_vertices)
    if preset not in PRESETS:
        raise CnasError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if units == 1 or not hg.hyperedges:
        return [0] * hg.num_vertices if units == 1 else _spread(hg, units)
    import mtkahypar

    arrays = prepared if prepared is not None else KahyparInput.of(hg)
    edges = [arrays.edge_vector[a:b] for a, b in zip(arrays.index_vector, arrays.index_vector[1:])]
    with _KAHYPAR_LOCK:
        initializer = _mtkahypar_initializer()
        context = initializer.context_from_preset(getattr(mtkahypar.PresetType, MTKAHYPAR_PRESETS[preset]))
        context.set_partitioning_parameters(units, float(eps), mtkahypar.Objective.KM1)
        context.logging = False
        context.set_individual_target_block_weights(block_limits(arrays.vertex_weights, units, float(eps)))
        mtkahypar.set_seed(int(seed))
        hypergraph = initializer.create_hypergraph(context, hg.num_vertices, len(edges), edges,
                                                   arrays.vertex_weights, arrays.edge_weights)
        parts = list(hypergraph.partition(context).get_partition())
    if min(parts) < 0 or max(parts) >= units:
        raise CnasError(f"Mt-KaHyPar returned an invalid partition (blocks {min(parts)}..{max(parts)} for k={units})")
    return [int(p) for p in parts]


@lru_cache(maxsize=1)
def _mtkahypar_initializer():
    # Mt-KaHyPar's thread pool is made once per process; a second initialize is refused.
    import mtkahypar

    return mtkahypar.initialize(1, False)


def rebalance(
    parts: Sequence[int],
    weights: Sequence[int],
    hyperedges: Sequence[Sequence[int]],
    costs: Sequence[int],
    units: int,
    limit: int,
) -> list[int]:
    """Move or swap vertices out of parts heavier than ``limit``, cheapest first.

    KaHyPar keeps its balance bound as a target, not a guarantee, on our small
    hypergraphs with a few dozen vertices of similar weight (docs/scoring.md, "The eps
    bound"). This pass makes the bound hold wherever single moves and pairwise swaps
    can reach it, and says how far off it stays where they cannot.

    A step changes two parts, P heavier than ``limit`` and another part Q: it moves a
    vertex v from P to Q, or swaps v with a lighter vertex u of Q, so that Q ends
    lighter than P was (``w(Q) + w(v) - w(u) < w(P)``). Steps that leave Q within
    ``limit`` come first; among them, the one that adds the least connectivity - 1
    (ties: moves before swaps, then lowest vertex ids and part). Each step lowers the
    sum of squared part weights, so the pass ends: when no part is above ``limit``, or
    when no step is left. In the second case every part P above ``limit`` weighs at
    most the lightest other part plus the lightest vertex of P, so the heaviest part
    weighs at most ``floor(W / units) + max(weights)``. A partition within ``limit``
    is returned unchanged.

    Parameters
    ----------
    parts : sequence of int
        Part of every vertex.
    weights : sequence of int
        Weight of every vertex (the integers KaHyPar was given).
    hyperedges : sequence of sequences of int
        Vertex indices of every hyperedge.
    costs : sequence of int
        Cost of every hyperedge.
    units : int
        Number of parts.
    limit : int
        Largest weight a part may take (:func:`block_limits`).

    Returns
    -------
    list of int
        The part of every vertex after the steps.
    """
    parts = list(parts)
    load = [0] * units
    for v, p in enumerate(parts):
        load[p] += weights[v]
    if max(load) <= limit:
        return parts
    incident: list[set[int]] = [set() for _ in parts]
    pins = [[0] * units for _ in hyperedges]
    for e, edge in enumerate(hyperedges):
        for v in edge:
            incident[v].add(e)
            pins[e][parts[v]] += 1

    def added_km1(v: int, u: int | None, p: int, q: int) -> int:
        # Change of connectivity - 1 when v goes p -> q and u (if any) q -> p.
        touched = incident[v] if u is None else incident[v] | incident[u]
        total = 0
        for e in touched:
            shift = (e in incident[v]) - (u is not None and e in incident[u])
            before = (pins[e][p] > 0) + (pins[e][q] > 0)
            after = (pins[e][p] - shift > 0) + (pins[e][q] + shift > 0)
            total += costs[e] * (after - before)
        return total

    members: list[list[int]] = [[] for _ in range(units)]
    while True:
        for m in members:
            m.clear()
        for v, p in enumerate(parts):
            members[p].append(v)
        best = None
        for p in range(units):
            if load[p] <= limit:
                continue
            for v in members[p]:
                for q in range(units):
                    if q == p:
                        continue
                    for u in [None, *members[q]]:
                        shift = weights[v] - (0 if u is None else weights[u])
                        if shift <= 0 or load[q] + shift >= load[p]:
                            continue
                        key = (load[q] + shift > limit, added_km1(v, u, p, q), u is not None,
                               v, -1 if u is None else u, q)
                        if best is None or key < best:
                            best = key
        if best is None:
            return parts
        *_, v, u, q = best
        p = parts[v]
        for w, a, b in [(v, p, q)] + ([] if u < 0 else [(u, q, p)]):
            for e in incident[w]:
                pins[e][a] -= 1
                pins[e][b] += 1
            load[a] -= weights[w]
            load[b] += weights[w]
            parts[w] = b


def block_limits(vertex_weights: list[int], units: int, eps: float) -> list[int]:
    """Largest weight a block may take: ``floor((1 + eps) * ceil(total / units))``.

    The bound KaHyPar itself derives from eps, given to it explicitly per block.
    """
    total = sum(vertex_weights)
    return [math.floor((1 + eps) * -(-total // units))] * units


_CONTEXTS: dict[str, object] = {}


def _reused_context(ini: str):
    """This process's context for ``ini``, read once (see the module notes)."""
    context = _CONTEXTS.get(ini)
    if context is None:
        import kahypar

        context = kahypar.Context()
        context.loadINIconfiguration(ini)
        context.suppressOutput(True)
        _CONTEXTS[ini] = context
    return context


def _spread(hg: CommHypergraph, units: int) -> list[int]:
    # No hyperedges means no communication at all: any balanced assignment is optimal.
    order = sorted(range(hg.num_vertices), key=lambda i: (-hg.weights[i], i))
    load = [0] * units
    parts = [0] * hg.num_vertices
    for i in order:
        p = min(range(units), key=lambda q: (load[q], q))
        parts[i] = p
        load[p] += hg.weights[i]
    return parts
