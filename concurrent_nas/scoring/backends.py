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
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import pandas as pd

from ..errors import CnasError
from .config import ScoreConfig

NO_WORKER_STARTED = (
    "every worker process died as it started (its traceback is printed above); "
    "if you call the scoring API from a script, guard it with `if __name__ == '__main__':`"
)

#: What a worker runs: ``fn([record], config)`` -> rows (tests substitute one that crashes or hangs).
WorkerFn = Callable[[Sequence[dict], ScoreConfig], pd.DataFrame]


class Backend(Protocol):
    """What :func:`~concurrent_nas.scoring.run_scoring` needs of a place to run tasks.

    ``capacity`` tasks may be in flight at once; ``task_size`` architectures make one
    task (``None``: a whole chunk); ``isolates_deaths``: a task that fails with
    :class:`WorkerDied` is known to have killed its worker itself (else it may have
    shared the worker with the culprit).
    """

    capacity: int
    task_size: int | None
    isolates_deaths: bool

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

    ``expired``: it ran past its deadline and was stopped.
    """

    def __init__(self, *, expired: bool = False):
        super().__init__()
        self.expired = expired


def _run_task(fn, records, config) -> pd.DataFrame:
    """Run ``fn`` one record at a time (its contract), rows of all of them together."""
    return pd.concat([fn([record], config) for record in records], ignore_index=True)


def _watch_parent() -> None:
    """Worker initializer: end this worker when the process that started it is gone.

    A killed ``cnas score`` (SIGKILL gives it no chance to clean up) must not leave
    workers partitioning for nobody. Spawned workers are children of the CLI, so its
    death shows as a new parent id (the orphan is re-parented), even while the dead
    CLI is still a zombie waiting to be reaped. The watching thread cannot run while
    KaHyPar holds the GIL, so on Linux the kernel is also asked to kill the worker when
    its parent dies (``PR_SET_PDEATHSIG``). That signal follows the *thread* that
    started the worker: pebble starts the first workers from the thread that runs the
    scoring loop and their replacements from its pool-manager thread, and both live as
    long as the pool.
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
    """A pebble process pool running one architecture per task, each with its own deadline.

    pebble knows which task each worker runs: a worker that dies fails only its own task
    (``ProcessExpired``), and one still on its task after ``timeout`` seconds (counted
    from when a worker took it up) is stopped and its task fails with ``TimeoutError``;
    the pool replaces the worker and goes on. So a death or a timeout names its
    architecture, and nothing else has to run again.
    """

    #: A task that died was the one that killed its worker.
    isolates_deaths = True
    task_size = 1

    def __init__(self, workers: int, *, timeout: float | None = None):
        from pebble import ProcessPool

        self.capacity = 2 * workers  # a queued task waits in the pool, its clock not started
        self.timeout = timeout
        # spawn: workers start from a clean interpreter (nothing of this process's
        # threads, pyarrow or tqdm, is inherited mid-state) and are our own children.
        self.pool = ProcessPool(max_workers=workers, initializer=_watch_parent,
                                context=multiprocessing.get_context("spawn"))

    def submit(self, fn, records, config):
        return self.pool.schedule(_run_task, (fn, records, config), timeout=self.timeout)

    def wait_any(self, futures, timeout: float | None = None):
        from concurrent.futures import FIRST_COMPLETED, wait

        return wait(list(futures), timeout=timeout, return_when=FIRST_COMPLETED).done

    def watch(self) -> None:
        pass  # pebble's own thread stops hung workers

    def result(self, future):
        from concurrent.futures import TimeoutError as Expired
        from concurrent.futures.process import BrokenProcessPool

        from pebble import ProcessExpired

        try:
            return future.result()
        except Expired:
            raise WorkerDied(expired=True) from None
        except ProcessExpired:
            raise WorkerDied() from None
        except BrokenProcessPool:  # every worker died before it could take a task
            raise CnasError(NO_WORKER_STARTED) from None

    def close(self, *, abort: bool = False):
        # Interrupted: stop the workers now instead of letting them finish work whose
        # results nobody will collect. Otherwise no task is left: close ends the workers.
        self.pool.stop() if abort else self.pool.close()
        self.pool.join()


# How long a Dask run waits for a worker to appear before saying the cluster has none.
WAIT_FOR_WORKERS_S = 15
# How long a Dask run goes on with no worker at all before it stops (and can be resumed).
LOST_WORKERS_S = 60
# How long fetching one finished task's result may block the run loop.
RESULT_WAIT_S = 1.0


class DaskBackend:
    """Tasks on a ``distributed`` cluster; a ``KilledWorker`` is a dead worker."""

    task_size = None  # whole chunks: a task per architecture would swamp the scheduler
    isolates_deaths = False

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
