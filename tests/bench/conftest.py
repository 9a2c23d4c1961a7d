"""The bench scripts import each other by module name (``from api import ...``), as they do
when run from ``bench/``. Their folder goes at the end of the path: one of them is named
``queue.py`` and must not hide the standard library's ``queue``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))


def load_script(name: str, module_name: str) -> ModuleType:
    """A bench script under a name of our choosing (``queue`` is taken)."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
