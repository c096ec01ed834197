"""The shipped `multicore` profile: this host's measured numbers, and splitting pays under it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import networkx as nx
import pytest

from concurrent_nas.predict import load_profile, predict_latency
from concurrent_nas.predict.predict import block_seconds
from concurrent_nas.search import SearchConfig
from concurrent_nas.shapes import CompileSettings

MEASURED = Path(__file__).resolve().parent.parent / "benchmarks/results/bench_predict_validate_this-host.toml"
# 32 channels of 32 x 32 float32: the output of one block of the fan below.
FEATURE_MAP = 32 * 32 * 32 * 4


def test_numbers_are_the_measured_ones_and_each_is_cited():
    profile, host = load_profile("multicore"), tomllib.loads(MEASURED.read_text())
    assert len(profile.units) == 10 and profile.link.topology == "switch"
    assert profile.compute.flops_per_s == pytest.approx(host["compute"]["gflops"] * 1e9)
    assert profile.compute.bytes_per_s == pytest.approx(host["compute"]["gbytes_per_s"] * 1e9)
    assert profile.compute.overhead_s == pytest.approx(host["compute"]["overhead_us"] / 1e6)
    # The link is the shared-memory probe kept in the measured file's sources.
    assert host["sources"]["shm"] == ("also measured: latency_ms = 0.02774, bandwidth_mbit = 9.037e+04, "
                                      "send_cpu_ms = 0.07698, wake_ms = 0")
    assert (profile.link.latency_s, profile.link.bandwidth_Bps, profile.link.send_cpu_s, profile.link.wake_s) == \
        pytest.approx((0.02774e-3, 90.37e9 / 8, 0.07698e-3, 0.0))
    for key in ("units", "compute", "latency_ms", "bandwidth_mbit", "send_cpu_ms", "wake_ms", "topology"):
        assert profile.sources.get(key), key


def message_ms(profile, nbytes: int) -> float:
    link = profile.link
    return (link.latency_s + nbytes / link.bandwidth_Bps) * 1e3


def test_a_message_costs_less_than_a_block_on_multicore_and_fifty_blocks_on_paper():
    # input -> four parallel blocks -> output, 32 channels throughout.
    fan = nx.DiGraph([(0, b) for b in range(1, 5)] + [(b, 5) for b in range(1, 5)])
    settings = CompileSettings(staging="uniform")
    multicore, paper = load_profile("multicore"), load_profile("paper")
    block_ms = block_seconds(fan, multicore, settings)[0][1] * 1e3
    # 0.02774 ms + 1048576 bit / 90.37 Gbit/s = 0.0393 ms, plus 0.07698 ms of the sender's CPU.
    assert message_ms(multicore, FEATURE_MAP) == pytest.approx(0.0393, abs=1e-4)
    assert message_ms(multicore, FEATURE_MAP) + 0.07698 < block_ms
    # 0.13 ms + 1048576 bit / 63 Mbit/s = 16.77 ms, dozens of blocks.
    assert message_ms(paper, FEATURE_MAP) == pytest.approx(16.77, abs=0.01)
    assert message_ms(paper, FEATURE_MAP) > 50 * block_seconds(fan, paper, settings)[0][1] * 1e3
    # So the fan is split over the four units on multicore, and kept on one unit on paper.
    split = predict_latency(fan, 4, "multicore", settings=settings)
    assert split.pred_speedup > 1.3 and len(set(split.assignment)) > 1
    assert predict_latency(fan, 4, "paper", settings=settings).pred_speedup == 1.0


def test_it_is_the_search_default():
    assert SearchConfig().profile == "multicore"
