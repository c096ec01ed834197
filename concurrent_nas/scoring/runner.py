"""Score many architectures: process pool or Dask, checkpointed, crash-isolated.

Work is cut into fixed chunks of architectures. A chunk runs in a worker process (a
local :class:`~concurrent.futures.ProcessPoolExecutor`, or a Dask ``distributed``
cluster given by its scheduler address) and its rows come back to this process, which
writes them as one checkpoint file (atomically) before anything else. Interrupting the
run loses at most the chunks in flight; the same call later skips every chunk already
on disk, and because chunk boundaries depend only on the inputs and the scoring
settings, never on the worker count or timing, the result is the same bit for bit.

KaHyPar can end its process (see :mod:`.partition`). A chunk whose worker died is split
into single architectures; a single architecture whose worker died while others were
running is retried alone; if it kills its worker alone, that architecture gets an
error row and the run goes on.

KaHyPar can also hang. Local workers announce every architecture they start; one that
is still on the same architecture after ``timeout`` seconds is killed, that one
architecture gets an error row, and the rest of its chunk (and of any chunk that shared
the pool) runs again. On Dask, where workers are not ours to kill, a task running for
over ``timeout`` seconds per architecture (counted from when the scheduler sees a worker
thread take it up) is cancelled, its worker restarted, and the task split until the
architecture that hangs is found. A cluster left without workers ends the run with an
error after ``LOST_WORKERS_S``; finished chunks stay on disk for the resume.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import asyncio
import multiprocessing
import os
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import dag as dagmod
from ..errors import CnasError
from .hypergraph import build_hypergraph, check_costs
from .partition import DEFAULT_PRESET, PRESETS, preset_path
from .score import DEFAULT_EPS, DEFAULT_UNITS, SCORE_COLUMNS, data_unit, score_hypergraph

ID_COLUMNS = ["arch_id", "generator", "nodes"]
RESULT_COLUMNS = [*ID_COLUMNS, *SCORE_COLUMNS, "max_width", "error"]
DEFAULT_CHUNK = 20
# Seconds one architecture may take before its worker is taken for hung. A 82-vertex
# architecture takes about 0.1 s for 20 partitions; the limit is for hangs, not for speed.
DEFAULT_TIMEOUT = 300.0
DIED = "the partitioner process died while scoring this architecture (KaHyPar crash); it is left out, the rest of the run is unaffected"
TIMED_OUT = (
    "scoring this architecture took longer than the timeout ({timeout:g} s; a hung KaHyPar call?); it is left out, "
    "the rest of the run is unaffected; raise --timeout if the architecture is just large"
)


@dataclass(frozen=True)
class ScoreConfig:
    """Everything that determines the scores of a run (and so its checkpoints).

    Fields mirror :func:`~concurrent_nas.scoring.score_architecture`; ``settings`` is a
    :class:`~concurrent_nas.shapes.CompileSettings` or ``None`` for the defaults, and
    ``chunk`` the number of architectures per checkpointed task.
    """

    units: tuple[int, ...] = DEFAULT_UNITS
    eps: tuple[float, ...] = DEFAULT_EPS
    costs: str = "flops"
    a: float = 1.0
    b: float = 1.5
    c: float = 1.0
    seed: int = 0
    preset: str = DEFAULT_PRESET
    unit_bytes: float | None = None
    settings: Any = None
    chunk: int = DEFAULT_CHUNK

    def __post_init__(self):
        check_costs(self.costs)
        if self.preset not in PRESETS:
            raise CnasError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.chunk < 1:
            raise CnasError(f"chunk must be a positive integer, got {self.chunk}")
        for name in ("a", "b", "c"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise CnasError(f"exponent {name} must be a finite number, got {value}")

    def describe(self) -> dict:
        """Plain-JSON form (the compile settings as a dict) for manifests and hashing."""
        out = dataclasses.asdict(dataclasses.replace(self, settings=None))
        out["units"], out["eps"] = list(self.units), list(self.eps)
        settings = self.settings
        if settings is None and self.costs == "flops":
            from ..shapes import CompileSettings

            settings = CompileSettings()
        out["settings"] = dataclasses.asdict(settings) if settings is not None else None
        out["unit_bytes"] = self.unit_bytes if self.unit_bytes is not None else data_unit(self.costs, self.settings)
        # The preset's content, not just its name: an edited preset must not pass old
        # checkpoints or an old scores.parquet off as current.
        out["preset_sha256"] = hashlib.sha256(Path(preset_path(self.preset)).read_bytes()).hexdigest()[:16]
        return out


def architecture_records(table: pd.DataFrame) -> list[dict]:
    """Plain-data records (what workers receive) from an ``architectures.parquet`` table."""
    records = []
    for row in table.itertuples(index=False):
        stage = getattr(row, "stage_vertices", None)
        records.append(
            {
                "arch_id": int(row.arch_id),
                "generator": str(row.generator),
                "nodes": int(row.nodes),
                "edge_list": [[int(u), int(v)] for u, v in row.edge_list],
                "stage_vertices": [int(v) for v in (stage if stage is not None else [])],
            }
        )
    return records


def dag_record(arch_id: int, generator: str, dag) -> dict:
    """Plain-data record of one DAG (e.g. read from a node-link JSON file)."""
    return {
        "arch_id": int(arch_id),
        "generator": str(generator),
        "nodes": int(dag.graph.get("nodes", dag.number_of_nodes() - 2)),
        "edge_list": [list(e) for e in dagmod.edge_list(dag)],
        "stage_vertices": sorted(int(v) for v, s in dag.nodes(data="stage") if s),
    }


def _error_row(record: dict, message: str) -> dict:
    row = {c: None for c in RESULT_COLUMNS}
    row.update({k: record[k] for k in ID_COLUMNS}, error=message, best=False)
    return row


def score_records(records: Sequence[dict], config: ScoreConfig) -> pd.DataFrame:
    """Score plain-data architecture records; runs inside a worker.

    An architecture that raises (bad graph, shape pass error, partitioner error) gets one
    row with its ``error`` message instead of scores; the others are unaffected.
    """
    frames = []
    unit_bytes = config.unit_bytes if config.unit_bytes is not None else data_unit(config.costs, config.settings)
    for record in records:
        try:
            dag = dagmod.from_edge_list(record["edge_list"], record["stage_vertices"])
            hg = build_hypergraph(dag, config.costs, config.settings)
            frame = score_hypergraph(
                hg,
                dagmod.longest_path_vertices(dag),
                config.units,
                config.eps,
                unit_bytes=unit_bytes,
                a=config.a,
                b=config.b,
                c=config.c,
                seed=config.seed,
                preset=config.preset,
            )
            frame.insert(0, "nodes", record["nodes"])
            frame.insert(0, "generator", record["generator"])
            frame.insert(0, "arch_id", record["arch_id"])
            frame["max_width"] = dagmod.max_width(dag)
            frame["error"] = None
        except Exception as exc:  # one bad architecture must not end the chunk
            frame = pd.DataFrame([_error_row(record, f"{type(exc).__name__}: {exc}")])
        frames.append(frame)
    return _tidy(pd.concat(frames, ignore_index=True))


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Fixed column order and dtypes, so chunks concatenate into one clean table."""
    frame = frame.reindex(columns=RESULT_COLUMNS)
    ints = ["arch_id", "nodes", "units", "comm_bytes", "empty_parts", "longest_path", "vertices", "max_width"]
    floats = ["eps", "delta_w", "comm_norm", "eta", "cs", "entropy", "unit_bytes"]
    for col in ints:
        frame[col] = frame[col].astype("Int64")
    for col in floats:
        frame[col] = frame[col].astype("float64")
    frame["best"] = frame["best"].fillna(False).astype(bool)
    frame["generator"] = frame["generator"].astype(str)
    frame["error"] = frame["error"].astype(object).where(frame["error"].notna(), None)
    return frame


# -- checkpoints -------------------------------------------------------------------


def fingerprint(records: Sequence[dict], config: ScoreConfig) -> str:
    """Hash of the inputs and settings: checkpoints of another command never mix in."""
    h = hashlib.sha256()
    h.update(json.dumps(config.describe(), sort_keys=True, default=str).encode())
    for r in records:
        h.update(json.dumps([r["arch_id"], r["generator"], r["nodes"], r["edge_list"], r["stage_vertices"]]).encode())
    return h.hexdigest()[:20]


class Checkpoints:
    """A directory of finished chunks, ``chunk-<i>.parquet``, each written atomically."""

    def __init__(self, directory: str | Path | None):
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CnasError(f"cannot create checkpoint directory {self.directory}: {exc.strerror}") from None

    def _path(self, i: int) -> Path:
        return self.directory / f"chunk-{i:06d}.parquet"

    def load(self, i: int) -> pd.DataFrame | None:
        if self.directory is None or not self._path(i).exists():
            return None
        try:
            from ..rundir import load_parquet

            return load_parquet(self._path(i))
        except Exception:  # a damaged checkpoint is recomputed, never trusted
            self._path(i).unlink(missing_ok=True)
            return None

    def save(self, i: int, frame: pd.DataFrame) -> None:
        if self.directory is None:
            return
        from ..rundir import write_table

        write_table(frame, self._path(i))

    def remove(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


# -- backends ----------------------------------------------------------------------


class NotReady(Exception):
    """A finished task's result could not be fetched yet: ask again on the next round."""


class WorkerDied(Exception):
    """The process running a task ended (crash, kill) before returning.

    ``bystander``: it shared a pool we stopped because another task hung, so the task
    itself is not suspect. ``expired``: it ran past its deadline and was cancelled.
    """

    def __init__(self, *, bystander: bool = False, expired: bool = False):
        super().__init__()
        self.bystander = bystander
        self.expired = expired


# In a local worker: where it announces the architecture it starts (see _run_task).
_ANNOUNCE = None


def _init_local_worker(announce) -> None:
    global _ANNOUNCE
    _ANNOUNCE = announce
    _watch_parent()


def _run_task(fn, records, config) -> pd.DataFrame:
    """Run ``fn`` one record at a time, announcing each, so a hung one can be named.

    The announcement is ``(pid, arch_id, monotonic start)``; ``(pid, None, t)`` says the
    worker is idle again. Dask workers have no announcement channel and skip it.
    """
    frames = []
    try:
        for record in records:
            if _ANNOUNCE is not None:
                _ANNOUNCE.put((os.getpid(), record["arch_id"], time.monotonic()))
            frames.append(fn([record], config))
    finally:
        if _ANNOUNCE is not None:
            _ANNOUNCE.put((os.getpid(), None, time.monotonic()))
    return pd.concat(frames, ignore_index=True)


def _watch_parent() -> None:
    """Worker initializer: end this worker when the process that started it is gone.

    A killed ``cnas score`` (SIGKILL gives it no chance to clean up) must not leave
    workers partitioning for nobody. Spawned workers are children of the CLI, so its
    death shows as a new parent id (the orphan is re-parented), even while the dead
    CLI is still a zombie waiting to be reaped. The watching thread cannot run while
    KaHyPar holds the GIL, so on Linux the kernel is also asked to kill the worker when
    its parent dies (``PR_SET_PDEATHSIG``; the pool is started from the thread that
    runs the whole scoring loop, so that thread outlives every worker).
    """
    import threading

    from ..orphans import die_with_parent

    parent = os.getppid()
    die_with_parent()  # where it is not available, the thread below covers all but long C calls

    def watch():
        while os.getppid() == parent:
            time.sleep(0.25)
        os._exit(1)

    threading.Thread(target=watch, name="cnas-parent-watch", daemon=True).start()


class _LocalBackend:
    """A process pool; rebuilt after a worker dies (the pool is then unusable)."""

    def __init__(self, workers: int, *, timeout: float | None = None):
        self.workers = workers
        self.timeout = timeout
        self.capacity = workers
        self.pool = None
        self.generation = 0  # which pool a future belongs to
        self.born: dict = {}
        # spawn: workers start from a clean interpreter (nothing of this process's
        # threads, pyarrow or tqdm, is inherited mid-state) and are our own children.
        self.ctx = multiprocessing.get_context("spawn")
        # A SimpleQueue writes in the calling thread: a Queue hands the message to a
        # feeder thread, which never runs if the next call (KaHyPar) holds the GIL, so
        # a hung partition would never be announced and never stopped.
        # Only read while hangs are watched for: unread, it would fill and block workers.
        self.announce = self.ctx.SimpleQueue() if timeout is not None else None
        self.current: dict[int, tuple[int | None, float]] = {}  # pid -> (arch_id, since)
        self.timed_out: set[int] = set()  # arch ids whose worker we killed for hanging
        self.stopped_generations: set[int] = set()  # pools ended by such a kill

    def _ensure(self):
        if self.pool is None:
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=self.ctx,
                initializer=_init_local_worker, initargs=(self.announce,),
            )
        return self.pool

    def watch(self) -> None:
        """Kill every worker that has been on one architecture for over ``timeout`` s."""
        if self.announce is None:  # no timeout: nothing to watch for
            return
        while not self.announce.empty():
            pid, arch_id, since = self.announce.get()
            self.current[pid] = (arch_id, since)
        now = time.monotonic()
        for pid, (arch_id, since) in list(self.current.items()):
            if arch_id is not None and now - since > self.timeout:
                self.timed_out.add(arch_id)
                self.stopped_generations.add(self.generation)
                del self.current[pid]
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def submit(self, fn, records, config):
        from concurrent.futures.process import BrokenProcessPool

        try:
            future = self._ensure().submit(_run_task, fn, records, config)
        except BrokenProcessPool:
            # A worker died and its futures are not collected yet: they will be, and
            # requeued; this task goes to a fresh pool.
            self.reset()
            future = self._ensure().submit(_run_task, fn, records, config)
        self.born[future] = self.generation
        return future

    def wait_any(self, futures, timeout: float | None = None):
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(futures), timeout=timeout, return_when=FIRST_COMPLETED)
        return done

    def result(self, future):
        from concurrent.futures import CancelledError
        from concurrent.futures.process import BrokenProcessPool

        generation = self.born.pop(future, self.generation)
        try:
            return future.result()
        except (BrokenProcessPool, CancelledError):
            # Only a future of the current pool may retire it: the other victims of the
            # same death arrive later and must not take down the replacement pool.
            if generation == self.generation:
                self.reset()
            raise WorkerDied(bystander=generation in self.stopped_generations) from None

    def reset(self):
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
            self.generation += 1
            self.current.clear()

    def close(self, *, abort: bool = False):
        if self.pool is None:
            return
        if abort:
            # Interrupted: stop the workers now instead of letting them finish chunks
            # whose results nobody will collect.
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                if proc.is_alive():
                    proc.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool = None


# How long a Dask run waits for a worker to appear before saying the cluster has none.
WAIT_FOR_WORKERS_S = 15
# How long a Dask run goes on with no worker at all before it stops (and can be resumed).
LOST_WORKERS_S = 60
# How long fetching one finished task's result may block the run loop.
RESULT_WAIT_S = 1.0


class _DaskBackend:
    """Tasks on a ``distributed`` cluster; a ``KilledWorker`` is a dead worker."""

    def __init__(self, address: str, *, timeout: float | None = None):
        try:
            from distributed import Client
        except ImportError:
            raise CnasError(
                "--scheduler needs the Dask `distributed` package: pip install 'concurrent-nas[distributed]'"
            ) from None
        try:
            self.client = Client(address, timeout="5s")
        except Exception as exc:
            raise CnasError(f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}); is it running?") from None
        threads = sum(self.client.nthreads().values())
        if threads < 1:
            # Workers may be restarting (after a crash or a hung task): give them a moment.
            try:
                self.client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
            except Exception:
                pass
            threads = sum(self.client.nthreads().values())
        if threads < 1:
            self.client.close()
            raise CnasError(f"the Dask cluster at {address} has no workers; start some with `dask worker {address}`")
        self.address = address
        self.capacity = 2 * threads  # keep every worker busy while results travel back
        self.timeout = timeout
        self.submitted: dict = {}  # key -> (submission number, future), for tasks in flight
        self.sequence = itertools.count()
        self.allowance: dict = {}  # future -> seconds it may run (timeout x architectures)
        self.clock: dict = {}  # future -> (worker running it, monotonic time it started there)
        self.expired: set = set()
        self.timed_out: set[int] = set()  # stays empty: a cancelled task names no architecture
        self.no_workers_since: float | None = None

    def submit(self, fn, records, config):
        future = self.client.submit(_run_task, fn, records, config, pure=False)
        self.submitted[future.key] = (next(self.sequence), future)
        if self.timeout:
            self.allowance[future] = self.timeout * len(records)
        return future

    def wait_any(self, futures, timeout: float | None = None):
        from distributed import wait

        # A task cancelled for its deadline is settled at once (waiting on it would raise).
        expired = {f for f in futures if f in self.expired}
        if expired:
            return expired
        try:
            return wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED").done
        except (TimeoutError, asyncio.TimeoutError):
            return set()

    def watch(self) -> None:
        """Stop a run whose cluster has lost every worker; cancel tasks past their time.

        Everything is asked of the scheduler, never of a worker: a worker inside a
        KaHyPar call holds the GIL and answers nothing until the call returns.
        """
        now = time.monotonic()
        try:
            threads = self.client.nthreads()
            processing = self.client.processing() if self.timeout else {}
        except Exception:
            return  # the scheduler is busy or restarting a worker: ask again next round
        if not threads:
            self.no_workers_since = self.no_workers_since or now
            if now - self.no_workers_since > LOST_WORKERS_S:
                raise CnasError(
                    f"the Dask cluster at {self.address} has had no workers for {LOST_WORKERS_S} s; "
                    f"start some with `dask worker {self.address}` and run the same command to resume"
                )
        else:
            self.no_workers_since = None
        if self.timeout:
            self._stop_hung(now, processing, threads)

    def _running(self, processing: dict, threads: dict) -> dict:
        """Future -> worker, for the tasks a worker thread is on (as far as the scheduler knows).

        A worker holds a few tasks beyond its threads, and runs them in the order they
        were submitted: the first ``nthreads`` of its tasks are the running ones.
        """
        running = {}
        for worker, keys in processing.items():
            ours = sorted(self.submitted[k] for k in keys if k in self.submitted)
            for _, future in ours[: threads.get(worker, 1)]:
                running[future] = worker
        return running

    def _stop_hung(self, now: float, processing: dict, threads: dict) -> None:
        # A task's clock starts when a worker thread takes it up, not at submission: a
        # task queued behind others, or waiting for a worker to restart, is not late.
        running = self._running(processing, threads)
        for future, (worker, _) in list(self.clock.items()):
            if running.get(future) != worker:  # finished, moved, or back in the queue
                del self.clock[future]
        for future, worker in running.items():
            if future in self.allowance and future not in self.clock:
                self.clock[future] = (worker, now)
        late = [f for f, (_, t) in self.clock.items() if now - t > self.allowance[f] and f not in self.expired]
        if not late:
            return
        # A cancelled task's thread keeps running in its worker: restart that worker so
        # the hung call does not hold a thread for the rest of the run.
        workers = sorted({self.clock[f][0] for f in late})
        for future in late:
            future.cancel()
            self.expired.add(future)
            del self.clock[future]
        try:
            self.client.restart_workers(workers)
        except Exception:
            pass  # without a nanny it cannot restart; the thread stays busy

    def result(self, future):
        from distributed import KilledWorker

        if future in self.expired:
            self.expired.discard(future)
            self._forget(future)
            raise WorkerDied(expired=True)
        try:
            # A result stays on the worker that computed it; if that worker is now
            # inside a call that holds the GIL, it cannot send it until the call ends.
            # Do not wait on it: the hung call must still be noticed and stopped.
            frame = future.result(timeout=RESULT_WAIT_S)
        except KilledWorker:
            self._forget(future)
            raise WorkerDied() from None
        except (TimeoutError, asyncio.TimeoutError):
            raise NotReady() from None
        self._forget(future)
        return frame

    def _forget(self, future) -> None:
        self.submitted.pop(future.key, None)
        self.allowance.pop(future, None)
        self.clock.pop(future, None)

    def reset(self):
        pass

    def close(self, *, abort: bool = False):
        self.client.close()


# -- scheduling --------------------------------------------------------------------


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
    worker_fn: Callable[[Sequence[dict], ScoreConfig], pd.DataFrame] = score_records,
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
    if timeout is not None and (not math.isfinite(timeout) or timeout < 0):
        raise CnasError(f"timeout must be a non-negative number of seconds, got {timeout}")
    timeout = timeout or None
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
    pending = {i: {} for i in range(len(chunks)) if i not in results}
    queue = deque(_Task(i, list(range(len(chunks[i])))) for i in pending)
    died: list[int] = []
    timed_out: list[int] = []
    if queue:
        if scheduler:
            backend = _DaskBackend(scheduler, timeout=timeout)
        else:
            n = workers if workers is not None else (os.cpu_count() or 1)
            if n < 1:
                raise CnasError(f"--workers must be at least 1, got {n}")
            backend = _LocalBackend(min(n, len(queue)), timeout=timeout)
        # Dask is polled even without a timeout, to notice a cluster that lost its workers.
        poll = min(1.0, max(0.05, timeout / 4)) if timeout else (1.0 if scheduler else None)
        inflight: dict[Any, _Task] = {}
        succeeded = False
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
                        if _settle_timeouts(task, death, backend, queue, chunks, pending, timed_out, timeout):
                            _finish_if_complete(task.chunk, chunks, pending, results, store, progress)
                            continue
                        _requeue(task, queue, chunks, pending, died, alone=backend.capacity == 1)
                        if len(died) >= 3 and not succeeded:
                            raise CnasError(
                                "every worker process died before finishing any architecture; "
                                "if you call the scoring API from a script, guard it with "
                                "`if __name__ == '__main__':`, else run with --workers 1 to see the error"
                            ) from None
                        _finish_if_complete(task.chunk, chunks, pending, results, store, progress)
                        continue
                    succeeded = True
                    for p in task.positions:
                        rows = frame[frame["arch_id"] == chunks[task.chunk][p]["arch_id"]]
                        pending[task.chunk][p] = rows
                    _finish_if_complete(task.chunk, chunks, pending, results, store, progress)
            aborted = False
        finally:
            backend.close(abort=aborted)
    table = pd.concat([results[i] for i in range(len(chunks))], ignore_index=True) if chunks else _tidy(pd.DataFrame())
    return RunOutcome(_tidy(table), len(chunks), resumed, died, timed_out)


def _settle_timeouts(task: _Task, death: WorkerDied, backend, queue: deque, chunks, pending,
                     timed_out: list[int], timeout) -> bool:
    """Handle a task that ended through a timeout; False if the death had another cause."""
    record = lambda p: chunks[task.chunk][p]  # noqa: E731
    hung = [p for p in task.positions if record(p)["arch_id"] in backend.timed_out]
    if death.expired and not hung:
        if len(task.positions) > 1:  # Dask: which one hangs is unknown, look one by one
            for p in reversed(task.positions):
                queue.appendleft(_Task(task.chunk, [p]))
            return True
        hung = task.positions
    if hung:
        for p in hung:
            pending[task.chunk][p] = _tidy(pd.DataFrame([_error_row(record(p), TIMED_OUT.format(timeout=timeout))]))
            timed_out.append(record(p)["arch_id"])
        rest = [p for p in task.positions if p not in hung]
        if rest:
            queue.appendleft(_Task(task.chunk, rest, task.solo))
        return True
    if death.bystander:  # its pool was stopped for another task's hang: run it again as it was
        queue.appendleft(task)
        return True
    return False


def _requeue(task: _Task, queue: deque, chunks, pending, died: list[int], *, alone: bool) -> None:
    if len(task.positions) > 1:
        # Which architecture killed the worker is unknown: try each one on its own.
        for p in reversed(task.positions):
            queue.appendleft(_Task(task.chunk, [p]))
    elif task.solo or alone:
        p = task.positions[0]
        record = chunks[task.chunk][p]
        pending[task.chunk][p] = _tidy(pd.DataFrame([_error_row(record, DIED)]))
        died.append(record["arch_id"])
    else:
        # It may only have shared a pool with the culprit: run it with nothing beside it.
        queue.appendleft(_Task(task.chunk, task.positions, solo=True))


def _finish_if_complete(i: int, chunks, pending, results, store: Checkpoints, progress) -> None:
    done = pending[i]
    if len(done) < len(chunks[i]):
        return
    frame = _tidy(pd.concat([done[p] for p in range(len(chunks[i]))], ignore_index=True))
    store.save(i, frame)
    results[i] = frame
    del pending[i]
    if progress:
        progress(len(chunks[i]))
