"""Multi-objective architecture search over the generators' space, run by Optuna (issue #16).

:func:`search` is the entry point (``cnas search`` is a thin layer over it);
:class:`SearchSpace` declares what trials choose from, :class:`SearchConfig` what they
optimise and under which constraints.
"""

import sys
import types

from .engine import SearchResult, search
from .mutate import mutate_edges
from .objectives import DIRECTIONS, SAMPLERS, SearchConfig, evaluate, predicted_latency
from .pareto import hypervolume, pareto_mask
from .space import DEFAULT_SPACE, Candidate, Choice, FloatRange, IntRange, SearchSpace, parse_domain

__all__ = [
    "DEFAULT_SPACE", "DIRECTIONS", "SAMPLERS", "Candidate", "Choice", "FloatRange", "IntRange", "SearchConfig",
    "SearchResult", "SearchSpace", "evaluate", "hypervolume", "mutate_edges", "parse_domain", "pareto_mask",
    "search", "predicted_latency",
]


class _CallableModule(types.ModuleType):
    """This package, callable as :func:`search`.

    ``concurrent_nas.search`` is both this package and the function the top-level API
    exports: once the package is imported, Python binds the name to the module and the
    lazy export of the function is never consulted. Calling the module calls the function,
    so ``concurrent_nas.search(...)`` works either way.
    """

    def __call__(self, *args, **kwargs):
        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
