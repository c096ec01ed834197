"""Helpers shared by subcommands: progress bars, list parsing, --param parsing."""

from __future__ import annotations

import sys
from typing import Any

from ..errors import CnasError


def progress_bar(total: int, desc: str, *, unit: str = "it"):
    """A tqdm bar on a terminal; a silent stand-in when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not sys.stderr.isatty(), leave=False)


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
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CnasError(f"{what} expects comma-separated {noun}, got '{text}'") from None
    if not values:
        raise CnasError(f"{what} expects at least one value")
    return values
