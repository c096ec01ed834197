"""Entry point of ``cnas``: argument parsing, dispatch, one-line errors.

Each subcommand lives in its own module of this package exposing ``register(sub)``
(adds its parser, sets ``func``) and keeps heavy imports (torch) inside its handler, so
``cnas sample`` never pays for torch.
"""

from __future__ import annotations

import argparse
import pkgutil
import sys
from importlib import import_module

from ..errors import CnasError

# Every module of this package with a `register` function is a subcommand; adding one
# is adding a file. These come first in `cnas --help`, in pipeline order.
PIPELINE_ORDER = ["sample", "generators", "export", "compile", "params", "score", "latency", "train", "estimate", "report"]


def command_modules() -> list[str]:
    import concurrent_nas.cli as package

    found = {m.name for m in pkgutil.iter_modules(package.__path__)} - {"main", "common"}
    return [n for n in PIPELINE_ORDER if n in found] + sorted(found - set(PIPELINE_ORDER))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        self.exit(2, f"cnas: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="cnas",
        description="Neural architecture search over concurrent random-wired networks.",
    )
    parser.add_argument("--version", action="version", version=f"concurrent-nas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in command_modules():
        module = import_module(f"{__package__}.{name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv  # recorded in manifests as the command that made a run
    try:
        return int(args.func(args) or 0)
    except CnasError as exc:
        print(f"cnas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnas: interrupted; finished results are kept, run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
