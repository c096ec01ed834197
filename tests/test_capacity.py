"""--match-params: each architecture's widths are sized to a baseline's parameter count."""

from __future__ import annotations

import pytest

import concurrent_nas as cn
from concurrent_nas.cli.main import main as cnas
from concurrent_nas.compiler import build_network
from concurrent_nas.errors import CnasError
from concurrent_nas.rundir import load_parquet
from concurrent_nas.shapes import CompileSettings, count_params
from concurrent_nas.training import build_baseline, count_parameters
from concurrent_nas.training.capacity import baseline_parameters, match_channels, parameter_target, parse_target


def test_baseline_count_is_the_built_baselines():
    assert baseline_parameters("cifarnet", 10, 16) == count_parameters(build_baseline("cifarnet", 10, 16))
    assert parameter_target("cifarnet", 10, 32) == 1_756_426  # TF-slim CifarNet at 10 classes
    assert parameter_target("250k", 10, 32) == 250_000


@pytest.mark.parametrize("text, value", [("cifarnet", "cifarnet"), ("ResNet50", "resnet50"), ("1.76M", 1_760_000),
                                         ("250k", 250_000), ("12345", 12345)])  # fmt: skip
def test_parse_target(text, value):
    assert parse_target(text) == value


@pytest.mark.parametrize("text, words", [("vgg", "unknown baseline 'vgg'"), ("0", "positive"), ("-3k", "positive")])
def test_parse_target_refuses_in_one_line(text, words):
    with pytest.raises(CnasError, match=words) as info:
        parse_target(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("gen", ["dp", "ws", "er", "ba"])
def test_matched_networks_are_within_ten_percent_and_the_built_module_agrees(gen):
    dag = cn.generate(gen, nodes=40, seed=0)
    settings = CompileSettings(image_size=16)
    target = parameter_target("cifarnet", 10, 16)
    matched = match_channels(dag, settings, target)
    assert matched.channel_cap == round(matched.stem_channels * 256 / 32)  # the ratio is kept
    assert matched.replace(stem_channels=32, channel_cap=256) == settings  # nothing else changes
    params = count_params(dag, matched)
    assert abs(params - target) <= 0.10 * target
    with __import__("torch").device("meta"):
        assert count_parameters(build_network(dag, matched)) == params


def test_match_picks_the_closest_width():
    dag = cn.generate("dp", nodes=20, seed=1)
    settings = CompileSettings(image_size=16, stem_channels=8, channel_cap=32)
    matched = match_channels(dag, settings, 50_000, max_stem=64)
    best = abs(count_params(dag, matched) - 50_000)
    for stem in range(1, 65):
        option = settings.replace(stem_channels=stem, channel_cap=4 * stem)
        assert abs(count_params(dag, option) - 50_000) >= best


@pytest.mark.parametrize("target", [50, 10**12])
def test_unreachable_target_is_refused_naming_the_closest(target):
    dag = cn.generate("dp", nodes=10, seed=0)
    with pytest.raises(CnasError, match=r"no channel setting brings this architecture within ±10% .*closest: stem"):
        match_channels(dag, CompileSettings(image_size=16), target, max_stem=64)


def test_cli_match_params_trains_matched_networks(tmp_path):
    run = tmp_path / "run"
    assert cnas(["sample", "--gen", "dp", "--n", "2", "--nodes", "6", "--out-dir", str(run)]) == 0
    args = ["train", str(run), "--dataset", "digits", "--image-size", "8", "--epochs", "1", "--device", "cpu",
            "--match-params", "30k", "--stem-channels", "4", "--channel-cap", "16"]  # fmt: skip
    assert cnas(args) == 0
    acc = load_parquet(run / "accuracy.parquet")
    assert ((acc["params"] - 30_000).abs() <= 3_000).all()
    assert (acc["channel_cap"] == 4 * acc["stem_channels"]).all() and (acc["match_params"] == "30k").all()
    assert set(acc["merge"]) == {CompileSettings().merge}
    # The same command resumes: the search is deterministic, so the fingerprints agree.
    assert cnas(args) == 0


@pytest.mark.parametrize(
    "value, message",
    [
        ("vgg", "--match-params: unknown baseline 'vgg'; give one of cifarnet, resnet50"),
        ("50", "--match-params 50: architecture 0: no channel setting brings this architecture within ±10% of 50"),
        ("1e12", "no channel setting brings this architecture within ±10% of 1,000,000,000,000"),
    ],
)
def test_cli_bad_match_params_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, value, message):
    run = tmp_path / "run"
    assert cnas(["sample", "--gen", "dp", "--n", "1", "--nodes", "5", "--out-dir", str(run)]) == 0
    before = sorted(p.name for p in run.iterdir())
    capsys.readouterr()
    args = ["train", str(run), "--dataset", "digits", "--image-size", "8", "--epochs", "1",
            "--match-params", value, "--baseline", "cifarnet"]  # fmt: skip
    assert cnas(args) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("cnas: error:") and message in error
    assert sorted(p.name for p in run.iterdir()) == before
