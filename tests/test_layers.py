"""The package tree shows the pipeline: no import cycle, and no stage imports a later one.

Imports are read from the source (``ast``), including those inside functions, since a
function-local import is how a cycle usually hides.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "concurrent_nas"

# Component -> the components it may import (besides itself). Read down the pipeline:
# generators -> dag -> shapes -> scoring / compiler -> placement -> analysis, with the CLI
# on top. `rundir` and `graphjson` are the I/O edge every stage may use.
BASE = {"errors", "dag", "orphans", "lazy", "files", "resources"}
IO = BASE | {"graphjson", "rundir"}
ALLOWED = {
    "errors": set(),
    "orphans": set(),
    "lazy": set(),
    "files": {"errors"},
    "resources": {"errors"},
    "dag": {"errors"},
    "generators": BASE,
    "graphjson": BASE,
    "shapes": BASE,
    "rundir": BASE | {"graphjson"},
    "sampling": IO | {"generators"},
    "parameters": IO | {"shapes"},
    "scoring": IO | {"shapes"},
    "compiler": IO | {"shapes"},
    "placement": IO | {"shapes", "scoring", "compiler"},
    "training": IO | {"shapes", "compiler"},
    "analysis": IO | {"shapes", "scoring", "generators", "search"},
    "search": IO | {"generators", "sampling", "shapes", "scoring", "placement", "predict", "training"},
    "predict": IO | {"shapes", "scoring", "compiler", "placement"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def imports_of(path: Path) -> list[str]:
    """Modules of this package that ``path`` imports, resolved to the defining module."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("concurrent_nas")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("concurrent_nas"):
                target = node.module
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if is_package(target) and (is_package(sub) or (PACKAGE.parent / f"{sub.replace('.', '/')}.py").exists()):
                    found.append(sub)
                else:
                    found.append(target)
    return found


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for path in PACKAGE.rglob("*.py"):
        me = module_name(path)
        graph.add_node(me)
        for target in imports_of(path):
            if target != me:
                graph.add_edge(me, target)
    return graph


def component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_module_imports_itself_back():
    graph = import_graph()
    # A package's __init__ importing its own submodules is how re-exports work, not a
    # cycle between concerns.
    graph.remove_edges_from([(u, v) for u, v in list(graph.edges) if v.startswith(u + ".")])
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_no_stage_imports_a_later_stage():
    bad = []
    for u, v in import_graph().edges:
        cu, cv = component(u), component(v)
        if cu in ("", "cli") or cu == cv or not cv:
            continue
        if cu not in ALLOWED:
            bad.append(f"{u}: component {cu!r} has no place in the layer map; add it")
        elif cv not in ALLOWED[cu]:
            bad.append(f"{u} imports {v}")
    assert not bad, "\n".join(bad)


def test_nothing_but_the_cli_imports_the_cli():
    users = {u for u, v in import_graph().edges if component(v) == "cli" and component(u) != "cli"}
    assert not users
