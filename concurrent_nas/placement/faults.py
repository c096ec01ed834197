"""The test seam: make a unit fail on purpose, through one environment variable.

``CNAS_TEST_FAULT=UNIT:KIND:INFERENCE`` in the launcher's environment (spawned units
inherit it) puts a fault on unit ``UNIT`` at inference ``INFERENCE`` (1 is the first
warm-up inference). :func:`fault_spec` is the only reader, and nothing in the package sets
it. The kinds:

``die``              the unit exits (code 17).
``hang``             the unit sleeps.
``corrupt``          the unit changes its copy of the weights (adds 1 to every one).
``corrupt-message``  every message the unit sends carries its tensor plus 1.
``late``             the unit holds back each message until its receiver is waiting for
                     it (or has finished the inference without it): the message provably
                     arrives after the receiver needed it.
``early``            the unit uses every message it receives without waiting for it, and
                     every unit that sends to it holds its messages back until the unit has
                     finished the inference: it provably reads its buffers before the
                     senders write them (the buffers still hold the previous inference's).

The message faults are a wrapper around the transport (:class:`FaultyTransport`), so the
transports themselves have no test code.
"""

from __future__ import annotations

import os
import time

from .states import FINISHED

FAULT_ENV = "CNAS_TEST_FAULT"
FAULT_KINDS = ("die", "hang", "corrupt", "corrupt-message", "late", "early")
#: Kinds that need the transport wrapped (on the faulty unit, and for ``early`` on its senders).
MESSAGE_FAULTS = ("corrupt-message", "late", "early")


def fault_spec() -> tuple[int, str, int] | None:
    """``(unit, kind, inference)`` from :data:`FAULT_ENV`, or ``None`` when it is not set."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    unit, kind, at = spec.split(":")
    if kind not in FAULT_KINDS:
        raise ValueError(f"{FAULT_ENV}={spec!r}: the kind of fault is one of {', '.join(FAULT_KINDS)}")
    return int(unit), kind, int(at)


def injected_fault(rank: int) -> tuple[str, int] | None:
    """``(kind, inference)`` of the fault :data:`FAULT_ENV` puts on unit ``rank``."""
    spec = fault_spec()
    return (spec[1], spec[2]) if spec is not None and spec[0] == rank else None


class FaultyTransport:
    """A transport that misbehaves at one inference as :data:`FAULT_ENV` says (tests only).

    Parameters
    ----------
    inner : DistTransport or ShmTransport
    rank : int
        This unit.
    spec : tuple
        :func:`fault_spec`.
    states : array or None
        Every unit's state (:mod:`.worker`): a unit waiting for unit ``k`` shows ``k``.
    finished : array or None
        Every unit's last inference whose schedule it has finished.
    hold_s : float
        Longest a held-back message waits for its receiver (then it is sent anyway).
    """

    def __init__(self, inner, rank: int, spec: tuple[int, str, int], states, finished, hold_s: float = 30.0):
        self.inner, self.rank, self.states, self.finished, self.hold_s = inner, rank, states, finished, hold_s
        self.unit, self.kind, self.at = spec
        self.iteration = 0
        self.skipped: list = []

    @property
    def messages(self) -> int:
        return self.inner.messages

    @property
    def bytes(self) -> int:
        return self.inner.bytes

    def _now(self, kind: str) -> bool:
        return self.kind == kind and self.iteration == self.at

    def begin(self, iteration: int) -> None:
        self.iteration = iteration
        self.inner.begin(iteration)

    def post_recv(self, t) -> None:
        self.inner.post_recv(t)

    def done(self, t) -> bool:
        if self._now("early") and self.rank == self.unit:
            self.skipped.append(t)
            return True  # use the buffer as it is: the sender holds its message back
        return self.inner.done(t)

    def wait_any(self, needed) -> None:
        self.inner.wait_any(needed)

    def tensor(self, t):
        return self.inner.tensor(t)

    def _hold_until(self, ready) -> None:
        end = time.monotonic() + self.hold_s
        while not ready() and time.monotonic() < end:
            time.sleep(0.001)

    def send(self, tensor, t) -> None:
        if self.rank == self.unit and self._now("corrupt-message"):
            tensor = tensor + 1
        if self.rank == self.unit and self._now("late") and self.states is not None:
            # Until the receiver waits for this unit, or has finished this inference.
            self._hold_until(lambda: self.states[t.dst] in (self.rank, FINISHED)
                             or self.finished[t.dst] >= self.iteration)
        if t.dst == self.unit and self._now("early") and self.finished is not None:
            self._hold_until(lambda: self.finished[t.dst] >= self.iteration)
        self.inner.send(tensor, t)

    def flush(self) -> None:
        # Receive what was skipped (the senders send once this unit has finished): a gloo
        # receive dropped before its message came would leave its sender waiting forever.
        for t in dict.fromkeys(self.skipped):
            self.inner.wait_any([t])
        self.skipped.clear()
        self.inner.flush()
