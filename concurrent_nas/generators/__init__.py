"""Architecture generators: random-graph families and non-random references.

Importing this package registers every generator module below; see
:mod:`concurrent_nas.generators.registry` for the registry itself.
"""

import importlib
import pkgutil

from .registry import (
    GeneratorSpec,
    architecture_rng,
    generate,
    get_generator,
    list_generators,
    params_json,
    register,
)

# Every module of this package except the registry registers its generators on import,
# so a new generator is one new file and nothing else changes.
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "registry":
        importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "GeneratorSpec",
    "architecture_rng",
    "generate",
    "get_generator",
    "list_generators",
    "params_json",
    "register",
]
