"""Benchmark `cnas sample`: wall time (interpreter start included) and peak memory.

Usage: python benchmarks/bench_sample.py [--repeats 3]
Writes benchmarks/results/sample.md. Targets (issue 2): 1000 DP-40 architectures in under
3 s with peak memory under 400 MB; 10,000 in under 20 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = [("dp", 1000), ("dp", 10000), ("er", 1000), ("ws", 1000), ("ba", 1000), ("fb", 1000)]


def run_once(gen: str, count: int, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `cnas sample` in a fresh interpreter."""
    cmd = [sys.executable, "-m", "concurrent_nas.cli.main", "sample", "--gen", gen, "--n", str(count),
           "--nodes", "40", "--out-dir", str(out), "--force"]
    # A fresh process per measurement so ru_maxrss of the children is this run's alone.
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    result = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True)
    seconds, peak_mb = map(float, result.stdout.split())
    return seconds, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for gen, count in CASES:
            times, peaks = zip(*(run_once(gen, count, Path(tmp) / "run") for _ in range(args.repeats)))
            rows.append((gen, count, min(times), max(times), max(peaks)))
            print(f"{gen:4s} n={count:6d}  best {min(times):6.2f} s  worst {max(times):6.2f} s  peak {max(peaks):6.0f} MB")
    load = os.getloadavg()[0]
    lines = [
        "# `cnas sample` benchmark",
        "",
        f"`python benchmarks/bench_sample.py --repeats {args.repeats}` on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {load:.2f} at the end. "
        "Wall time includes interpreter start; 40 blocks per architecture.",
        "",
        "| generator | architectures | best wall (s) | worst wall (s) | peak memory (MB) |",
        "|---|---:|---:|---:|---:|",
        *(f"| {g} | {n} | {lo:.2f} | {hi:.2f} | {mb:.0f} |" for g, n, lo, hi, mb in rows),
        "",
    ]
    out = Path(__file__).parent / "results" / "sample.md"
    out.write_text("\n".join(lines))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
