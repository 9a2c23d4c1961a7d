"""Idempotency keys: the same key on the same endpoint replays the first response.

Scale recommends sending ``Idempotency-Key`` (a v4 UUID) on creates; a retried request then
gets the original status and body instead of doing the work twice. Keys are per organization
and environment and live for 24 hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.errors import Duplicate, ValidationError
from steelyard.idempotency.models import IdempotencyRecord

TTL = timedelta(hours=24)
#: The lengths of ``idempotency_records.key`` and ``.path``: past them PostgreSQL refuses the
#: row (a 500) where SQLite stores it, so both are checked here first.
MAX_KEY_LENGTH = 255
MAX_PATH_LENGTH = 2000
#: Printable ASCII (space to ``~``): what a key (a UUID, as Scale recommends) is made of. Control
#: characters and bytes past ASCII (a header's value is Latin-1) are refused, not stored.
_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")


def check_request(key: str, path: str) -> None:
    """Refuse a key or a path that cannot be stored as it is (a 400 naming it)."""
    if not _KEY.fullmatch(key):
        raise ValidationError(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
            "(a UUID, for example).",
            field="Idempotency-Key",
        )
    if len(path) > MAX_PATH_LENGTH:
        raise ValidationError(
            f"A request with an Idempotency-Key must have a path of at most {MAX_PATH_LENGTH} "
            "characters (no Scale API path is longer).",
            field="url",
        )


@dataclass(frozen=True)
class Replay:
    status_code: int
    content_type: str | None
    body: bytes


def begin(
    session: Session,
    actor: Actor,
    *,
    key: str,
    method: str,
    path: str,
    request_hash: str,
    now: datetime,
) -> Replay | str:
    """A stored response to replay, or the id of a new in-progress record for this request."""
    check_request(key, path)
    scope = (
        IdempotencyRecord.org_id == actor.org_id,
        IdempotencyRecord.is_test == actor.is_test,
        IdempotencyRecord.key == key,
    )
    # Expired keys may be used again.
    session.execute(
        delete(IdempotencyRecord).where(*scope, IdempotencyRecord.created_at < now - TTL)
    )
    record = session.scalar(select(IdempotencyRecord).where(*scope))
    if record is None:
        record = IdempotencyRecord(
            org_id=actor.org_id,
            is_test=actor.is_test,
            key=key,
            method=method,
            path=path,
            request_hash=request_hash,
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(record)
                session.flush()
        except IntegrityError:
            raise Duplicate(
                "A request with this Idempotency-Key is still being processed.",
                field="Idempotency-Key",
            ) from None
        return record.id
    if (record.method, record.path, record.request_hash) != (method, path, request_hash):
        raise ValidationError(
            "This Idempotency-Key was already used for a different request; "
            "use a new key for new work.",
            field="Idempotency-Key",
        )
    if record.status_code is None:
        raise Duplicate(
            "A request with this Idempotency-Key is still being processed.",
            field="Idempotency-Key",
        )
    return Replay(record.status_code, record.content_type, record.body or b"")


def finish(
    session: Session, record_id: str, *, status_code: int, content_type: str | None, body: bytes
) -> None:
    """Keep the response to replay, or forget the key after a server error so a retry runs."""
    record = session.get(IdempotencyRecord, record_id)
    if record is None:
        return
    if status_code >= 500:
        session.delete(record)
    else:
        record.status_code = status_code
        record.content_type = content_type
        record.body = body
    session.flush()
