"""One meaning per flag across subcommands; old spellings still parse, with a note (issue #20)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import defaultdict

import pytest

from concurrent_nas.cli.common import deprecated_aliases
from concurrent_nas.cli.main import build_parser
from concurrent_nas.placement.assign import PLACEMENTS

#: What each command needs besides the flag under test.
BASE = {
    "sample": ["sample", "--gen", "dp"],
    "score": ["score", "RUN"],
    "latency": ["latency", "RUN"],
    "train": ["train", "RUN", "--dataset", "digits"],
    "estimate": ["estimate", "RUN"],
    "search": ["search"],
    "report": ["report", "RUN"],
}

#: (command, old flag, new flag, value given, attribute on the namespace, value parsed).
RENAMED = [
    ("sample", "--out", "--out-dir", "runs/x", "out", "runs/x"),
    ("score", "--seed", "--partition-seed", "3", "seed", 3),
    ("score", "--workers", "--processes", "2", "workers", 2),
    ("score", "--timeout", "--arch-timeout", "7.5", "timeout", 7.5),
    ("score", "--format", "--summary", "json", "format", "json"),
    ("latency", "--threads", "--threads-per-unit", "2", "threads", 2),
    ("latency", "--seed", "--measure-seed", "4", "seed", 4),
    ("latency", "--timeout", "--unit-timeout", "9", "timeout_s", 9.0),
    ("latency", "--rank", "--unit-rank", "1", "rank", 1),
    ("train", "--seed", "--model-seed", "5", "seed", 5),
    ("train", "--workers", "--loader-workers", "3", "workers", 3),
    ("train", "--threads", "--torch-threads", "1", "threads", 1),
    ("estimate", "--seed", "--model-seed", "6", "seed", 6),
    ("estimate", "--threads", "--torch-threads", "2", "threads", 2),
    ("search", "--out", "--out-dir", "runs/s", "out", "runs/s"),
    ("search", "--seed", "--sampler-seed", "8", "seed", 8),
    ("search", "--baseline", "--compare-dir", "runs/r", "baseline", "runs/r"),
    ("report", "--out", "--out-dir", "rep", "out", "rep"),
    ("report", "--format", "--figure-formats", "png", "format", "png"),
]  # fmt: skip

#: Flags on several commands whose help differs in wording but not in meaning.
SAME_MEANING = {
    "--force": "replace what the command would write (its file, directory or table)",
    "--ids": "architecture ids of the run",
    "--units": "unit counts (processes) a network is split over",
    "--image-size": "side of the square input image",
    "--staging": "staging mode(s) of the compile settings",
    "--out": "the one file a command writes (--out-dir names directories)",
    "--out-dir": "the directory a command writes into",
    "--batch-size": "images per minibatch",
    "--data-dir": "where the data set lives",
    "--dataset": "the image data set",
    "--device": "the torch device",
    "--epochs": "training epochs",
    "--profile": "a device profile (shipped name or TOML file)",
    "--repeats": "timed repetitions per measurement",
    "--transport": "link between units (gloo, shm, ...)",
}


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def visible_flags(parser: argparse.ArgumentParser) -> dict[str, tuple[str, str]]:
    """``--flag`` -> (dest, help without its default) for each flag ``--help`` shows."""
    flags = {}
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                flags[flag] = (action.dest, re.sub(r"\s*\(default[^)]*\)\s*$", "", action.help or ""))
    return flags


@pytest.mark.parametrize("command, old, new, given, dest, value", RENAMED)
def test_old_spelling_parses_to_the_same_value_with_a_note(capsys, command, old, new, given, dest, value):
    parser = build_parser()
    by_new = parser.parse_args([*BASE[command], new, given])
    assert capsys.readouterr().err == ""
    by_old = build_parser().parse_args([*BASE[command], old, given])
    assert getattr(by_old, dest) == getattr(by_new, dest) == value
    assert vars(by_old) == vars(by_new)
    assert capsys.readouterr().err == f"cnas: note: {old} is deprecated in `cnas {command}`; use {new}\n"


def test_every_alias_is_tested_and_none_is_left_untested():
    found = {(name, old, new) for name, p in subparsers().items() for old, new in deprecated_aliases(p).items()}
    assert found == {(c, old, new) for c, old, new, *_ in RENAMED}


@pytest.mark.parametrize("command", sorted(BASE))
def test_help_shows_only_the_new_names(command):
    parser = subparsers()[command]
    text = parser.format_help()
    usage = parser.format_usage()
    for old, new in deprecated_aliases(parser).items():
        assert new in text
        # The old name may survive inside a longer one (--out in --out-dir), not on its own.
        assert not re.search(rf"(?<![\w-]){re.escape(old)}(?![\w-])", usage + text), (command, old)


def test_no_flag_has_two_meanings_across_subcommands():
    uses: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    for name, parser in subparsers().items():
        for flag, meaning in visible_flags(parser).items():
            uses[flag][name] = meaning
    differing = {flag for flag, by in uses.items() if len(set(by.values())) > 1}
    # Every flag either reads the same everywhere or is listed with the one thing it means.
    assert differing <= set(SAME_MEANING), sorted(differing - set(SAME_MEANING))
    for flag in SAME_MEANING:  # an allow-list entry that no longer applies is dropped
        assert flag in differing, flag
    # The flags renamed for having had two meanings each now belong to one command or meaning.
    assert set(uses["--seed"]) == {"sample"}
    assert set(uses["--model-seed"]) == {"train", "estimate"}
    assert set(uses["--torch-threads"]) == {"train", "estimate"}
    for gone in ("--workers", "--threads", "--timeout", "--format", "--baseline"):
        assert len(uses[gone]) <= 1, (gone, uses[gone])
    assert set(uses["--rank"]) == {"compile", "export"}
    assert {name for name, (dest, _) in uses["--out-dir"].items()} == {"sample", "search", "report"}


def test_latency_help_lists_every_placement():
    text = " ".join(subparsers()["latency"].format_help().split())
    for placement in PLACEMENTS:
        assert re.search(rf"(?<![\w-]){re.escape(placement)}(?![\w-])", text), placement


def test_an_old_spelling_still_runs_end_to_end(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "concurrent_nas.cli.main", "sample", "--gen", "chain",
                             "--n", "2", "--nodes", "4", "--out", str(out)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == "cnas: note: --out is deprecated in `cnas sample`; use --out-dir\n"
    assert (out / "architectures.parquet").exists()


@pytest.mark.parametrize("flag", ["--processes", "--workers"])
def test_library_errors_name_the_flag_by_its_new_name(small_dp_run, capsys, flag):
    from concurrent_nas.cli.main import main

    assert main(["score", str(small_dp_run), "--units", "2", flag, "0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "cnas: error: --processes must be at least 1, got 0"
    assert err[:-1] == ([] if flag == "--processes" else
                        ["cnas: note: --workers is deprecated in `cnas score`; use --processes"])
    assert not (small_dp_run / "scores.parquet").exists()
