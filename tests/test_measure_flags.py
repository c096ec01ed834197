"""Honest latency rows: load and free cores recorded, flags when the numbers cannot be trusted."""

from __future__ import annotations

import math

import pytest

from concurrent_nas.placement.measure import cores_used, describe_flags, measurement_flags
from concurrent_nas.placement.threads import free_cores, free_cores_for, host_load, usable_cpus


def row(**kw):
    base = {"arch_id": 3, "placement": "single", "units": 1, "threads": 1, "median_ms": 26.0, "p10_ms": 25.0,
            "p90_ms": 30.0, "single_unit_ms": 26.0, "free_cores": 2, "load_before": 0.1}
    return {**base, **kw}


@pytest.mark.parametrize("load,cpus,free", [(0.0, 2, 2), (0.3, 2, 2), (0.6, 2, 1), (1.6, 2, 1), (9.0, 2, 1),
                                            (2.4, 16, 14), (0.0, 1, 1)])
def test_free_cores_round_what_the_load_leaves(load, cpus, free):
    assert free_cores_for(load, cpus) == free


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
