"""Entry point of ``cnas``: argument parsing, dispatch, one-line errors.

Each subcommand lives in its own module of this package exposing ``register(sub)``
(adds its parser, sets ``func``) and keeps heavy imports (torch) inside its handler, so
``cnas sample`` never pays for torch.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import pkgutil
import sys
from importlib import import_module

from ..errors import CnasError
from .common import terminate_as_interrupt, with_new_flag_names

# Every module of this package with a `register` function is a subcommand; adding one
# is adding a file. These come first in `cnas --help`, in pipeline order.
PIPELINE_ORDER = ["sample", "generators", "export", "compile", "params", "score", "top", "search", "latency", "train", "estimate", "report"]


def command_modules() -> list[str]:
    import concurrent_nas.cli as package

    found = {m.name for m in pkgutil.iter_modules(package.__path__)} - {"main", "common", "progress"}
    return [n for n in PIPELINE_ORDER if n in found] + sorted(found - set(PIPELINE_ORDER))


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) that suggest the closest subcommand, flag or choice."""

    def parse_known_args(self, args=None, namespace=None):
        # Kept for error(): an unknown flag is reported by the top parser, which needs the
        # subcommand's flags to suggest one.
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):  # one line, exit 2, like every other bad input
        hint = suggestion(message, self)
        prog = (_subparser(self) or self).prog if message.startswith("unrecognized") else self.prog
        self.exit(2, f"cnas: error: {message}{hint} (see `{prog} --help`)\n")


def _subparser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser | None:
    """The subcommand parser named in the arguments ``parser`` was given, if any."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for token in getattr(parser, "_argv", []):
                if token in action.choices:
                    return action.choices[token]
    return None


def suggestion(message: str, parser: argparse.ArgumentParser) -> str:
    """``"; did you mean X?"`` for an argparse error about an unknown choice or flag, else ``""``."""
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        options = re.findall(r"'([^']*)'", choice.group(2)) or [c.strip() for c in choice.group(2).split(",")]
        pairs = [(choice.group(1), options)]
    elif message.startswith("unrecognized arguments:"):
        target = _subparser(parser) or parser
        flags = [s for a in target._actions for s in a.option_strings if s.startswith("--")]
        tokens = message.split(":", 1)[1].split()
        pairs = [(t.split("=", 1)[0], flags) for t in tokens if t.startswith("--")]
    else:
        return ""
    return _close(pairs)


def choice_hint(message: str) -> str:
    """``"; did you mean X?"`` for a library error naming a bad value and the valid ones.

    The library's messages say ``unknown generator 'dpp'; choose one of: er, ba, ...`` or
    ``--preset must be one of fast, quality, got 'fats'``: the first quoted word is what
    was given, the list after "one of"/"choose from" what would do.
    """
    given = re.search(r"'([^']+)'", message)
    listed = re.search(r"(?:one of:?|choose from|choose) ([\w.@-]+(?:(?:, | or )[\w.@-]+)+)", message)
    if not given or not listed:
        return ""
    return _close([(given.group(1), re.split(r", | or ", listed.group(1)))])


def _close(pairs: list[tuple[str, list[str]]]) -> str:
    hints = []
    for given, options in pairs:
        # A unique prefix first ('mtk' -> 'mtkahypar'), then difflib's closest spelling.
        starts = [o for o in options if o.startswith(given)]
        close = starts if len(starts) == 1 else difflib.get_close_matches(given, options, n=1, cutoff=0.6)
        if close:
            hints.append(f"'{close[0]}' for '{given}'" if len(pairs) > 1 else f"'{close[0]}'")
    return f"; did you mean {', '.join(hints)}?" if hints else ""


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
        with terminate_as_interrupt():
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, so a reader that went away is handled below, not at exit
        return code
    except BrokenPipeError:
        # `cnas export ... | head`: the reader has what it wanted. Point stdout at devnull
        # so the interpreter's final flush does not fail again, and exit like a process
        # killed by SIGPIPE would (128 + 13).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except CnasError as exc:
        message = with_new_flag_names(str(exc), _subparser(parser) or parser)
        hint = "" if "did you mean" in message else choice_hint(message)
        print(f"cnas: error: {message}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnas: interrupted; finished results are kept, run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
