"""Several training configurations side by side in one run, keyed by a short hash (issue #20 item 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from concurrent_nas.cli.main import main as cnas
from concurrent_nas.rundir import load_parquet, write_table
from concurrent_nas.shapes import CompileSettings
from concurrent_nas.training.config import Phase, TrainConfig
from concurrent_nas.training.experiment import LEGACY_CONFIG, TRAIN_CONFIGS, configuration

TINY = ["--dataset", "digits", "--image-size", "8", "--stem-channels", "4", "--channel-cap", "8",
        "--batch-size", "64", "--device", "cpu", "--torch-threads", "1"]  # fmt: skip


def chain_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    assert cnas(["sample", "--gen", "chain", "--n", "2", "--nodes", "4", "--out-dir", str(run)]) == 0
    return run


def test_hash_changes_with_what_is_trained_not_with_how_long_or_where():
    base, _ = configuration(TrainConfig())
    assert len(base) == 8 and int(base, 16) >= 0
    assert configuration(TrainConfig(epochs=50, device="cuda", workers=4))[0] == base
    assert configuration(TrainConfig(), CompileSettings())[0] == base  # the default settings, named
    others = [
        configuration(TrainConfig(phases=(Phase(0, 0.02, 0.9),)))[0],
        configuration(TrainConfig(seed=1))[0],
        configuration(TrainConfig(batch_size=32))[0],
        configuration(TrainConfig(), CompileSettings(channel_cap=64))[0],
        configuration(TrainConfig(), match_params="cifarnet")[0],
        configuration(TrainConfig(), image_size=16)[0],
    ]
    assert len({base, *others}) == 7


def test_two_learning_rates_live_side_by_side_and_each_resumes(tmp_path, capsys):
    run = chain_run(tmp_path)
    first = ["train", str(run), *TINY, "--lr", "0.05", "--epochs", "1"]
    second = ["train", str(run), *TINY, "--lr", "0.02", "--epochs", "1"]
    assert cnas(first) == 0
    assert cnas(second) == 0  # failed with "made with a different phases" before
    acc = load_parquet(run / "accuracy.parquet")
    assert len(acc) == 4 and acc["config"].nunique() == 2
    by_lr = {json.loads(json.dumps(v["phases"]))[0][1]: k for k, v in json.loads((run / TRAIN_CONFIGS).read_text()).items()}
    assert set(by_lr) == {0.05, 0.02} and set(by_lr.values()) == set(acc["config"])
    assert set(acc[acc["config"] == by_lr[0.02]]["schedule"]) == {"0:0.02/0.9"}
    for config in by_lr.values():
        assert (run / "checkpoints" / "digits" / config / "arch-00001" / "last.pt").exists()
    untouched = acc[acc["config"] == by_lr[0.02]].reset_index(drop=True)
    # The first configuration again with one more epoch: it resumes after epoch 1 and
    # leaves the other configuration's rows as they were.
    capsys.readouterr()
    assert cnas([*first[:-1], "2"]) == 0
    out = capsys.readouterr().out
    assert "resumed after epoch 1" in out and f"config {by_lr[0.05]}" in out
    acc = load_parquet(run / "accuracy.parquet")
    assert list(acc[acc["config"] == by_lr[0.05]]["epochs"]) == [2, 2]
    assert acc[acc["config"] == by_lr[0.02]].reset_index(drop=True).equals(untouched)
    hist = load_parquet(run / "history.parquet")
    assert hist.groupby("config")["epoch"].max().to_dict() == {by_lr[0.05]: 2, by_lr[0.02]: 1}
    # Ranking within one configuration.
    assert cnas(["top", str(run), "--by", "top1", "--where", f"config={by_lr[0.02]}"]) == 0
    rows = [line.split("|")[-2].strip() for line in capsys.readouterr().out.splitlines()[2:]]
    assert rows == ["1", "1"]  # one row per architecture: that configuration's
    assert cnas(["top", str(run), "--by", "top1"]) == 0
    assert [line.split("|")[-2].strip() for line in capsys.readouterr().out.splitlines()[2:]] == ["2", "2"]


def test_tables_written_before_hashes_read_as_one_configuration(tmp_path, capsys):
    run = chain_run(tmp_path)
    args = ["train", str(run), *TINY, "--ids", "0", "--epochs", "1"]
    assert cnas(args) == 0
    for name in ("accuracy.parquet", "history.parquet"):  # as an older version wrote them
        write_table(load_parquet(run / name).drop(columns="config"), run / name)
    [ckpt] = (run / "checkpoints" / "digits").glob("*/arch-00000")
    ckpt.rename(run / "checkpoints" / "digits" / "arch-00000")  # the layout before hashes
    assert cnas(["top", str(run), "--by", "top1"]) == 0
    # The same command, one more epoch: the old checkpoint is this configuration's, and resumes.
    capsys.readouterr()
    assert cnas([*args[:-2], "--epochs", "2"]) == 0
    assert "resumed after epoch 1" in capsys.readouterr().out
    assert (ckpt / "last.pt").exists() and not (run / "checkpoints" / "digits" / "arch-00000").exists()
    resumed = load_parquet(run / "accuracy.parquet")
    assert sorted(resumed["config"]) == [LEGACY_CONFIG, ckpt.parent.name]
    old = resumed[resumed["config"] == LEGACY_CONFIG].drop(columns="config").reset_index(drop=True)
    assert cnas([*args[:-2], "--lr", "0.02", "--epochs", "1"]) == 0
    acc = load_parquet(run / "accuracy.parquet")
    assert sorted(acc["config"]) == sorted([LEGACY_CONFIG, ckpt.parent.name, configuration(
        TrainConfig(phases=(Phase(0, 0.02, 0.9),), augment="none", device="cpu"),
        CompileSettings(stem_channels=4, channel_cap=8), image_size=8)[0]])  # fmt: skip
    legacy = acc[acc["config"] == LEGACY_CONFIG].drop(columns="config").reset_index(drop=True)
    pd.testing.assert_frame_equal(legacy, old[legacy.columns])
    assert set(load_parquet(run / "history.parquet")["config"]) == set(acc["config"])
    capsys.readouterr()
    assert cnas(["top", str(run), "--by", "top1", "--where", "config=ffffffff"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnas: error:") and err.count("\n") == 1
