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
    """Unit 0's output of a placed inference differs from the single-process output."""


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
    """Unit 0 found the placed network's output different from the single-process output."""


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
