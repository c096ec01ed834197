"""``cnas generators``: every registered generator with its parameters and defaults."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("generators", help="list generators, their parameters and defaults")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..generators import get_generator, list_generators

    for name in list_generators():
        spec = get_generator(name)
        params = ", ".join(f"{k}={v}" for k, v in spec.defaults.items()) or "-"
        kind = "random" if spec.random else "reference"
        print(f"{name:9s} {kind:9s} {params:38s} {spec.summary}")
    return 0
