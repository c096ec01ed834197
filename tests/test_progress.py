"""Progress off a terminal: heartbeat lines with done/total, rate and time left; bars unchanged."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading

import pytest

from concurrent_nas.cli import common
from concurrent_nas.cli.progress import (
    Heartbeat, format_duration, heartbeat_line, heartbeat_seconds, progress_bar,
)


def test_line_has_done_total_rate_and_time_left():
    # 120 of 1000 in 30 s: 4 arch/s, 880 left -> 220 s = 3m40s.
    assert heartbeat_line("score dp40", 120, 1000, "arch", 30.0) == \
        "score dp40: 120/1000 arch (12%), 4 arch/s, ~3m40s left, 30s elapsed"
    # Slower than one per second: seconds per item. 2 of 5 in 50 s -> 25 s/model, 75 s left.
    assert heartbeat_line("train", 2, 5, "model", 50.0, "arch 3") == \
        "train: 2/5 model (40%), 25 s/model, ~1m15s left, 50s elapsed [arch 3]"
    assert heartbeat_line("latency", 0, 4, "arch", 12.0) == \
        "latency: 0/4 arch (0%), no arch finished yet, 12s elapsed"
    assert heartbeat_line("train", 3, 0, "model", 60.0) == "train: 3 model done, 20 s/model, 1m00s elapsed"


@pytest.mark.parametrize("seconds,text", [(0, "0s"), (59.4, "59s"), (60, "1m00s"), (3599, "59m59s"), (7800, "2h10m")])
def test_durations(seconds, text):
    assert format_duration(seconds) == text


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class _Lines(io.StringIO):
    """A non-terminal stream that signals each line written."""

    def __init__(self):
        super().__init__()
        self.written = threading.Semaphore(0)

    def write(self, text):
        n = super().write(text)
        if text.endswith("\n"):
            self.written.release()
        return n


def test_heartbeat_beats_from_its_own_thread_even_when_nothing_finishes():
    stream, clock = _Lines(), _Clock()
    with Heartbeat(10, "score", unit="arch", stream=stream, every_s=0.01, clock=clock) as beat:
        clock.now = 130.0
        assert stream.written.acquire(timeout=30)  # no update() at all: still a line
        clock.now = 160.0
        beat.set_postfix_str("arch 7: kahypar on 2 unit(s)")
        beat.update(3)
        first = len(stream.getvalue().splitlines())  # every line after this one sees all three
        while len(stream.getvalue().splitlines()) == first:
            assert stream.written.acquire(timeout=30)
    lines = stream.getvalue().splitlines()
    # The first beat may come before the clock moved on a busy host: 0s or 30s.
    assert re.fullmatch(r"score: 0/10 arch \(0%\), no arch finished yet, (0|30)s elapsed", lines[0])
    assert lines[-1] == "score: 3/10 arch (30%), 20 s/arch, ~2m20s left, 1m00s elapsed [arch 7: kahypar on 2 unit(s)]"
    count = len(lines)
    assert not beat._thread.is_alive() and len(stream.getvalue().splitlines()) == count  # stopped on exit


def test_zero_interval_prints_nothing_and_starts_no_thread():
    stream = _Lines()
    with Heartbeat(5, "x", stream=stream, every_s=0) as beat:
        beat.update(5)
    assert beat._thread is None and stream.getvalue() == ""


def test_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("CNAS_HEARTBEAT", raising=False)
    assert heartbeat_seconds() == 10.0
    monkeypatch.setenv("CNAS_HEARTBEAT", "2.5")
    assert heartbeat_seconds() == 2.5
    monkeypatch.setenv("CNAS_HEARTBEAT", "often")
    assert heartbeat_seconds() == 10.0


def test_non_terminal_gets_a_heartbeat_and_common_still_exports_it():
    bar = progress_bar(3, "sample", unit="arch", stream=io.StringIO(), every_s=0)
    assert isinstance(bar, Heartbeat)
    bar.close()
    assert common.progress_bar is progress_bar


def test_a_command_into_a_log_prints_heartbeats(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "CNAS_HEARTBEAT": "0.05"}
    cmd = [sys.executable, "-m", "concurrent_nas.cli.main"]
    sampled = subprocess.run([*cmd, "sample", "--gen", "dp", "--n", "4", "--nodes", "20", "--out-dir", str(run)],
                             capture_output=True, text=True, env=env, timeout=300)
    assert sampled.returncode == 0
    scored = subprocess.run([*cmd, "score", str(run), "--units", "2", "--eps", "0.1", "--processes", "1"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert scored.returncode == 0, scored.stderr
    beats = [line for line in scored.stderr.splitlines() if line.startswith("score run: ")]
    assert beats and all("/4 arch (" in line and "elapsed" in line for line in beats)
    assert "\r" not in scored.stderr  # no bar drawn into the log


def test_training_heartbeat_counts_finished_models(capsys):
    from concurrent_nas.cli.progress import training_heartbeat

    stream = _Lines()
    with training_heartbeat(stream=stream, every_s=0.01) as report:
        report("arch 0: top-1 97.1 %")
        report("arch 1: top-1 96.4 %")
        while "train: 2 model done" not in stream.getvalue():
            assert stream.written.acquire(timeout=30)
    assert capsys.readouterr().out == "arch 0: top-1 97.1 %\narch 1: top-1 96.4 %\n"
