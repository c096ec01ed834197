"""Honest latency rows: load and free cores recorded, flags when the numbers cannot be trusted."""

from __future__ import annotations

import math

import pytest

from concurrent_nas.placement.measure import cores_used, describe_flags, measurement_flags
from concurrent_nas.placement.threads import busy_cores, cpu_times, free_cores, free_cores_for, host_load, usable_cpus


def row(**kw):
    base = {"arch_id": 3, "placement": "single", "units": 1, "threads": 1, "median_ms": 26.0, "p10_ms": 25.0,
            "p90_ms": 30.0, "single_unit_ms": 26.0, "free_cores": 2, "load_before": 0.1}
    return {**base, **kw}


@pytest.mark.parametrize("load,cpus,free", [(0.0, 2, 2), (0.3, 2, 2), (0.6, 2, 1), (1.6, 2, 1), (9.0, 2, 1),
                                            (2.4, 16, 14), (0.0, 1, 1)])
def test_free_cores_round_what_the_load_leaves(load, cpus, free):
    assert free_cores_for(load, cpus) == free


def test_cpu_times_and_busy_cores_from_proc_stat_lines(tmp_path):
    # user nice system idle iowait irq softirq steal (guest...): busy = 100+0+50+0+0+10 = 160.
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 40 0 10 0 0 0\ncpu0 50 0 25 400 20 0 5 0 0 0\n")
    assert cpu_times(str(stat)) == (160, 1000)
    # 2 CPUs; between readings 300 of 400 ticks were busy: 1.5 cores' worth.
    assert busy_cores((160, 1000), (460, 1400), cpus=2) == 1.5
    assert busy_cores((160, 1000), (160, 1000), cpus=2) == 0.0  # no ticks passed
    assert cpu_times(str(tmp_path / "missing")) is None
    stat.write_text("cpu 1 2\n")
    assert cpu_times(str(stat)) is None


def test_host_load_sees_a_busy_process_now_not_a_minute_ago():
    import subprocess
    import sys

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy_load, _ = host_load(window_s=1.0)
    finally:
        spinner.kill()
        spinner.wait()
    # One spinning process is about one core of other work, whatever the load average says.
    assert busy_load >= 0.7


def test_host_load_reads_this_machine():
    load, free = host_load()
    assert load >= 0 and 1 <= free <= usable_cpus() and 1 <= free_cores() <= usable_cpus()


@pytest.mark.parametrize("kw,cores", [({}, 1), ({"threads": 2}, 2), ({"placement": "kahypar", "units": 4}, 4),
                                      ({"placement": "kahypar", "units": 2, "threads": 2}, 4),
                                      ({"placement": "threads", "units": 3, "threads": 1}, 3)])
def test_cores_used(kw, cores):
    assert cores_used(row(**kw)) == cores


def test_a_clean_baseline_has_no_flags():
    assert measurement_flags(row()) == ""
    assert measurement_flags(row(free_cores=math.nan)) == ""  # rows from before the column


def test_the_issue_case_is_flagged_everywhere_it_matters():
    # Issue 20: on a loaded 2-core host baseline (b), one process with 2 threads, took
    # 2604 ms against (a)'s 26 ms; speedup_same_cores read 91.7x without a warning.
    b = row(threads=2, median_ms=2604.0, p10_ms=900.0, p90_ms=3100.0, free_cores=1, load_before=1.7)
    assert measurement_flags(b) == "host-busy,wide-spread,b-slower-than-a"
    placed = row(placement="kahypar", units=2, median_ms=28.4, p10_ms=27.0, p90_ms=80.0, free_cores=2)
    assert measurement_flags(placed) == ""  # its own spread is not a baseline's
    assert measurement_flags(placed, ",".join(["", measurement_flags(b)])) == "baseline-suspect"
    b["flags"] = measurement_flags(b)
    assert describe_flags(b) == (
        "arch 3: single on 1 unit(s), 2 thread(s), 2.6e+03 ms: load 1.7 left 1 core(s) free, it used 2; "
        "p90/p10 = 3.4; slower than 1 thread (26 ms) (numbers from a busy host mislead: measure again on an idle one)")


def test_spread_limit_is_p90_over_p10_above_two():
    assert measurement_flags(row(p10_ms=10.0, p90_ms=20.0)) == ""
    assert measurement_flags(row(p10_ms=10.0, p90_ms=20.5)) == "wide-spread"


def test_b_as_fast_as_a_is_fine_and_host_busy_alone_marks_dependents():
    assert measurement_flags(row(threads=2, median_ms=26.0)) == ""
    assert measurement_flags(row(placement="paper", units=4, free_cores=3)) == "host-busy"
    assert measurement_flags(row(placement="paper", units=2), "host-busy") == "baseline-suspect"
    assert measurement_flags(row(placement="paper", units=2), "baseline-suspect") == ""


def test_thread_count_defaults_to_the_free_cores():
    import torch

    from concurrent_nas.placement.threads import use_threads

    try:
        assert use_threads(1) == 1 and torch.get_num_threads() == 1
        count = use_threads(0)
        assert 1 <= count <= usable_cpus() and torch.get_num_threads() == count
    finally:
        torch.set_num_threads(1)  # what conftest gives every test
