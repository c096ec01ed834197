"""TCP ports for the process group's rendezvous: a free one, or a clear error for a busy one."""

from __future__ import annotations

import errno
import socket

from ..errors import CnasError


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails because something else holds it (``EADDRINUSE``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def check_port(host: str, port: int) -> None:
    """Raise a clear :class:`CnasError` if ``host:port`` cannot be listened on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CnasError(
                    f"port {port} on {host} is busy; choose another --master HOST:PORT "
                    "(or omit --master to pick a free port)"
                ) from None
            raise CnasError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
