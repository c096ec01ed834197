"""Finished chunks on disk, and the fingerprint that says which run they belong to.

Chunk boundaries depend only on the records and the chunk size, so a chunk file is
valid for any later call with the same fingerprint, whatever its worker count.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..errors import CnasError
from ..rundir import load_parquet, write_table
from .config import ScoreConfig
from .records import RECORD_KEYS


def fingerprint(records: Sequence[dict], config: ScoreConfig) -> str:
    """Hash of the inputs and settings: checkpoints of another command never mix in."""
    h = hashlib.sha256()
    h.update(json.dumps(config.describe(), sort_keys=True, default=str).encode())
    for r in records:
        h.update(json.dumps([r[k] for k in RECORD_KEYS]).encode())
    return h.hexdigest()[:20]


class Checkpoints:
    """A directory of finished chunks, ``chunk-<i>.parquet``, each written atomically.

    ``None`` as the directory keeps nothing (every method does nothing).
    """

    def __init__(self, directory: str | Path | None):
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CnasError(f"cannot create checkpoint directory {self.directory}: {exc.strerror}") from None

    def _path(self, i: int) -> Path:
        return self.directory / f"chunk-{i:06d}.parquet"

    def load(self, i: int) -> pd.DataFrame | None:
        """Chunk ``i`` if it was finished before, else ``None``."""
        if self.directory is None or not self._path(i).exists():
            return None
        try:
            return load_parquet(self._path(i))
        except Exception:  # a damaged checkpoint is recomputed, never trusted
            self._path(i).unlink(missing_ok=True)
            return None

    def save(self, i: int, frame: pd.DataFrame) -> None:
        """Keep chunk ``i`` (atomically: a kill mid-write leaves no half file)."""
        if self.directory is not None:
            write_table(frame, self._path(i))

    def remove(self) -> None:
        """Delete the directory and every chunk in it."""
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
