"""Shared fixtures: small real runs made with the public CLI."""

from __future__ import annotations

import pytest

from concurrent_nas.cli.main import main


@pytest.fixture(scope="session")
def small_dp_run(tmp_path_factory):
    """A real 12-architecture DP run with 20 blocks each (read-only: copy before changing)."""
    out = tmp_path_factory.mktemp("runs") / "dp20"
    assert main(["sample", "--gen", "dp", "--n", "12", "--nodes", "20", "--seed", "7", "--out", str(out)]) == 0
    return out
