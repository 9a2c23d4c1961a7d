"""Counting what a piece of code asks the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from steelyard.db.engine import Database


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL of every statement run on ``db`` inside the block, in order."""
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
