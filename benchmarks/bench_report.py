"""How long `cnas report` takes on real scored runs.

Runs the command (a fresh process each time, start-up included) ``--repeat`` times on the
runs given, prints a table with the median and spread and the load average, and writes
``benchmarks/results/report.md``. Timings on a shared machine are noisy: read the spread.

    python benchmarks/bench_report.py runs/fig9-dp40 runs/fig9-er40 runs/fig9-ba40 \\
        runs/fig9-ws40 runs/fig9-fb40 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from concurrent_nas.rundir import ARCHITECTURES, SCORES, load_parquet

RESULTS = Path(__file__).resolve().parent / "results" / "report.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="scored run directories")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    rows = sum(len(load_parquet(Path(r) / SCORES)) for r in args.runs)
    archs = sum(len(load_parquet(Path(r) / ARCHITECTURES)) for r in args.runs)
    times, loads = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            loads.append(os.getloadavg()[0])
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "concurrent_nas.cli.main", "report", *args.runs,
                 "--out-dir", f"{tmp}/r{i}"],
                check=True, stdout=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - start)
    command = "cnas report " + " ".join(args.runs) + " --out-dir DIR"
    table = "\n".join(
        [
            "| runs | architectures | score rows | repeats | median s | min s | max s | load avg (1 min) |",
            "|---|---|---|---|---|---|---|---|",
            f"| {len(args.runs)} | {archs} | {rows} | {args.repeat} | {statistics.median(times):.2f} | "
            f"{min(times):.2f} | {max(times):.2f} | {min(loads):.2f}-{max(loads):.2f} |",
        ]
    )
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        f"# cnas report timing\n\n`{command}` (PNG + SVG, fresh process each time, "
        f"{os.cpu_count()} cores, shared machine)\n\n{table}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
