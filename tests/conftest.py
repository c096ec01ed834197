"""Shared fixtures: small real runs made with the public CLI."""

from __future__ import annotations

import os
import sys

import pytest

# Tests run two at a time on a 2-core machine (pytest -n 2): torch's default of one
# intra-op thread per core would oversubscribe it and slow small networks a hundredfold.
# Set before torch is first imported, and inherited by every subprocess a test starts.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
if "torch" in sys.modules:  # a plugin imported it first: the variables came too late
    sys.modules["torch"].set_num_threads(1)

from concurrent_nas.cli.main import main


@pytest.fixture(scope="session")
def small_dp_run(tmp_path_factory):
    """A real 12-architecture DP run with 20 blocks each (read-only: copy before changing)."""
    out = tmp_path_factory.mktemp("runs") / "dp20"
    assert main(["sample", "--gen", "dp", "--n", "12", "--nodes", "20", "--seed", "7", "--out-dir", str(out)]) == 0
    return out
