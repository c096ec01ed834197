"""The README's two set-up commands, timed: the main job and the test suite.

Both commands are read from the README itself (its "Set-up" section), without their
``pip install`` part (timed separately it is mostly the network and the local wheel
cache). The main job runs in a fresh temporary folder, so nothing it finds there is up to
date; the suite runs in the repository, as ``.ci/run`` does.

    python benchmarks/bench_setup.py            # main job, then the suite
    python benchmarks/bench_setup.py --no-suite

Writes ``benchmarks/results/setup.{md,json}`` with the commit it ran at. Numbers are only
meaningful on an otherwise idle host: the load average before each step is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from stamp import git_commit, rows_to_markdown

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def setup_commands(readme: str) -> list[str]:
    """The README's set-up commands, in order (main job first, then the test suite)."""
    section = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def steps(command: str) -> list[str]:
    """The steps of one set-up command after its ``pip install``."""
    return [s.strip() for s in command.split("&&") if not s.strip().startswith("pip ")]


def timed(step: str, cwd: Path) -> dict:
    """Wall seconds, children's peak RSS and the last output line of one shell step."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(step, shell=True, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if done.returncode != 0:
        raise SystemExit(f"step failed ({done.returncode}): {step}\n{done.stdout[-3000:]}{done.stderr[-1000:]}")
    tail = (done.stdout.strip().splitlines() or [""])[-1]
    return {"step": step, "wall_s": round(wall, 1), "peak_rss_mb": round(peak_mb), "load_before": round(load, 2),
            "last_line": tail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-suite", action="store_true", help="time the main job only")
    args = parser.parse_args()
    main_job, suite = setup_commands((ROOT / "README.md").read_text())
    rows = []
    with tempfile.TemporaryDirectory(prefix="cnas-setup-") as folder:
        for step in steps(main_job):
            rows.append({"command": "main job", **timed(step, Path(folder))})
            print(rows[-1], flush=True)
    if not args.no_suite:
        for step in steps(suite):
            rows.append({"command": "test suite", **timed(step, ROOT)})
            print(rows[-1], flush=True)
    totals = {}
    for row in rows:
        totals[row["command"]] = round(totals.get(row["command"], 0.0) + row["wall_s"], 1)
    commit = git_commit(["concurrent_nas", "tests"])
    summary = [{"command": name, "wall_s": wall} for name, wall in totals.items()]
    text = (
        "# The README's set-up commands, timed (without their pip install)\n\n"
        f"Commit `{commit}`; `python benchmarks/bench_setup.py`; finished "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n"
        + rows_to_markdown(summary) + "\n" + rows_to_markdown([{k: v for k, v in r.items()} for r in rows])
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "setup.md").write_text(text)
    (RESULTS / "setup.json").write_text(json.dumps({"commit": commit, "totals": totals, "rows": rows}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
