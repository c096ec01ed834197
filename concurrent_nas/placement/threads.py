"""Concurrency inside one process: independent branches on a pool of threads; free cores.

:func:`host_load` and :func:`free_cores` say how many of the cores this process may use
are not busy with other work, the default for thread counts and what ``cnas latency``
records beside every row. Where the OS tells (Linux ``/proc/stat``) that is the CPU time
spent in a short window now; the 1-minute load average, the fallback elsewhere, lags by
a minute, so right after a measurement it still counts that measurement's own processes
as other work and a benchmark's next row would look like it ran on a busy host.

``torch.jit.fork`` runs its task synchronously in eager mode, so it gives no concurrency
here; a plain thread pool does, because every torch operator releases the GIL while it
computes. With one intra-op thread per process each operator runs on the thread that
called it, so ``workers`` threads are ``workers`` concurrent branches.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from time import perf_counter

_POOLS: dict[int, ThreadPoolExecutor] = {}


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def free_cores_for(load: float, cpus: int) -> int:
    """Cores left by ``load`` busy cores (or a load average) on ``cpus`` CPUs, at least 1.

    ``round(cpus - load)``: a load of 0.3 on 2 CPUs leaves 2, a load of 1.6 leaves 0,
    counted as 1 (something has to run).
    """
    return max(1, min(cpus, int(cpus - load + 0.5)))


#: Where Linux counts CPU time per state; the first line sums all CPUs.
PROC_STAT = "/proc/stat"
#: How long :func:`host_load` watches the CPUs.
BUSY_WINDOW_S = 0.5


def cpu_times(path: str = PROC_STAT) -> tuple[int, int] | None:
    """(busy, total) CPU ticks since boot over all CPUs, or None where there is no such file.

    Busy is user + nice + system + irq + softirq + steal; idle and iowait are not busy
    (guest time is already inside user).
    """
    try:
        with open(path) as stat:
            fields = [int(x) for x in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(fields) < 8:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def busy_cores(before: tuple[int, int], after: tuple[int, int], cpus: int) -> float:
    """Cores' worth of CPU time used between two :func:`cpu_times` readings on ``cpus`` CPUs."""
    total = after[1] - before[1]
    return 0.0 if total <= 0 else cpus * (after[0] - before[0]) / total


def host_load(window_s: float = BUSY_WINDOW_S) -> tuple[float, int]:
    """(cores busy with other work, free cores) now.

    Watches the CPUs for ``window_s`` seconds (this process sleeps meanwhile, so what is
    busy is someone else); without ``/proc/stat`` it is the 1-minute load average, or 0
    where the OS has none.
    """
    start = cpu_times()
    if start is not None:
        time.sleep(window_s)
        end = cpu_times()
        if end is not None and end[1] > start[1]:
            load = round(busy_cores(start, end, os.cpu_count() or 1), 2)
            return load, free_cores_for(load, usable_cpus())
    try:
        load = float(os.getloadavg()[0])
    except (AttributeError, OSError):
        load = 0.0
    return load, free_cores_for(load, usable_cpus())


def free_cores() -> int:
    """Cores not busy with other work now: the default thread count of training."""
    return host_load()[1]


def use_threads(threads: int = 0) -> int:
    """Give torch ``threads`` intra-op threads (0: :func:`free_cores`); returns the count.

    torch's own default is one per core, busy or not: on a loaded host that
    oversubscribes it (issue 20 measured 19x longer model-epochs).
    """
    import torch

    count = threads or free_cores()
    torch.set_num_threads(count)
    return count


def _pool(workers: int) -> ThreadPoolExecutor:
    # One long-lived pool per size: starting threads per inference would be timed too.
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cnas-branch")
    return _POOLS[workers]


def threaded_forward(net, image, *, workers: int = 2, vertex_seconds: dict | None = None):
    """One forward pass with ready vertices dispatched to ``workers`` threads.

    Vertices become ready when all their predecessors have finished and are started in
    topological order among the ready ones (list scheduling). The result equals
    ``net(image)``.

    Parameters
    ----------
    net : ConcurrentNet
        Compiled network (``dag``, ``order``, ``blocks``).
    image : Tensor
        Input batch.
    workers : int
        Threads that run blocks concurrently.
    vertex_seconds : dict, optional
        Filled with each vertex's compute time.

    Returns
    -------
    Tensor
        Logits.
    """
    dag, order = net.dag, net.order
    position = {v: i for i, v in enumerate(order)}
    preds = {v: sorted(dag.predecessors(v)) for v in order}
    waiting = {v: len(preds[v]) for v in order}
    uses = {v: dag.out_degree(v) for v in order}
    acts = {}
    times = vertex_seconds if vertex_seconds is not None else {}
    pool = _pool(workers)

    def run(v):
        start = perf_counter()
        out = net.blocks[str(v)]([image] if not preds[v] else [acts[u] for u in preds[v]])
        times[v] = perf_counter() - start
        return v, out

    running = {pool.submit(run, order[0])}
    ready: list[int] = []
    while running:
        done, running = wait(running, return_when=FIRST_COMPLETED)
        for fut in done:
            v, out = fut.result()
            acts[v] = out
            for u in preds[v]:
                uses[u] -= 1
                if uses[u] == 0:
                    del acts[u]
            for w in dag.successors(v):
                waiting[w] -= 1
                if waiting[w] == 0:
                    ready.append(w)
        ready.sort(key=position.__getitem__)
        while ready and len(running) < workers:
            running.add(pool.submit(run, ready.pop(0)))
    return acts[order[-1]]
