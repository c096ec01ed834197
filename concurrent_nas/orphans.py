"""Keeping the processes we spawn (scoring workers, latency units) from outliving us."""

from __future__ import annotations

import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux only).

    Unlike a thread that polls the parent id, this also works while the process is
    inside a long C call that holds the GIL (KaHyPar, a hung unit). The signal is tied
    to the *thread* that created this process, so spawn from one that lives as long as
    the work does.

    Returns
    -------
    bool
        Whether the request was made (False off Linux or without a C library).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    except (OSError, AttributeError):
        return False
    return True
