"""The package's rooms and the rules between them: the method (``model/``) and the data
(``data/``) import nothing from a run's machinery (``runs/``), the report (``report/``) or the
commands built on them (``active/``, ``policy/``); the report imports nothing from ``runs/``;
and no module imports itself back through a cycle.

Imports are read from the source (every ``import`` statement, at module level or inside a
function), so a lazy import that breaks a rule is caught as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bnnlv"
# room → the rooms it must not import
FORBIDDEN = {
    "model": ("runs", "report", "active", "policy"),
    "data": ("runs", "report", "active", "policy"),
    "report": ("runs",),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def bnnlv_imports(path: Path, known: set[str]) -> set[str]:
    """The bnnlv modules ``path`` imports: ``from a.b import c`` counts as a.b.c when that is a
    module, else as a.b."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if n in known else node.module for n in names]
        else:
            continue
        found |= {n for n in names if n == "bnnlv" or n.startswith("bnnlv.")}
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(p) for p in paths}
    return {module_name(p): bnnlv_imports(p, known) - {module_name(p)} for p in paths}


def test_the_package_has_its_rooms(graph: dict[str, set[str]]) -> None:
    rooms = {name.split(".")[1] for name in graph if name.count(".") >= 1}
    assert {"model", "data", "runs", "report"} <= rooms


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_lower_rooms_do_not_import_higher_ones(graph: dict[str, set[str]], room: str) -> None:
    bad = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.startswith(f"bnnlv.{room}.")
        for target in sorted(targets)
        if any(target.startswith(f"bnnlv.{higher}") for higher in FORBIDDEN[room])
    ]
    assert not bad, "; ".join(bad)


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    """Depth-first search for a back edge; the cycle found is named in the failure."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            assert cycle is None, " → ".join(cycle)


def test_the_walk_sees_a_lazy_import(tmp_path: Path) -> None:
    """The rule test would catch an import hidden inside a function (the checker itself works)."""
    source = tmp_path / "bad.py"
    source.write_text("def f():\n    from bnnlv.runs.errors import describe\n    return describe\n")
    assert bnnlv_imports(source, {"bnnlv.runs.errors"}) == {"bnnlv.runs.errors"}
