"""Names of a package resolved on first use (PEP 562), so importing it stays cheap.

``import concurrent_nas`` must not import torch, KaHyPar or matplotlib: a command such as
``cnas sample`` never needs them, and each costs seconds to import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_exports(package: str, names: Mapping[str, str]) -> tuple[Callable, Callable, list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for a package that exports ``names`` lazily.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : mapping
        Exported name -> module that defines it (absolute, or relative to ``package``
        with a leading dot).

    Examples
    --------
    >>> __getattr__, __dir__, __all__ = lazy_exports(__name__, {"Run": ".rundir"})  # doctest: +SKIP
    """

    def __getattr__(name: str):
        if name in names:
            return getattr(import_module(names[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__, sorted(names)
