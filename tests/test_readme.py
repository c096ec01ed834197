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


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.+?)\n```", README, re.S)


def main_job_steps() -> list[str]:
    """The main job's `cnas` steps, as written, without the install."""
    steps = [s.strip() for s in setup_commands()[0].split("&&")]
    return [s for s in steps if s.startswith("cnas ")]


def test_readme_main_job_runs_as_written_on_a_small_population(tmp_path):
    import subprocess

    from concurrent_nas.rundir import Run

    steps = main_job_steps()
    assert steps and "--n 1000" in steps[0]
    for step in steps:
        # The same command, 12 architectures instead of 1000 so the suite stays fast.
        done = subprocess.run(step.replace("--n 1000", "--n 12"), shell=True, cwd=tmp_path,
                              capture_output=True, text=True)
        assert done.returncode == 0, (step, done.stderr)
    run_dir = re.search(r"--out(?:-dir)? (\S+)", steps[0]).group(1)  # --out: the old spelling, still accepted
    run = Run(tmp_path / run_dir)
    assert len(run.architectures) == 12
    # Every architecture scored on the default units and eps, one best option per units.
    assert set(run.scores["units"]) == {4, 6, 8, 10}
    assert run.scores.groupby(["arch_id", "units"])["best"].sum().eq(1).all()
    assert run.scores["arch_id"].nunique() == 12


def test_readme_python_snippets_run(tmp_path, monkeypatch):
    import concurrent_nas as cnas

    snippets = python_snippets()
    assert snippets, "the README has no Python example"
    # The snippets read runs/dp40, the main job's run: make a small one first.
    monkeypatch.chdir(tmp_path)
    cnas.write_run("runs/dp40", "dp", 4, nodes=20, seed=0)
    cnas.score_run("runs/dp40", cnas.ScoreConfig(units=(4,)))
    for code in snippets:
        namespace: dict = {}
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert isinstance(namespace.get("run"), cnas.Run)
    assert namespace["parts"] is not None and set(namespace["parts"].values()) <= set(range(4))
