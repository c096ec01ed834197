"""Faults injected into real runs: interrupts, kills, failing writes, concurrent commands.

Tests run as root, where ``chmod`` does not stop a write; a failing disk is injected
as the ``OSError``/``RuntimeError`` the library would see, at the one seam every table
and checkpoint goes through (:func:`concurrent_nas.rundir.atomic_output`'s caller).
"""

from __future__ import annotations

import pandas as pd
import pytest

from concurrent_nas import rundir
from concurrent_nas.cli.main import main as cnas
from concurrent_nas.rundir import load_parquet

TRAIN = ["--dataset", "digits", "--image-size", "8", "--epochs", "3", "--batch-size", "64", "--lr", "0.05",
         "--stem-channels", "4", "--channel-cap", "8", "--device", "cpu", "--torch-threads", "1"]  # fmt: skip


def sample(tmp_path, n: int = 1, nodes: int = 4, name: str = "run"):
    run = tmp_path / name
    assert cnas(["sample", "--gen", "chain", "--n", str(n), "--nodes", str(nodes), "--out-dir", str(run)]) == 0
    return run


def leftovers(run) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*.tmp"))


def test_interrupt_at_the_second_history_write_loses_no_epoch(tmp_path, monkeypatch, capsys):
    # Epoch 2's checkpoint is on disk, its history row is not: resume must rebuild it.
    run = sample(tmp_path)
    calls = []
    write = rundir.write_table

    def interrupt_second_history(frame, path):
        if str(path).endswith(rundir.HISTORY):
            calls.append(path)
            if len(calls) == 2:
                raise KeyboardInterrupt
        write(frame, path)

    monkeypatch.setattr(rundir, "write_table", interrupt_second_history)
    assert cnas(["train", str(run), *TRAIN]) == 130
    assert len(load_parquet(run / rundir.HISTORY)) == 1 and leftovers(run) == []
    monkeypatch.setattr(rundir, "write_table", write)
    assert cnas(["train", str(run), *TRAIN]) == 0
    assert list(load_parquet(run / rundir.HISTORY)["epoch"]) == [1, 2, 3]
    assert leftovers(run) == []
    # A deleted history comes back from the checkpoints without training again.
    (run / rundir.HISTORY).unlink()
    assert cnas(["train", str(run), *TRAIN]) == 0
    assert list(load_parquet(run / rundir.HISTORY)["epoch"]) == [1, 2, 3]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), RuntimeError("PytorchStreamWriter failed")])
def test_full_disk_while_training_is_one_line_and_leaves_no_temporary(tmp_path, monkeypatch, capsys, error):
    import torch

    run = sample(tmp_path)
    save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        save(obj, f, *args, **kwargs)  # the temporary file exists, then the disk fills
        raise error

    monkeypatch.setattr(torch, "save", full_disk)
    assert cnas(["train", str(run), *TRAIN]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("cnas: error: cannot write checkpoint") and "Traceback" not in err
    assert leftovers(run) == [] and not (run / rundir.HISTORY).exists()


@pytest.mark.parametrize("activity, argv", [
    ("scored", ["score", "{run}", "--units", "2", "--processes", "1"]),
    ("trained", ["train", "{run}", *TRAIN, "--epochs", "1"]),
    ("measured", ["latency", "{run}", "--units", "1", "--repeats", "1", "--warmup", "0", "--placement", "single"]),
])  # fmt: skip
def test_second_process_on_a_run_is_refused_with_the_owner_pid(tmp_path, capsys, activity, argv):
    import subprocess
    import sys

    run = sample(tmp_path, n=2, nodes=6)
    argv = [a.format(run=run) for a in argv]
    # A real second process holds the run's lock, as a running command does.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from concurrent_nas.rundir import run_lock\n"
         "with run_lock(sys.argv[1], sys.argv[2]):\n"
         "    print('locked', flush=True)\n"
         "    time.sleep(120)\n", str(run), activity],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "locked\n"
        assert cnas(argv) == 2
        err = capsys.readouterr().err
        assert f"is already being {activity} by pid {holder.pid}" in err.splitlines()[-1]
        assert sorted(p.name for p in run.iterdir()) == [f".{activity}.lock", "architectures.parquet",
                                                         "manifest.json"]  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    # The killed holder's lock is stale: the next command takes it over and removes it.
    assert (run / f".{activity}.lock").exists()
    assert cnas(argv) == 0
    assert not (run / f".{activity}.lock").exists()


def test_damaged_score_sidecar_and_table_are_named(tmp_path, capsys):
    run = sample(tmp_path, n=2, nodes=6)
    score = ["score", str(run), "--units", "2", "--processes", "1"]
    assert cnas(score) == 0
    good = (run / rundir.SCORES).read_bytes()
    (run / rundir.SCORES_SIDECAR).write_text("{not json")
    capsys.readouterr()
    assert cnas(score) == 2
    assert "scores.json is missing or corrupt" in capsys.readouterr().err
    assert cnas([*score, "--force"]) == 0
    (run / rundir.SCORES).write_bytes(good[: len(good) // 2])  # truncated beside a valid sidecar
    capsys.readouterr()
    assert cnas(score) == 2
    err = capsys.readouterr().err
    assert "scores.parquet is corrupt" in err and err.count("\n") == 1


def test_sigterm_inside_a_table_write_leaves_no_temporary_and_resumes(tmp_path, capsys):
    # A real SIGTERM, delivered while the first history row's temporary file exists.
    import os
    import subprocess
    import sys

    run = sample(tmp_path)
    child = (
        "import os, signal, sys\n"
        "import pandas as pd\n"
        "write = pd.DataFrame.to_parquet\n"
        "def write_then_terminate(self, path, *args, **kwargs):\n"
        "    write(self, path, *args, **kwargs)\n"
        "    if 'history' in str(path):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "pd.DataFrame.to_parquet = write_then_terminate\n"
        "from concurrent_nas.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", child, "train", str(run), *TRAIN], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("cnas: interrupted")
    assert leftovers(run) == [] and not (run / rundir.HISTORY).exists()
    assert cnas(["train", str(run), *TRAIN]) == 0
    assert list(load_parquet(run / rundir.HISTORY)["epoch"]) == [1, 2, 3]


@pytest.mark.parametrize("contents, message", [
    ([1, 2, 3], "its contents are not a dict"),
    ({"epoch": 1}, "'model' is missing or not a dict"),
    ({"epoch": "1", "model": {}}, "'epoch' is missing or not a int"),
])  # fmt: skip
def test_odd_checkpoint_contents_are_one_line(tmp_path, capsys, contents, message):
    import torch

    from concurrent_nas.training.loop import CHECKPOINT

    run = sample(tmp_path)
    assert cnas(["train", str(run), *TRAIN, "--epochs", "1"]) == 0  # the later --epochs wins
    [folder] = (run / "checkpoints" / "digits").glob("*/arch-00000")  # <config hash>/<model>
    ckpt = folder / CHECKPOINT
    torch.save(contents, ckpt)
    capsys.readouterr()
    assert cnas(["train", str(run), *TRAIN]) == 2
    err = capsys.readouterr().err
    assert f"is not a training checkpoint ({message}); delete it or pass --restart" in err.splitlines()[-1]
    assert "Traceback" not in err


def test_history_without_its_key_columns_is_refused_not_replaced(tmp_path, capsys):
    run = sample(tmp_path)
    pd.DataFrame({"note": ["rows someone else made"]}).to_parquet(run / rundir.HISTORY)
    before = (run / rundir.HISTORY).read_bytes()
    assert cnas(["train", str(run), *TRAIN, "--epochs", "1"]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert "history.parquet is damaged (lacks column(s) dataset, config, arch_id, generator, epoch)" in err
    assert (run / rundir.HISTORY).read_bytes() == before


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_command(tmp_path):
    import os
    import subprocess
    import sys

    run = sample(tmp_path)
    # A real SIGKILL while a temporary file exists (its pid is then gone for good).
    (run / "checkpoints").mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import os, signal, sys\n"
         "from concurrent_nas.rundir import atomic_output\n"
         "with atomic_output(sys.argv[1]) as tmp:\n"
         "    tmp.write_text('half')\n"
         "    os.kill(os.getpid(), signal.SIGKILL)\n", str(run / "checkpoints" / "x.parquet")],
    )  # fmt: skip
    assert child.wait(timeout=60) == -9 and leftovers(run) == [f"checkpoints/.x.parquet.{child.pid}.tmp"]
    mine = run / f".kept.{os.getpid()}.tmp"  # a live writer's temporary stays
    mine.write_text("in progress")
    assert cnas(["score", str(run), "--units", "2", "--processes", "1"]) == 0
    assert leftovers(run) == [mine.name]
