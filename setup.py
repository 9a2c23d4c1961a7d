"""The wheel carries the labeling app's build, so installed users never need Node.

Everything else is in pyproject.toml; this only hooks ``build_py``: when a (non-editable) build
finds no ``src/steelyard/web_dist/index.html``, it runs ``npm ci`` and ``npm run build`` in
``frontend/`` first, and fails saying so when npm is missing. An editable install (``make run``
uses one) builds nothing here: ``make ui`` keeps the app current in the source tree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
FRONTEND = ROOT / "frontend"
INDEX = ROOT / "src" / "steelyard" / "web_dist" / "index.html"


class BuildWithApp(build_py):
    def run(self) -> None:
        if not getattr(self, "editable_mode", False) and not INDEX.is_file():
            if (FRONTEND / "package.json").is_file():
                npm = shutil.which("npm")
                if npm is None:
                    raise SystemExit(
                        "Building Steelyard needs the labeling app built: install Node 20+ and "
                        "npm, or run `make ui` where they are, then build again."
                    )
                subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True)
                subprocess.run([npm, "run", "build"], cwd=FRONTEND, check=True)
        super().run()


setup(cmdclass={"build_py": BuildWithApp})
