"""What every benchmark stamps on its results: the commit it measured, and rows as Markdown.

The scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path`` and
they import it as ``stamp``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git_commit(code: Sequence[str] | None = None, *, short: bool = False) -> str:
    """HEAD (abbreviated with ``short``), plus ``+dirty`` when the ``code`` paths differ from it.

    Only the measured code counts: other uncommitted work in the tree (a colleague's
    half-done module) does not make a result dirty. Without ``code`` nothing is checked.
    """
    command = ["git", "rev-parse", *(["--short"] if short else []), "HEAD"]
    head = subprocess.run(command, cwd=ROOT, capture_output=True, text=True).stdout.strip() or "unknown"
    if code is None:
        return head
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", *code], cwd=ROOT).returncode
    return head + ("+dirty" if dirty else "")


def rows_to_markdown(rows: Sequence[dict]) -> str:
    """A Markdown table of ``rows`` (dicts with the same keys); floats with 3 decimals."""
    if not rows:
        return "(no rows)\n"
    cols = list(rows[0])
    cell = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"
