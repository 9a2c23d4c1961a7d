"""The import rules of DESIGN.md §2, checked on the source text (no import-linter needed).

``steelyard.quality`` is pure maths: numpy, scipy, shapely and the standard library only.
Domain packages never import the edges (``api``, ``cli``, ``jobs.runner``); nothing imports ``api``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "steelyard"
QUALITY_ALLOWED = {"numpy", "scipy", "shapely", "steelyard"}
DOMAIN = [
    "accounts",
    "projects",
    "tasks",
    "workflow",
    "callbacks",
    "files",
    "tasktypes",
    "db",
    "studio",
    "idempotency",
]
EDGES = ("steelyard.api", "steelyard.cli", "steelyard.jobs.runner")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((SRC / "quality").glob("*.py")), ids=lambda p: p.name)
def test_quality_imports_only_maths(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names:
            continue
        assert top in QUALITY_ALLOWED, f"{path.name} imports {name}"
        if top == "steelyard":
            assert name.startswith("steelyard.quality"), f"{path.name} imports {name}"


@pytest.mark.parametrize(
    "path",
    sorted(p for pkg in DOMAIN for p in (SRC / pkg).rglob("*.py")),
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_domain_does_not_import_edges(path: Path) -> None:
    for name in _imports(path):
        assert not name.startswith(EDGES), f"{path.relative_to(SRC)} imports {name}"
