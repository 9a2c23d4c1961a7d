"""Small helpers shared by the v2 handlers: bodies, loading expanded objects, times."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from steelyard.errors import ValidationError
from steelyard.projects.models import Batch, Project
from steelyard.timefmt import parse, parse_upper


def body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationError("The body must be a JSON object.", field="body")
    return body


def opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"'{key}' must be a string.", field=key)
    return value or None


def merge_flag(body: dict[str, Any]) -> bool:
    value = body.get("merge", False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValidationError("'merge' must be true or false.", field="merge")
    return value


def after(value: str | None, field: str) -> datetime | None:
    return parse(value, field=field) if value else None


def before(value: str | None, field: str) -> datetime | None:
    return parse_upper(value, field=field) if value else None


def projects_by_id(session: Session, ids: set[str]) -> dict[str, Project]:
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(Project).where(Project.id.in_(ids)))}


def batches_by_id(session: Session, ids: set[str]) -> dict[str, Batch]:
    if not ids:
        return {}
    return {b.id: b for b in session.scalars(select(Batch).where(Batch.id.in_(ids)))}
