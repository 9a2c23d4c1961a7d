"""Small helpers shared by the v2 handlers: bodies, loading expanded objects, times."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from steelyard.projects.models import Batch, Project
from steelyard.timefmt import parse, parse_upper
from steelyard.validation import json_object, optional_bool, optional_str

body_object = json_object


def opt_str(body: dict[str, Any], key: str) -> str | None:
    """An optional string in which ``""`` means not given."""
    return optional_str(body, key) or None


def merge_flag(body: dict[str, Any]) -> bool:
    return optional_bool(body, "merge") or False


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
