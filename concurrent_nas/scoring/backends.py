"""Where chunks run: a local process pool or a Dask cluster, behind one protocol.

The scheduler (:mod:`.scheduler`) only talks to a :class:`Backend`; what a dead or hung
worker looks like on each is translated here into :class:`WorkerDied` and
:class:`NotReady`.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import pandas as pd

from ..errors import CnasError
from .config import ScoreConfig

#: What a worker runs: ``fn([record], config)`` -> rows (tests substitute one that crashes or hangs).
WorkerFn = Callable[[Sequence[dict], ScoreConfig], pd.DataFrame]


class Backend(Protocol):
    """What :func:`~concurrent_nas.scoring.run_scoring` needs of a place to run tasks.

    ``capacity`` tasks may be in flight at once; ``timed_out`` holds the arch ids whose
    worker the backend stopped for hanging (it names them, so the scheduler need not
    search for them).
    """

    capacity: int
    timed_out: set[int]

    def submit(self, fn: WorkerFn, records: Sequence[dict], config: ScoreConfig) -> Any:
        """Start one task; returns its future."""

    def wait_any(self, futures: Iterable[Any], timeout: float | None = None) -> set:
        """The futures among ``futures`` that are settled, waiting up to ``timeout`` s for one."""

    def watch(self) -> None:
        """Called every round: stop hung work, notice a cluster without workers."""

    def result(self, future: Any) -> pd.DataFrame:
        """The rows of a settled task; raises :class:`WorkerDied` or :class:`NotReady`."""

    def close(self, *, abort: bool = False) -> None:
        """Release the workers; ``abort``: stop them now, mid-task."""



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


class LocalBackend:
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


class DaskBackend:
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

    def close(self, *, abort: bool = False):
        self.client.close()
