"""What import-linter cannot say about DESIGN.md §2's imports.

The layers themselves (edges over services over domains, ``quality`` importing nothing else of
Steelyard's, no web framework below the edges) are ``[tool.importlinter]`` contracts, checked by
``make lint``. Those forbid named modules; this is an allow-list: ``steelyard.quality`` is pure
maths, so numpy, scipy, shapely, pyarrow (columnar coding of ids) and the standard library are
all it may import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "steelyard"
QUALITY_ALLOWED = {"numpy", "scipy", "shapely", "pyarrow", "steelyard"}


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
