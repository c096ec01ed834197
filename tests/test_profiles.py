"""Device profiles: shipped ones load and round-trip, bad ones are one line, exit 2, nothing written."""

from __future__ import annotations

import pytest

from concurrent_nas.cli.main import main
from concurrent_nas.errors import CnasError
from concurrent_nas.predict import load_profile, profile_to_toml, shipped_profiles
from concurrent_nas.predict.profiles import DeviceProfile

GOOD = """
name = "lab"
description = "three boards on a line"

[units]
names = ["a", "b", "c"]

[compute]
gflops = 2.0
gbytes_per_s = 0.5
overhead_us = 10.0

[link]
latency_ms = 1.0
bandwidth_mbit = 8.0
send_cpu_ms = 0.25
topology = "line"
"""


def write(tmp_path, text, name="p.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_profiles_load_and_cite_every_number():
    assert shipped_profiles() == ["edge", "multicore", "paper"]
    for name in shipped_profiles():
        profile = load_profile(name)
        assert profile.name == name and len(profile.units) == 10
        # A source for every number of the file: compute, the link's three and the units.
        for key in ("units", "compute", "latency_ms", "bandwidth_mbit", "send_cpu_ms", "topology"):
            assert profile.sources.get(key), (name, key)


def test_edge_profile_is_papers_001_wifi():
    edge = load_profile("edge")
    assert edge.link.latency_s == pytest.approx(1e-3)  # RTT 2 ms, one way
    assert edge.link.bandwidth_Bps == pytest.approx(1e6 / 8)  # 1 Mbit/s
    # 300 M MACs (MobileNetV2) at 2.885 GFLOP/s: 208 ms of the 226 ms measured.
    assert edge.compute.seconds(600e6, 0) == pytest.approx(0.208, abs=1e-3)


@pytest.mark.parametrize("source", ["paper", "edge", "file", "file-wake"])
def test_round_trip(tmp_path, source):
    text = GOOD.replace("send_cpu_ms = 0.25", "send_cpu_ms = 0.25\nwake_ms = 0.5") if source == "file-wake" else GOOD
    profile = load_profile(write(tmp_path, text) if source.startswith("file") else source)
    text = profile_to_toml(profile)
    again = load_profile(write(tmp_path, text, "again.toml"))
    assert profile_to_toml(again) == text
    assert again.units == profile.units and again.link.topology == profile.link.topology
    assert again.compute.flops_per_s == pytest.approx(profile.compute.flops_per_s, rel=1e-12)
    assert again.link.bandwidth_Bps == pytest.approx(profile.link.bandwidth_Bps, rel=1e-12)
    assert again.link.wake_s == profile.link.wake_s == (5e-4 if source == "file-wake" else 0.0)
    assert again.sources == profile.sources


def test_file_values_in_si_units(tmp_path):
    p = load_profile(write(tmp_path, GOOD))
    assert p.units == ("a", "b", "c")
    # 10 us + 4e9 FLOPs / 2 GFLOP/s + 1e9 bytes / 0.5 GB/s = 4.00001 s
    assert p.compute.seconds(4e9, 1e9) == pytest.approx(4.00001)
    assert (p.link.latency_s, p.link.bandwidth_Bps, p.link.send_cpu_s) == pytest.approx((1e-3, 1e6, 2.5e-4))
    assert p.hops(3) == {(0, 1): 1, (1, 0): 1, (1, 2): 1, (2, 1): 1, (0, 2): 2, (2, 0): 2}


def test_star_and_graph_hops(tmp_path):
    star = load_profile(write(tmp_path, GOOD.replace('"line"', '"star"')))
    assert star.hops(3)[(1, 2)] == 2 and star.hops(3)[(0, 2)] == 1
    ring = load_profile(write(tmp_path, GOOD.replace('"line"', '"graph"\nedges = [[0, 1], [1, 2], [2, 0]]')))
    assert set(ring.hops(3).values()) == {1}


BAD = [
    ("name = [", "is not valid TOML"),
    (GOOD.replace("bandwidth_mbit = 8.0", "bandwidth_mbit = 0"), "'link.bandwidth_mbit' must be > 0, got 0"),
    (GOOD.replace("bandwidth_mbit = 8.0", "bandwidth_mbit = -3"), "'link.bandwidth_mbit' must be > 0, got -3"),
    (GOOD.replace("latency_ms = 1.0\n", ""), "missing field 'link.latency_ms'"),
    (GOOD.replace("[compute]", "[computer]"), "unknown field 'computer'"),
    (GOOD.replace("gflops = 2.0", "gflops = \"fast\""), "'compute.gflops' must be a number"),
    (GOOD.replace('"line"', '"ring"'), "'link.topology' must be one of"),
    (GOOD.replace('"line"', '"graph"\nedges = [[0, 1]]'), "leave some units unreachable"),
    (GOOD.replace('names = ["a", "b", "c"]', "count = 0"), "'units.count' must be a positive integer"),
    (GOOD.replace("send_cpu_ms = 0.25", "send_cpu_ms = 0.25\nwake_ms = -1"), "'link.wake_ms' must be >= 0, got -1"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_profile_is_one_line(tmp_path, text, message):
    with pytest.raises(CnasError, match=None) as info:
        load_profile(write(tmp_path, text))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_fewer_units_than_asked():
    with pytest.raises(CnasError, match="describes 10 units, fewer than the 12 asked for"):
        load_profile("paper").check_units(12)


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(CnasError, match="no profile named 'laptop'; use one of edge, multicore, paper"):
        load_profile("laptop")


def test_cli_profile_refuses_an_existing_file(tmp_path, capsys):
    out = write(tmp_path, "keep me", "host.toml")
    assert main(["profile", "--out", str(out), "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"cnas: error: {out} exists; pass --force to replace it"
    assert out.read_text() == "keep me"


def test_cli_score_with_a_bad_profile_writes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["sample", "--gen", "dp", "--n", "2", "--nodes", "10", "--out-dir", str(run)]) == 0
    before = sorted(p.name for p in run.iterdir())
    bad = write(tmp_path, GOOD.replace("bandwidth_mbit = 8.0", "bandwidth_mbit = 0"))
    for profile, message in [("nope", "no profile named 'nope'"), (str(bad), "must be > 0"),
                             ("edge", "fewer than the 12 asked for")]:
        capsys.readouterr()
        assert main(["score", str(run), "--units", "2,12" if profile == "edge" else "2", "--profile", profile]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
        assert sorted(p.name for p in run.iterdir()) == before


def test_host_profile_measures_and_loads(tmp_path):
    from concurrent_nas.predict.hostprofile import ProfileOptions, measure_host_profile

    profile, out = measure_host_profile(ProfileOptions(out=str(tmp_path / "h.toml"), quick=True, repeats=3))
    again = load_profile(out)
    assert isinstance(again, DeviceProfile) and again.name == "this-host" and len(again.units) == 2
    assert again.compute.flops_per_s > 0 and again.link.bandwidth_Bps > 0
    assert "gloo" in again.sources["link"] and "shm" in again.sources
    assert again.link.wake_s >= 0 and "wake_ms" in again.sources["shm"]
    assert "unit process spent beyond those times" in again.sources["compute"]


def test_unit_overhead_is_what_the_chain_took_beyond_its_blocks():
    """The chain's blocks predicted by a compute model, then a chain measured 20 us a
    block slower: that is the overhead the profile adds; never negative."""
    from concurrent_nas.placement.distributed import PROBE_CHAIN_BLOCKS, PROBE_CHAIN_IMAGE, probe_chain
    from concurrent_nas.predict.hostprofile import unit_overhead_s
    from concurrent_nas.predict.profiles import ComputeModel
    from concurrent_nas.shapes import CompileSettings, plan_network

    compute = ComputeModel(1e10, 0.0, 1e-4)
    assert unit_overhead_s(compute, 0.0) == 0.0  # faster than the model: no extra, never negative

    plans = plan_network(probe_chain(), CompileSettings(image_size=PROBE_CHAIN_IMAGE))
    assert len(plans) == PROBE_CHAIN_BLOCKS + 2
    model_s = sum(1e-4 + p.flops / 1e10 for p in plans)
    assert unit_overhead_s(compute, model_s + 20e-6 * len(plans)) == pytest.approx(20e-6)
