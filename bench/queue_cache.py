"""A loaded SQLite database kept between runs of the queue benchmark (``--cache DIR``): loading
10^6 tasks takes minutes, copying the file seconds.

A copy is keyed by the schema's migration head, the number of tasks and workers, and this
setup code's own text, so a change to any of them loads afresh. It is taken right after the
load was checked and before any worker signed in; the secret key under the data dir goes with
it. Opt-in: a fresh load is what a measurement of record should use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

from queue_setup import Setup

BENCH = Path(__file__).resolve().parent


def cache_key(n: int, workers: int, gold_tasks: int, gold_rate: float) -> str:
    from alembic.script import ScriptDirectory

    from steelyard.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    code = hashlib.sha256()
    for name in ("queue_setup.py", "queue_cache.py"):
        code.update((BENCH / name).read_bytes())
    return f"{head}-{n}-{workers}w-{gold_tasks}g{gold_rate}-{code.hexdigest()[:10]}"


def restore(cache: Path, key: str, data_dir: Path) -> Setup | None:
    """Copy a kept database into ``data_dir``; its setup, or None when there is none."""
    kept = cache / key
    if not (kept / "setup.json").exists():
        return None
    shutil.copyfile(kept / "steelyard.db", data_dir / "steelyard.db")
    shutil.copyfile(kept / "secret_key", data_dir / "secret_key")
    return Setup(**json.loads((kept / "setup.json").read_text()))


def save(cache: Path, key: str, data_dir: Path, setup: Setup) -> None:
    """Keep a consistent copy of the database (SQLite's online backup: the server may be
    running) and the setup that goes with it; written under a temporary name, then renamed."""
    kept = cache / key
    if kept.exists():
        return
    partial = cache / f"{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    source = sqlite3.connect(data_dir / "steelyard.db")
    target = sqlite3.connect(partial / "steelyard.db")
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    shutil.copyfile(data_dir / "secret_key", partial / "secret_key")
    (partial / "setup.json").write_text(json.dumps(dataclasses.asdict(setup)))
    partial.rename(kept)
