"""All SQL of the rate limiter. Buckets belong to no organization: they are counted before
the caller is known (an address, a hash of a credential)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

from sqlalchemy import Table, delete, select, text
from sqlalchemy.orm import Session

from steelyard.ratelimit.models import RateLimitBucket
from steelyard.ratelimit.window import Key

# One statement both databases understand (as ``db.dialect.increment_count``).
_ADD = text(
    "INSERT INTO rate_limit_buckets (bucket, window_start, hits) "
    "VALUES (:bucket, :window_start, :n) "
    "ON CONFLICT (bucket, window_start) "
    "DO UPDATE SET hits = rate_limit_buckets.hits + excluded.hits"
)
_TABLE = cast(Table, RateLimitBucket.__table__)
#: Bound parameters per ``IN`` list, well under SQLite's and PostgreSQL's limits.
_CHUNK = 500


def add(session: Session, deltas: Mapping[Key, int]) -> None:
    """Add ``deltas`` to the shared counts in one statement.

    Rows are written in one order in every process, so that two PostgreSQL transactions adding
    to the same buckets queue on each other instead of deadlocking.
    """
    rows = [
        {"bucket": bucket, "window_start": start, "n": n}
        for (bucket, start), n in sorted(deltas.items())
        if n
    ]
    if rows:
        session.connection().execute(_ADD, rows)


def totals(session: Session, buckets: Iterable[str], since: int) -> dict[Key, int]:
    """The shared counts of ``buckets`` in window ``since`` and later."""
    names = sorted(buckets)
    found: dict[Key, int] = {}
    table = _TABLE
    for i in range(0, len(names), _CHUNK):
        stmt = select(table.c.bucket, table.c.window_start, table.c.hits).where(
            table.c.bucket.in_(names[i : i + _CHUNK]), table.c.window_start >= since
        )
        for bucket, start, hits in session.connection().execute(stmt):
            found[(bucket, start)] = hits
    return found


def purge(session: Session, before: int) -> None:
    """Forget windows that start before ``before`` (no estimate reads them any more)."""
    session.connection().execute(delete(_TABLE).where(_TABLE.c.window_start < before))
