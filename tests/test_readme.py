"""The README's set-up commands and the CI script stay in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

from concurrent_nas.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def setup_commands() -> list[str]:
    section = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = setup_commands()
    assert len(commands) == 2
    ci_lines = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert ci_lines == [commands[1]]
    assert "pytest" in commands[1] and "cnas sample" in commands[0]


def test_setup_commands_never_ask_for_an_unpinned_torch():
    for command in setup_commands():
        assert "-c constraints/cpu.txt" in command
    assert "torch==" in (ROOT / "constraints/cpu.txt").read_text()
    assert 'torch>=' in (ROOT / "pyproject.toml").read_text()


def test_every_cnas_subcommand_in_the_readme_exists():
    parser = build_parser()
    known = set(parser._subparsers._group_actions[0].choices)
    used = set(re.findall(r"\bcnas ([a-z]+)\b", README))
    assert used <= known, f"README mentions commands that do not exist: {sorted(used - known)}"
