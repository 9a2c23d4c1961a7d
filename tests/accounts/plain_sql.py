"""Changes made the way an operator makes them: plain SQL on a driver connection of its own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from steelyard.accounts.models import User
from steelyard.db.engine import Database


@contextmanager
def plain_connection(db: Database) -> Iterator[Any]:
    """A DB-API connection of the driver's own, as ``sqlite3`` or ``psql`` would open: no
    Steelyard code, no SQLAlchemy. Statements use ``%s`` placeholders on both databases."""
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite":
        conn: Any = sqlite3.connect(str(url.database), isolation_level=None, timeout=30)
    else:
        conn = psycopg.connect(
            url.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        )
    try:
        yield conn
    finally:
        conn.close()


def plain_sql(db: Database, statement: str, *params: Any) -> None:
    """Run one statement in its own committed transaction on a plain connection."""
    with plain_connection(db) as conn:
        execute(db, conn, statement, *params)


def execute(db: Database, conn: Any, statement: str, *params: Any) -> None:
    if db.is_sqlite:
        statement = statement.replace("%s", "?")
    conn.execute(statement, params)


def user_id_of(db: Database, email: str) -> str:
    with db.unit_of_work(write=False) as session:
        return str(session.scalar(select(User.id).where(User.email == email)))
