"""The top-level public API: every name resolves, importing it stays light, docs cover it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import concurrent_nas as cnas

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(cnas.__all__))
def test_every_public_name_resolves(name):
    assert getattr(cnas, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cnas.nope  # noqa: B018


def test_import_pulls_in_neither_torch_nor_kahypar():
    code = "import sys, concurrent_nas; print('torch' in sys.modules, 'kahypar' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_build_network_is_the_compile_function():
    assert cnas.build_network is cnas.compile


def test_docs_page_has_a_section_per_public_entry():
    text = (ROOT / "docs/api.md").read_text()
    documented = set(re.findall(r"`(\w+)\(", text))
    public = {n for n in cnas.__all__ if not n.startswith("_") and n not in {"CnasError"}}
    # `compile` is documented as the old name of build_network, in its section.
    assert public - {"compile"} <= documented, sorted(public - {"compile"} - documented)


def test_docs_examples_run_in_order(tmp_path, monkeypatch):
    """Every Python block of docs/api.md, top to bottom in one namespace, as a reader would."""
    blocks = re.findall(r"```python\n(.+?)\n```", (ROOT / "docs/api.md").read_text(), re.S)
    assert len(blocks) >= 10
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, "docs/api.md", "exec"), namespace)  # noqa: S102 - our own docs
    # What the examples claim, checked on what they produced.
    assert namespace["same"].edges == namespace["dag"].edges
    assert sum(p.numel() for p in namespace["again"].parameters()) == int(namespace["table"]["params"].sum())
    assert set(namespace["result"].table["units"]) >= {1, 2}
    assert (tmp_path / "runs/dp40-report/summary.md").exists()
