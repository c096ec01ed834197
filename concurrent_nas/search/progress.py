"""Progress of a search: a bar with the best values so far, or heartbeat lines off a terminal."""

from __future__ import annotations

import sys
import time


def best_text(best: dict[str, float]) -> str:
    """``latency 1.23, accuracy -70.1`` (the best value of each objective so far)."""
    return ", ".join(f"{name} {value:.4g}" for name, value in best.items()) or "no feasible trial yet"


class SearchProgress:
    """Callable given to :func:`~concurrent_nas.search.search` as ``progress``.

    On a terminal a tqdm bar whose postfix is the best value of each objective; otherwise
    (a log file, a batch job) one line per ``every_s`` seconds and a last one at the end,
    so a long search shows it is alive without flooding the log.

    Parameters
    ----------
    stream : file, default sys.stderr
    every_s : float
        Seconds between heartbeat lines when ``stream`` is not a terminal.
    """

    def __init__(self, stream=None, every_s: float = 30.0):
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.bar = None
        self.last = None

    def __call__(self, done: int, budget: int, best: dict[str, float]) -> None:
        if self.stream.isatty():
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=budget, desc="search", unit="trial", file=self.stream, leave=False)
            self.bar.n = min(done, budget)
            self.bar.set_postfix_str(best_text(best), refresh=True)
            return
        now = time.monotonic()
        if self.last is None or now - self.last >= self.every_s or done >= budget:
            self.last = now
            print(f"search: {done}/{budget} trials; best {best_text(best)}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
