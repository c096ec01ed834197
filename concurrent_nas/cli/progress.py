"""Progress of long commands: a tqdm bar on a terminal, heartbeat lines everywhere else.

Every command that works through a list (sample, params, score, latency, train,
estimate, report) shows its progress through :func:`progress_bar`. On a terminal that is
tqdm's bar, as before. When stderr is not a terminal (a log file, a batch job, a pipe),
a bar would be noise and silence looks like a hang, so a :class:`Heartbeat` writes one
line every ``CNAS_HEARTBEAT`` seconds (default 10; 0 turns it off) with what is done,
the rate and the time left, from its own thread, so a single slow item still shows the
process is alive. A command that finishes within the first interval prints nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

#: Environment variable: seconds between heartbeat lines off a terminal (0: none).
HEARTBEAT_ENV = "CNAS_HEARTBEAT"
DEFAULT_EVERY_S = 10.0


def heartbeat_seconds() -> float:
    """Seconds between heartbeat lines, from ``CNAS_HEARTBEAT`` (default 10; 0 or less: off)."""
    text = os.environ.get(HEARTBEAT_ENV, "")
    try:
        return float(text) if text.strip() else DEFAULT_EVERY_S
    except ValueError:
        return DEFAULT_EVERY_S


def progress_bar(total: int, desc: str, *, unit: str = "it", stream=None, every_s: float | None = None):
    """A tqdm bar when ``stream`` (default stderr) is a terminal, else a :class:`Heartbeat`.

    Both are context managers with ``update(n)``, ``set_postfix_str(text)`` and
    ``close()``, so a library function taking a tqdm-like bar takes either.
    """
    stream = stream if stream is not None else sys.stderr
    if stream.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=stream, leave=False)
    return Heartbeat(total, desc, unit=unit, stream=stream, every_s=heartbeat_seconds() if every_s is None else every_s)


def format_duration(seconds: float) -> str:
    """``"45s"``, ``"3m05s"``, ``"2h10m"``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def heartbeat_line(desc: str, done: int, total: int, unit: str, elapsed_s: float, note: str = "") -> str:
    """One heartbeat: ``score dp40: 120/1000 arch (12%), 4.0 arch/s, ~3m40s left, 30s elapsed``.

    The rate is the mean since the start; the time left assumes it holds. Before the
    first item is done there is no rate, and the line says so. A ``total`` of 0 means
    unknown: the line counts what is done.
    """
    count = f"{done}/{total} {unit} ({100 * done / total:.0f}%)" if total else f"{done} {unit} done"
    if done > 0 and elapsed_s > 0:
        rate = done / elapsed_s
        speed = f"{rate:.3g} {unit}/s" if rate >= 1 else f"{1 / rate:.3g} s/{unit}"
        left = f", ~{format_duration(max(total - done, 0) / rate)} left" if total else ""
    else:
        speed, left = f"no {unit} finished yet", ""
    text = f"{desc}: {count}, {speed}{left}, {format_duration(elapsed_s)} elapsed"
    return text + (f" [{note}]" if note else "")


class Heartbeat:
    """A tqdm stand-in for non-terminals: a line every ``every_s`` seconds, from a thread.

    Parameters
    ----------
    total : int
        Items to do.
    desc : str
        What is being done, at the start of each line.
    unit : str
        Name of one item.
    stream : file
        Where the lines go (default stderr).
    every_s : float
        Seconds between lines; 0 or less prints nothing.
    clock : callable
        Monotonic seconds (``time.monotonic``).
    """

    def __init__(self, total: int, desc: str, *, unit: str = "it", stream=None, every_s: float = DEFAULT_EVERY_S,
                 clock=time.monotonic):
        self.total, self.desc, self.unit = int(total or 0), desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.every_s, self.clock = float(every_s), clock
        self.n, self.note = 0, ""
        self.start = clock()
        self._stop = threading.Event()
        self._thread = None
        if self.every_s > 0:
            self._thread = threading.Thread(target=self._beat, name="cnas-heartbeat", daemon=True)
            self._thread.start()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        self.n += n

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """What is in hand now, shown at the end of the next line."""
        self.note = str(text)

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        self.desc = desc

    def line(self) -> str:
        """The heartbeat line for now."""
        return heartbeat_line(self.desc, self.n, self.total, self.unit, self.clock() - self.start, self.note)

    def _beat(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                print(self.line(), file=self.stream, flush=True)
            except (OSError, ValueError):  # the log went away: stop beating, keep working
                return

    def close(self) -> None:
        """Stop the heartbeat (no final line: the command prints its own summary)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> "Heartbeat":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def training_heartbeat(stream=None, every_s: float | None = None):
    """Yield the ``report`` callback of training: prints each finished model's line, counts it.

    Training draws its own per-epoch bars on a terminal; off one, a :class:`Heartbeat`
    (total unknown) says how many models are done and how long each took on average.
    """
    stream = stream if stream is not None else sys.stderr
    every = 0.0 if stream.isatty() else (heartbeat_seconds() if every_s is None else every_s)
    with Heartbeat(0, "train", unit="model", stream=stream, every_s=every) as beat:
        def report(line: str) -> None:
            print(line, flush=True)
            beat.update(1)

        yield report
