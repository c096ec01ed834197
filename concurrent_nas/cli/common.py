"""Helpers shared by subcommands: progress bars, list parsing, --param parsing, flags from dataclasses."""

from __future__ import annotations

import argparse
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import CnasError
from .progress import progress_bar  # noqa: F401  (lives in progress.py; importable from here as before)


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``["p=0.2", "k=4"]`` -> ``{"p": "0.2", "k": "4"}`` (typed later by the generator)."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CnasError(f"--param expects KEY=VALUE, got '{pair}'")
        params[key.strip()] = value.strip()
    return params


def parse_int_list(text: str, what: str) -> list[int]:
    """``"4,6,8"`` -> ``[4, 6, 8]`` with an error naming the option."""
    return _parse_list(text, what, int, "integers")


def parse_float_list(text: str, what: str) -> list[float]:
    """``"0.03,0.1"`` -> ``[0.03, 0.1]`` with an error naming the option."""
    return _parse_list(text, what, float, "numbers")


def _parse_list(text: str, what: str, kind, noun: str) -> list:
    try:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CnasError(f"{what} expects comma-separated {noun}, got '{text}'") from None
    if not values:
        raise CnasError(f"{what} expects at least one value")
    return values


# -- flags derived from settings dataclasses ---------------------------------------------
# One source for each default: a command adds one flag per dataclass field, its help
# is the field's description in the class docstring, and a flag left out stays None so
# the dataclass's own default applies (timm's trick of dropping None keyword arguments).


def field_help(cls) -> dict[str, str]:
    """First sentence of each field's entry in ``cls``'s numpydoc Parameters/Attributes."""
    import inspect
    import re

    doc = inspect.getdoc(cls) or ""
    helps: dict[str, str] = {}
    name, lines = None, []
    for line in doc.splitlines() + [""]:
        head = re.match(r"^(\w+)\s*:", line)
        if head or (name and line and not line.startswith(" ")):
            if name:
                helps[name] = _first_sentence(" ".join(lines))
            name, lines = (head.group(1), []) if head else (None, [])
        elif name and line.strip():
            lines.append(line.strip())
    if name:
        helps[name] = _first_sentence(" ".join(lines))
    return helps


def _first_sentence(text: str) -> str:
    end = text.find(". ")
    return (text if end < 0 else text[: end + 1]).replace("``", "").strip().rstrip(".")


def add_options(
    parser,
    cls,
    *,
    fields: Sequence[str] | None = None,
    skip: Sequence[str] = (),
    flags: Mapping[str, str] | None = None,
    choices: Mapping[str, Sequence] | None = None,
    helps: Mapping[str, str] | None = None,
    title: str | None = None,
    dest_prefix: str = "",
) -> None:
    """Add one flag per field of dataclass ``cls``, with the field's default and help.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    cls : dataclass type
        Its fields' defaults and docstring give each flag's default and help text.
    fields : sequence of str, optional
        The fields to expose (default: every field not in ``skip``).
    flags : mapping, optional
        Field -> flag where the flag is not ``--field-name`` (e.g. ``num_classes``:
        ``--classes``).
    choices : mapping, optional
        Field -> allowed values.
    helps : mapping, optional
        Field -> help text that replaces the docstring's.
    title : str, optional
        Put the flags in an argument group of this title.
    dest_prefix : str, optional
        Prefix of the attribute names on the parsed namespace, where two dataclasses
        of one command share a field name.
    """
    import argparse
    import dataclasses

    flags, choices = dict(flags or {}), dict(choices or {})
    texts = {**field_help(cls), **dict(helps or {})}
    defaults = {f.name: _field_default(f) for f in dataclasses.fields(cls)}
    annotations = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    chosen = [f for f in (fields or defaults) if f not in skip]
    target = parser.add_argument_group(title) if title else parser
    for name in chosen:
        default = defaults[name]
        flag = flags.get(name, "--" + name.replace("_", "-"))
        shown = (",".join(map(str, default)) or "none") if isinstance(default, tuple) else default
        kwargs = {"dest": dest_prefix + name, "default": None,
                  "help": f"{texts.get(name, name.replace('_', ' '))} (default {shown})"}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, tuple):
            kind = type(default[0]) if default else _element_type(annotations[name])
            kwargs["type"] = _list_of(kind, flag)
            kwargs["metavar"] = "A,B,..."
        else:
            kwargs["type"] = type(default) if default is not None else str
        if name in choices:
            kwargs["choices"] = list(choices[name])
        target.add_argument(flag, **kwargs)
    parser.set_defaults(**{f"_options_{cls.__name__}{dest_prefix}": tuple(chosen)})


def options_given(args, cls, *, dest_prefix: str = "") -> dict[str, Any]:
    """The fields of ``cls`` whose flags (added by :func:`add_options`) were given."""
    fields = getattr(args, f"_options_{cls.__name__}{dest_prefix}", ())
    values = {f: getattr(args, dest_prefix + f, None) for f in fields}
    return {f: v for f, v in values.items() if v is not None}


def options_from_args(args, cls, *, dest_prefix: str = "", **overrides):
    """Build ``cls`` from the flags given (the rest keep the dataclass defaults).

    ``overrides`` win over flags. A ``TypeError`` from the dataclass becomes a
    one-line :class:`CnasError`; its own validation errors pass through as they are.
    """
    values = {**options_given(args, cls, dest_prefix=dest_prefix), **overrides}
    try:
        return cls(**values)
    except TypeError as exc:
        raise CnasError(f"bad setting: {exc}") from None


def _field_default(field):
    import dataclasses

    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _element_type(annotation: str):
    """``int`` for ``"tuple[int, ...]"`` (an empty default says nothing about its items)."""
    import re

    match = re.search(r"tuple\[\s*(int|float|str)\b", annotation)
    return {"int": int, "float": float}.get(match.group(1), str) if match else str


def _list_of(kind, flag: str):
    import argparse

    noun = {int: "integers", float: "numbers"}.get(kind, "values")

    def parse(text: str) -> tuple:
        try:
            return tuple(_parse_list(text, flag, kind, noun))
        except CnasError as exc:  # argparse reports its own type errors, with this text
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


# -- renamed flags ------------------------------------------------------------------------
# A flag that meant different things in different commands got a name per meaning
# (issue #20). The old spelling still parses, to the same destination with the same type,
# hidden from --help, and says once on stderr which flag replaces it, so scripts written
# against the old names keep working while they are moved over.


#: Help of ``--model-seed`` (train, estimate): one text, so the flag means one thing.
MODEL_SEED_HELP = "seed of the initial weights and of the data the model sees (order, augmentation, minibatch)"
#: Help of ``--torch-threads`` (train, estimate).
TORCH_THREADS_HELP = "CPU threads of torch (default: the cores not busy with other work, from the load average)"


class _DeprecatedAlias(argparse.Action):
    """Hidden old spelling of a flag: a one-line note on stderr, then the new flag's action."""

    def __init__(self, option_strings, dest, *, target, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.target = target

    def __call__(self, parser, namespace, values, option_string=None):
        new = self.target.option_strings[0]
        print(f"cnas: note: {option_string} is deprecated in `{parser.prog}`; use {new}", file=sys.stderr)
        self.target(parser, namespace, values, new)


def add_deprecated_aliases(parser, aliases: Mapping[str, str]) -> None:
    """Keep each old flag of ``aliases`` (old -> new) working as a hidden, deprecated alias.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        Must already have every new flag.
    aliases : mapping of str to str
        Old spelling -> the flag that replaces it in this command.
    """
    by_flag = {s: a for a in parser._actions for s in a.option_strings}
    for old, new in aliases.items():
        target = by_flag[new]
        parser.add_argument(old, dest=target.dest, nargs=target.nargs, type=target.type, choices=target.choices,
                            default=argparse.SUPPRESS, help=argparse.SUPPRESS, action=_DeprecatedAlias,
                            target=target)


def with_new_flag_names(message: str, parser) -> str:
    """``message`` with each old flag spelling of ``parser`` replaced by its new name.

    Library errors name the flags of the time they were written (``--workers must be at
    least 1``); a user who typed ``--processes`` should read ``--processes``.
    """
    for old, new in deprecated_aliases(parser).items():
        message = re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", new, message)
    return message


def deprecated_aliases(parser) -> dict[str, str]:
    """Old spelling -> new flag, for every alias :func:`add_deprecated_aliases` gave ``parser``."""
    return {old: a.target.option_strings[0] for a in parser._actions if isinstance(a, _DeprecatedAlias)
            for old in a.option_strings}


# -- compile settings: shared by every command that builds or costs a network ----------
COMPILE_FLAGS = {"num_classes": "--classes"}
#: Fields a user never sets from the command line.
COMPILE_HIDDEN = ("bytes_per_element",)


def add_compile_options(parser, *, skip: Sequence[str] = ()) -> None:
    """Add one flag per :class:`~concurrent_nas.shapes.CompileSettings` field."""
    from ..shapes import CompileSettings

    # No argparse choices: CompileSettings itself names a bad value and the valid ones.
    add_options(parser, CompileSettings, skip=(*COMPILE_HIDDEN, *skip), flags=COMPILE_FLAGS,
                title="compile settings")


def compile_settings_from_args(args, **overrides):
    """The :class:`~concurrent_nas.shapes.CompileSettings` the flags of :func:`add_compile_options` name.

    Only fields whose flag was given, plus ``overrides``, differ from the defaults, so a
    command's own option of the same name (e.g. ``cnas train --image-size``) only
    reaches the settings when the command passes it in ``overrides``.
    """
    from ..shapes import CompileSettings

    return options_from_args(args, CompileSettings, **overrides)


@contextmanager
def terminate_as_interrupt():
    """A kill (SIGTERM) stops a command like Ctrl-C does.

    Python's default for SIGTERM ends the process at once: no ``finally``, so temporary
    files stay and workers are orphaned. As a ``KeyboardInterrupt`` it unwinds like
    Ctrl-C: temporary files removed, workers stopped, finished work kept.
    """

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. called from a notebook thread)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
