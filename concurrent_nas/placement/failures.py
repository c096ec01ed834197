"""What goes wrong when units run, as types: the launcher blames and retries by type.

Two families. Inside a unit process, :class:`UnitError` subclasses say what kind of
failure a unit had; the unit reports the exception itself to the launcher (they pickle),
so the launcher never reads a message to find out what happened. Out of the launcher, a
:class:`UnitFailed` (a :class:`~concurrent_nas.errors.CnasError`) tells the user which
unit stopped the run and why, in one line.
"""

from __future__ import annotations

from contextlib import contextmanager

from ..errors import CnasError


class UnitError(RuntimeError):
    """A failure inside a unit process, with a message that is already one line for the user."""


class PeerLost(UnitError):
    """A message or a collective failed: another unit died or broke the connection.

    The message is the underlying error's (``"RuntimeError: ... Connection closed by
    peer ..."``). A unit that reports it is a victim, not the cause, of a failure.
    """


class MasterPortTaken(UnitError):
    """Unit 0 could not listen on the master port: another process took it meanwhile."""


class OutputDiffers(UnitError):
    """A placed inference's value differs from the single-process output for its input.

    Attributes
    ----------
    vertex : int or None
        The earliest wrong vertex in topological order (``plan.IMAGE`` for the image).
    unit : int or None
        The unit that found it (the receiver of a message, unit 0 for the output).
    source : int or None
        The unit that sent it (for the output: the unit that computed it).
    inference : int or None
        Which inference of the measurement (1 is the first warm-up).
    """

    def __init__(self, message: str, vertex: int | None = None, unit: int | None = None,
                 source: int | None = None, inference: int | None = None):
        super().__init__(message)
        self.vertex, self.unit, self.source, self.inference = vertex, unit, source, inference

    def __reduce__(self):  # keep the attributes when pickled to the launcher
        return type(self), (str(self), self.vertex, self.unit, self.source, self.inference)


class UnitFailed(CnasError):
    """A unit died, failed or hung; every unit has been stopped (user-facing).

    Attributes
    ----------
    unit : int
        The unit that stopped the run.
    """

    def __init__(self, message: str, unit: int = 0):
        super().__init__(message)
        self.unit = unit

    def __reduce__(self):  # keep ``unit`` when pickled
        return type(self), (str(self), self.unit)


class OutputMismatch(UnitFailed):
    """A placed inference differed from the single-process output (user-facing).

    Attributes
    ----------
    unit : int
        The unit that found the wrong value.
    vertex : int or None
        The earliest wrong vertex (``plan.IMAGE`` for the image).
    """

    def __init__(self, message: str, unit: int = 0, vertex: int | None = None):
        super().__init__(message, unit)
        self.vertex = vertex

    def __reduce__(self):
        return type(self), (str(self), self.unit, self.vertex)


class PortTaken(UnitFailed):
    """The master port was taken before unit 0 listened on it (a fresh port may work)."""


def describe(exc: BaseException) -> str:
    """One line naming a unit's failure, as the launcher shows it to the user.

    Our own unit errors carry their line already; anything else is shown as
    ``"Type: message"`` (its first line, at most 400 characters).
    """
    if isinstance(exc, UnitError):
        return (str(exc).splitlines() or [""])[0][:400]
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:400]


def reported(exc: BaseException) -> UnitError:
    """``exc`` as a picklable :class:`UnitError` for the launcher (its type kept where it is ours)."""
    return exc if isinstance(exc, UnitError) else UnitError(describe(exc))


@contextmanager
def peer_calls():
    """Mark a block that talks to other units: its ``RuntimeError`` becomes :class:`PeerLost`.

    gloo reports a dead or disconnected peer as a plain ``RuntimeError`` ("Connection
    closed by peer"), and a message or collective can fail for no other reason; computing
    stays outside such blocks, so its errors keep their own type.
    """
    try:
        yield
    except UnitError:
        raise
    except RuntimeError as exc:
        raise PeerLost(describe(exc)) from exc
