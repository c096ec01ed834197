"""Writing one file safely: check the path first, write aside, rename into place.

The lowest I/O layer (it imports nothing of the package but :mod:`.errors`), so
:mod:`.graphjson` and :mod:`.rundir` alike write through it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import CnasError


@contextlib.contextmanager
def atomic_output(path: str | Path, *, what: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that replaces it only if the block succeeds.

    Whatever ends the block early (an error, Ctrl-C, a kill turned into an exception)
    removes the temporary file, so a half-written file never survives and an existing
    ``path`` is left as it was. Failures to write (``OSError``, and the ``RuntimeError``
    torch raises for some I/O failures) become one-line :class:`CnasError` s.

    Parameters
    ----------
    path : str or Path
        The file to (re)place.
    what : str, optional
        What the file is, for the error message ("checkpoint", ...).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        unlink_quietly(tmp)
        reason = getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CnasError(f"cannot write {what + ' ' if what else ''}{path}: {reason}") from None
    except BaseException:
        unlink_quietly(tmp)
        raise


def check_output(
    path: str | Path, *, force: bool = False, suffixes: tuple[str, ...] = (), flag: str = "--out"
) -> Path:
    """``path`` as a Path once it is known to be a file this command may (over)write.

    Every command checks its output file with this before it does any work, so a bad
    ``--out`` fails at once and an existing file is only replaced with ``--force``.

    Parameters
    ----------
    path : str or Path
        The output file.
    force : bool
        Allow replacing an existing file.
    suffixes : tuple of str, optional
        The extensions the writer understands (``(".csv", ".json")``); any if empty.
    flag : str
        The option that named the path, for the message.

    Raises
    ------
    CnasError
        If the path is a directory, lies under a file, is a symlink loop, has an
        extension not in ``suffixes``, or exists and ``force`` is false.
    """
    path = check_place(path, flag)
    if suffixes and path.suffix.lower() not in suffixes:
        raise CnasError(f"{flag} {path}: unsupported extension '{path.suffix}'; use one of {', '.join(suffixes)}")
    if path.is_dir():
        raise CnasError(f"{flag} {path} is a directory; give a file name")
    if path.exists() and not force:
        raise CnasError(f"{flag} {path} already exists; pass --force to overwrite it")
    return path


def check_place(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a Path once it can be created: it resolves, and no folder above it is a file.

    Raises
    ------
    CnasError
        For a symlink loop, or a path under a file.
    """
    path = Path(path)
    try:
        path.resolve()
    except (RuntimeError, OSError):  # 3.11 raises RuntimeError for a loop, later versions OSError
        raise CnasError(f"{flag} {path}: cannot be resolved (a symlink loop?); give another path") from None
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise CnasError(f"{flag} {path} lies under {blocker}, which is a file; give another path")
    return path


def check_writable(directory: str | Path, *, why: str = "") -> Path:
    """``directory`` once a file has been created in it and removed again.

    A command that measures or trains for a long time calls this first, so a read-only
    directory (or file system) is refused before any work rather than after it. A real
    write, not ``os.access``: that says yes to root on a read-only mount.

    Raises
    ------
    CnasError
        If no file can be created in ``directory``.
    """
    import tempfile

    directory = Path(directory)
    try:
        fd, name = tempfile.mkstemp(prefix=".cnas-probe-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise CnasError(f"cannot write to {directory}: {exc.strerror}{why}; make it writable or copy the run") from None
    os.close(fd)
    unlink_quietly(Path(name))
    return directory


def unlink_quietly(path: Path) -> None:
    # The cleanup must not replace the error being reported (a read-only directory
    # refuses the unlink just as it refused the write).
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
