"""Memory a command is about to need, checked against what the host has, before the work.

One check for every up-front estimate (a sample's table, a latency run's unit processes,
a forward pass at a large image size): it refuses with the estimate and the limit,
instead of a ``MemoryError`` traceback or an out-of-memory kill minutes later.
"""

from __future__ import annotations

import os

from .errors import CnasError


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or ``None`` where it cannot be read.

    Linux's ``MemAvailable`` (free plus reclaimable cache) where there is one, else the
    free pages ``sysconf`` reports.
    """
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(need: int, what: str, fix: str) -> None:
    """Raise a one-line :class:`CnasError` if ``need`` bytes exceed the memory available.

    Parameters
    ----------
    need : int
        Estimated bytes.
    what : str
        What needs them ("1000000000 architectures"), the start of the message.
    fix : str
        What to do instead ("sample fewer (--n)").
    """
    have = available_memory()
    if have is not None and need > have:
        raise CnasError(f"{what} need about {need / 2**30:.1f} GiB of memory, {have / 2**30:.1f} GiB is "
                        f"available; {fix}")
