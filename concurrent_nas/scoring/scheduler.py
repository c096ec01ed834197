"""Scoring many architectures: chunks, checkpoints, and what to do when a worker dies.

Work is cut into fixed chunks of architectures. A chunk runs on a backend
(:mod:`.backends`: a local process pool, or a Dask ``distributed`` cluster given by
its scheduler address) and its rows come back to this process, which writes them as one
checkpoint file (atomically) before anything else. Interrupting the run loses at most
the chunks in flight; the same call later skips every chunk already on disk, and
because chunk boundaries depend only on the inputs and the scoring settings, never on
the worker count or timing, the result is the same bit for bit.

KaHyPar can end its process or hang (see :mod:`.partition`). Locally every task is one
architecture, and the pool says which task's worker died or ran past ``timeout``: that
architecture gets an error row, the run goes on, nothing else runs again. On Dask a
task is a whole chunk. A chunk whose worker died is split into single architectures; a
single architecture whose worker died while others were running is retried alone; if
it kills its worker alone, it gets an error row. Workers there are not ours to kill: a
task running for over ``timeout`` seconds per architecture (counted from when the
scheduler sees a worker thread take it up) is cancelled, its worker restarted, and the
task split until the architecture that hangs is found. A cluster left without workers
ends the run with an error after ``LOST_WORKERS_S``; finished chunks stay on disk for
the resume.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .backends import Backend, DaskBackend, LocalBackend, NotReady, WorkerDied, WorkerFn
from .checkpoints import Checkpoints
from .config import DEFAULT_TIMEOUT, ScoreConfig, check_timeout, check_workers
from .records import error_row, score_records, tidy

DIED = "the partitioner process died while scoring this architecture (KaHyPar crash); it is left out, the rest of the run is unaffected"
TIMED_OUT = (
    "scoring this architecture took longer than the timeout ({timeout:g} s; a hung KaHyPar call?); it is left out, "
    "the rest of the run is unaffected; raise --timeout if the architecture is just large"
)


@dataclass
class _Task:
    chunk: int
    positions: list[int]  # indices into the chunk's records
    solo: bool = False


@dataclass
class RunOutcome:
    """What :func:`run_scoring` produced: the rows, and how the work went."""

    table: pd.DataFrame
    chunks_total: int
    chunks_resumed: int
    died: list[int] = field(default_factory=list)
    timed_out: list[int] = field(default_factory=list)


def run_scoring(
    records: Sequence[dict],
    config: ScoreConfig,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    worker_fn: WorkerFn = score_records,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> RunOutcome:
    """Score every record on a process pool or a Dask cluster.

    Parameters
    ----------
    records : sequence of dict
        From :func:`architecture_records` or :func:`dag_record`.
    config : ScoreConfig
        Scoring settings.
    workers : int, optional
        Local worker processes (default: all cores). Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a Dask ``distributed`` scheduler, e.g. ``tcp://host:8786``.
    checkpoint_dir : path, optional
        Where finished chunks are kept; the same directory resumes a run.
    progress : callable, optional
        Called with the number of architectures each time some finish.
    worker_fn : callable
        The function a worker runs on one architecture at a time, ``fn([record],
        config)`` (tests substitute one that crashes or hangs).
    timeout : float or None, default 300
        Seconds one architecture may take before it is taken for hung: its worker is
        stopped and it gets an error row (on Dask: ``timeout`` per architecture of a
        task). ``None`` or 0 waits forever.

    Returns
    -------
    RunOutcome
        ``table``: one row per (architecture, units, eps) plus one error row per failed
        architecture, ordered as ``records``.
    """
    timeout = check_timeout(timeout)
    check_workers(workers)
    chunks = [list(records[i : i + config.chunk]) for i in range(0, len(records), config.chunk)]
    store = Checkpoints(checkpoint_dir)
    results: dict[int, pd.DataFrame] = {}
    resumed = 0
    for i in range(len(chunks)):
        frame = store.load(i)
        if frame is not None:
            results[i] = frame
            resumed += 1
            if progress:
                progress(len(chunks[i]))
    todo = [i for i in range(len(chunks)) if i not in results]
    pending: dict[int, dict[int, pd.DataFrame]] = {i: {} for i in todo}
    died: list[int] = []
    timed_out: list[int] = []
    if todo:
        if scheduler:
            backend: Backend = DaskBackend(scheduler, timeout=timeout)
        else:
            n = workers if workers is not None else (os.cpu_count() or 1)
            backend = LocalBackend(min(n, sum(len(chunks[i]) for i in todo)), timeout=timeout)
        size = backend.task_size or config.chunk
        queue = deque(_Task(i, list(range(j, min(j + size, len(chunks[i])))))
                      for i in todo for j in range(0, len(chunks[i]), size))
        # Dask is polled even without a timeout, to notice a cluster that lost its workers.
        poll = min(1.0, max(0.05, timeout / 4)) if timeout else (1.0 if scheduler else None)
        inflight: dict[Any, _Task] = {}
        aborted = True
        try:
            while queue or inflight:
                while queue and len(inflight) < backend.capacity:
                    solo_running = any(t.solo for t in inflight.values())
                    if solo_running or (queue[0].solo and inflight):
                        break
                    task = queue.popleft()
                    chunk_records = [chunks[task.chunk][p] for p in task.positions]
                    inflight[backend.submit(worker_fn, chunk_records, config)] = task
                done = backend.wait_any(inflight, poll)
                backend.watch()
                for future in done:
                    task = inflight.pop(future)
                    try:
                        frame = backend.result(future)
                    except NotReady:
                        inflight[future] = task
                        continue
                    except WorkerDied as death:
                        if death.expired:
                            _settle_timeout(task, queue, chunks, pending, timed_out, timeout)
                        else:
                            _requeue(task, queue, chunks, pending, died, alone=backend.isolates_deaths)
                        _finish_if_complete(task.chunk, chunks, pending, results, store, progress)
                        continue
                    for p in task.positions:
                        rows = frame[frame["arch_id"] == chunks[task.chunk][p]["arch_id"]]
                        pending[task.chunk][p] = rows
                    _finish_if_complete(task.chunk, chunks, pending, results, store, progress)
            aborted = False
        finally:
            backend.close(abort=aborted)
    table = pd.concat([results[i] for i in range(len(chunks))], ignore_index=True) if chunks else tidy(pd.DataFrame())
    return RunOutcome(tidy(table), len(chunks), resumed, died, timed_out)


def _settle_timeout(task: _Task, queue: deque, chunks, pending, timed_out: list[int], timeout) -> None:
    """A task stopped at its deadline: split it until the one that hangs runs alone, then list it."""
    if len(task.positions) > 1:  # Dask: which one hangs is unknown, look one by one
        for p in reversed(task.positions):
            queue.appendleft(_Task(task.chunk, [p]))
        return
    record = chunks[task.chunk][task.positions[0]]
    pending[task.chunk][task.positions[0]] = tidy(error_row(record, TIMED_OUT.format(timeout=timeout)))
    timed_out.append(record["arch_id"])


def _requeue(task: _Task, queue: deque, chunks, pending, died: list[int], *, alone: bool) -> None:
    if len(task.positions) > 1:
        # Which architecture killed the worker is unknown: try each one on its own.
        for p in reversed(task.positions):
            queue.appendleft(_Task(task.chunk, [p]))
    elif task.solo or alone:
        p = task.positions[0]
        record = chunks[task.chunk][p]
        pending[task.chunk][p] = tidy(error_row(record, DIED))
        died.append(record["arch_id"])
    else:
        # It may only have shared a worker with the culprit: run it with nothing beside it.
        queue.appendleft(_Task(task.chunk, task.positions, solo=True))


def _finish_if_complete(i: int, chunks, pending, results, store: Checkpoints, progress) -> None:
    done = pending[i]
    if len(done) < len(chunks[i]):
        return
    frame = tidy(pd.concat([done[p] for p in range(len(chunks[i]))], ignore_index=True))
    store.save(i, frame)
    results[i] = frame
    del pending[i]
    if progress:
        progress(len(chunks[i]))
