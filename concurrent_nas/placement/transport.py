"""Moving feature maps between units: torch.distributed (gloo, nccl) or shared memory.

Both transports have the same small interface, used by :mod:`.worker`:

* ``begin(inference)`` after the barrier that starts an inference;
* ``post_recv(transfer)`` before an inference, ``done(transfer)`` to poll,
  ``wait_any(transfers)`` to block until one of them has arrived, ``tensor(transfer)``;
* ``send(tensor, transfer)`` (non-blocking), ``flush()`` at the end of an inference.

A message that fails (gloo: a peer died or closed the connection) raises
:class:`.failures.PeerLost`, so the launcher blames the peer, not this unit.

Receive buffers are allocated once, from the shapes of a reference forward pass, and
reused by every inference: no allocation on the timed path.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .failures import PeerLost, describe
from .plan import Transfer


def _shm_name(t: Transfer) -> str:
    return f"v{t.vertex}_s{t.src}_d{t.dst}.bin"


class DistTransport:
    """Point-to-point ``isend``/``irecv`` of a torch.distributed group (gloo or nccl).

    gloo matches messages by (source, tag); nccl has no tags but keeps per-pair order,
    and every unit posts its messages to a peer in plan order, so both match.
    """

    def __init__(self, rank: int, receives: list[tuple[Transfer, torch.Size]], device="cpu"):
        self.rank = rank
        self.buffers = {t: torch.empty(shape, device=device) for t, shape in receives}
        self.works: dict[Transfer, object] = {}
        self.pending_sends: list = []
        self.arrived: set[Transfer] = set()
        self.messages = 0
        self.bytes = 0

    # Every call into the process group below turns a RuntimeError into PeerLost with a
    # plain try (free on the polling path), not a context manager (a call each time).

    def begin(self, iteration: int) -> None:
        """Start inference number ``iteration``; gloo matches messages by tag, nothing to do."""

    def post_recv(self, t: Transfer) -> None:
        try:
            self.works[t] = dist.irecv(self.buffers[t], src=t.src, tag=t.tag)
        except RuntimeError as exc:
            raise PeerLost(describe(exc)) from exc

    def done(self, t: Transfer) -> bool:
        if t in self.arrived:
            return True
        try:
            if not self.works[t].is_completed():
                return False
            self.works[t].wait()  # surfaces errors of a failed receive
        except RuntimeError as exc:
            raise PeerLost(describe(exc)) from exc
        self.arrived.add(t)
        return True

    def wait_any(self, needed: list[Transfer]) -> None:
        """Block until one of ``needed`` (ordered by urgency) has arrived."""
        if any(self.done(t) for t in needed):
            return
        # gloo has no wait-any, and a gloo receive reports completion only once it is
        # waited on (its data is there, is_completed() stays false), so `done` finds
        # nothing new: block on the most urgent message (the one the earliest waiting
        # vertex needs). Waiting on every receive from threads instead deadlocked both
        # units in our tests (ER-40, 18 messages a unit), so we do not.
        try:
            self.works[needed[0]].wait()
        except RuntimeError as exc:
            raise PeerLost(describe(exc)) from exc
        self.arrived.add(needed[0])

    def tensor(self, t: Transfer) -> torch.Tensor:
        return self.buffers[t]

    def send(self, tensor: torch.Tensor, t: Transfer) -> None:
        tensor = tensor.contiguous()
        try:
            self.pending_sends.append((dist.isend(tensor, dst=t.dst, tag=t.tag), tensor))
        except RuntimeError as exc:
            raise PeerLost(describe(exc)) from exc
        self.messages += 1
        self.bytes += tensor.numel() * tensor.element_size()

    def flush(self) -> None:
        try:
            for work, _ in self.pending_sends:
                work.wait()
        except RuntimeError as exc:
            raise PeerLost(describe(exc)) from exc
        self.pending_sends.clear()
        self.arrived.clear()
        self.works.clear()


class ShmTransport:
    """Same-host transport: one shared buffer per message, a flag word and a doorbell.

    The receiving unit creates its buffers as files in a shared-memory directory (tmpfs)
    and maps them; the sender maps the same files, copies the tensor in, writes the
    inference number into the message's flag and rings the receiver's semaphore. The
    receiver uses the buffer in place (no copy): the next inference only starts after a
    barrier, so a buffer is never overwritten while it is read.
    """

    def __init__(self, rank: int, receives: list[tuple[Transfer, torch.Size]], directory: str | Path,
                 doorbells, all_transfers: list[Transfer], spin_s: float = 0.0):
        self.rank = rank
        self.spin_s = spin_s
        self.dir = Path(directory)
        self.doorbells = doorbells
        self.slot = {t: i for i, t in enumerate(all_transfers)}
        flags_path = self.dir / "flags.bin"
        self.flags = np.memmap(flags_path, dtype=np.int64, mode="r+", shape=(max(1, len(all_transfers)),))
        self.buffers: dict[Transfer, torch.Tensor] = {}
        for t, shape in receives:
            n = int(np.prod(shape))
            path = self.dir / _shm_name(t)
            with open(path, "wb") as f:
                f.truncate(4 * n)
            self.buffers[t] = torch.from_file(str(path), shared=True, size=n, dtype=torch.float32).view(shape)
        self.outgoing: dict[Transfer, torch.Tensor] = {}
        self.iteration = 0
        self.messages = 0
        self.bytes = 0

    def begin(self, iteration: int) -> None:
        """Start inference number ``iteration`` (>= 1); drain stale doorbell rings first."""
        self.iteration = iteration
        while self.doorbells[self.rank].acquire(False):
            pass

    def post_recv(self, t: Transfer) -> None:
        pass

    def done(self, t: Transfer) -> bool:
        return int(self.flags[self.slot[t]]) == self.iteration

    def wait_any(self, needed: list[Transfer]) -> None:
        """Poll the flags for up to ``spin_s``, then sleep on the doorbell.

        A unit that has slept on a semaphore for a few milliseconds takes a fraction of
        a millisecond or more to be woken on a VM (``wake_s`` of the transfer probe); a
        waiting unit has nothing else to do with its core, so it spins first when the
        units have a core each.
        """
        if self.spin_s > 0:
            end = time.perf_counter() + self.spin_s
            while time.perf_counter() < end:
                if any(self.done(t) for t in needed):
                    return
        while not any(self.done(t) for t in needed):
            self.doorbells[self.rank].acquire()

    def tensor(self, t: Transfer) -> torch.Tensor:
        return self.buffers[t]

    def _target(self, t: Transfer, like: torch.Tensor) -> torch.Tensor:
        buf = self.outgoing.get(t)
        if buf is None:
            path = self.dir / _shm_name(t)
            buf = torch.from_file(str(path), shared=True, size=like.numel(), dtype=torch.float32)
            self.outgoing[t] = buf = buf.view(like.shape)
        return buf

    def send(self, tensor: torch.Tensor, t: Transfer) -> None:
        self._target(t, tensor).copy_(tensor)
        # x86 stores are not reordered with other stores: the data is visible before the
        # flag; the semaphore (a futex) is a full barrier on every architecture.
        self.flags[self.slot[t]] = self.iteration
        self.doorbells[t.dst].release()
        self.messages += 1
        self.bytes += tensor.numel() * tensor.element_size()

    def flush(self) -> None:
        pass


def make_shm_directory(root: str | None = None) -> Path:
    """A fresh directory on tmpfs (``/dev/shm`` where it exists) for one run's buffers."""
    import tempfile

    base = root or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    return Path(tempfile.mkdtemp(prefix="cnas-shm-", dir=base))


def init_flags(directory: Path, count: int) -> None:
    """Create the zeroed flag words of ``count`` messages (before the units start)."""
    np.zeros(max(1, count), dtype=np.int64).tofile(directory / "flags.bin")
