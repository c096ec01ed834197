"""Every results table of the README matches the committed results file it came from.

A README table is preceded by a marker comment naming its source::

    <!-- results: benchmarks/results/fidelity_table4.md -->          rows copied verbatim
    <!-- results: benchmarks/results/bench_match.md values -->       numbers only (other layout)
    <!-- not results -->                                              a table of facts, not measurements

``verbatim``: every row of the README table (header included) is a row of the results
file. ``values``: every number in a README data row equals a number of the results file
(or of the ``.json`` beside it) to the precision both print (a README ``-3.5 %`` may also
be a file's ``-0.035``). Either way the results file must name
the commit it was made at; ``pending`` (allowed only for the files in
``PENDING_RERUN``) marks a table measured before benchmarks recorded their commit and
waiting for a re-run on a quiet host. The benchmarks are never run here: files only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKER = re.compile(r"<!--\s*(results:\s*(?P<spec>.*?)|(?P<none>not results))\s*-->")
COMMIT = re.compile(r"commit\w*\W{1,3}(as\s+)?`?(?P<sha>[0-9a-f]{7,40})\b", re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
# Timing tables measured before their benchmark recorded a commit; the README says they
# wait for a quiet-host re-run. Nothing may be added here.
PENDING_RERUN: set[str] = set()  # the latency headline was re-run at a recorded commit


def tables(text: str) -> list[tuple[int, list[str]]]:
    """``(first line number, rows)`` of every markdown table in ``text`` (separator rows dropped)."""
    found, rows, start = [], [], 0
    for number, line in enumerate(text.splitlines() + [""], start=1):
        if line.lstrip().startswith("|"):
            if not rows:
                start = number
            rows.append(line.strip())
        elif rows:
            found.append((start, [r for r in rows if not re.fullmatch(r"\|[\s:|-]+\|", r)]))
            rows = []
    return found


def normalize(row: str) -> str:
    return "|".join(cell.strip() for cell in row.strip().strip("|").split("|"))


def markers(text: str) -> list[tuple[int, re.Match]]:
    return [(text.count("\n", 0, m.start()) + 1, m) for m in MARKER.finditer(text)]


def readme_tables() -> list[tuple[int, list[str], re.Match | None]]:
    """Every README table with the nearest marker above it that no other table claimed."""
    text = README.read_text()
    found, marks = [], markers(text)
    claimed = set()
    for start, rows in tables(text):
        above = [(line, m) for line, m in marks if line < start and line not in claimed]
        if above:
            claimed.add(above[-1][0])
        found.append((start, rows, above[-1][1] if above else None))
    return found


def numbers(text: str) -> list[str]:
    return NUMBER.findall(text.replace("−", "-"))


def decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def matches(shown: str, values: dict[str, float]) -> bool:
    """``shown`` equals one of ``values`` (text -> value) up to the rounding of either.

    A number printed with d decimals stands for anything within half a unit of its last
    digit; two printed numbers can stand for the same value if they are within the sum.
    """
    target = float(shown)
    slack = 0.5 * 10 ** -decimals(shown)
    for text, value in values.items():
        tolerance = slack + 0.5 * 10 ** -decimals(text) + 1e-12
        if abs(value - target) <= tolerance or abs(100 * value - target) <= slack + 50 * 10 ** -decimals(text):
            return True
    return False


CASES = readme_tables()


def test_every_readme_table_has_a_marker():
    missing = [start for start, _, marker in CASES if marker is None]
    assert not missing, f"README tables without a <!-- results: FILE --> or <!-- not results --> marker at lines {missing}"


@pytest.mark.parametrize("start,rows,marker", [c for c in CASES if c[2] is not None and c[2]["spec"]],
                         ids=lambda v: str(v) if isinstance(v, int) else "")
def test_readme_table_matches_its_results_file(start, rows, marker):
    words = marker["spec"].split()
    paths, mode = [w for w in words if "/" in w], [w for w in words if "/" not in w]
    assert paths, f"README line {start}: the marker names no results file"
    texts = []
    for path in paths:
        file = ROOT / path
        assert file.is_file(), f"README line {start}: results file {path} does not exist"
        text = file.read_text()
        if "pending" in mode:
            assert path in PENDING_RERUN, f"README line {start}: only {sorted(PENDING_RERUN)} may be pending"
        else:
            assert COMMIT.search(text), f"README line {start}: {path} names no commit; re-run its benchmark"
        texts.append(text)
        if "values" in mode or "pending" in mode:
            beside = file.with_suffix(".json")
            texts.append(beside.read_text() if beside.is_file() else "")
    source = "\n".join(texts)
    if "values" in mode or "pending" in mode:
        values = {n: float(n) for n in numbers(source)}
        stale = [n for row in rows[1:] for n in numbers(row) if not matches(n, values)]
        assert not stale, f"README table at line {start}: {stale[:8]} not in {paths}"
    else:
        known = {normalize(r) for _, file_rows in tables(source) for r in file_rows}
        stale = [r for r in rows if normalize(r) not in known]
        assert not stale, f"README table at line {start} differs from {paths}: {stale[:3]}"


def test_a_changed_number_is_caught(tmp_path):
    """The check itself: one digit changed in a copied row no longer matches."""
    source = "Commit abc1234.\n\n| a | b |\n|---|---|\n| x | 2.905 / 3.104 |\n"
    good, bad = "| x | 2.905 / 3.104 |", "| x | 2.017 / 3.104 |"
    known = {normalize(r) for _, rows in tables(source) for r in rows}
    assert normalize(good) in known and normalize(bad) not in known
    values = {n: float(n) for n in numbers(source)}
    assert matches("2.90", values) and matches("2.9", values) and not matches("2.017", values)
    assert matches("-3.5", {"-0.035": -0.035}) and not matches("-3.9", {"-0.035": -0.035})
    assert COMMIT.search(source)["sha"] == "abc1234"
