"""Timestamps as Scale writes them (ISO-8601 UTC, milliseconds, ``Z``) and lenient parsing."""

from __future__ import annotations

from datetime import UTC, datetime

from steelyard.errors import ValidationError


def iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse(value: str, *, field: str) -> datetime:
    """Accept ``2024-01-02``, ``2024-01-02 03:04:05.678``, ``...T...Z``, offsets; naive = UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.fromtimestamp(float(text), tz=UTC)
        except (ValueError, OverflowError):
            raise ValidationError(
                f"{field} must be an ISO-8601 date or time, got '{value}'.", field=field
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
