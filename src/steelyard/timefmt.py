"""Timestamps as Scale writes them (ISO-8601 UTC, milliseconds, ``Z``) and lenient parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from steelyard.errors import ValidationError


def iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    # isoformat is C code; this runs for every timestamp of every task on a list page.
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"


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


def parse_upper(value: str, *, field: str) -> datetime:
    """An inclusive upper bound (``end_time``, ``*_before``).

    The API writes timestamps to the millisecond while it stores microseconds, so a bound copied
    from a response (``end_time=task.created_at``) must cover that whole millisecond or it
    would exclude the very task it was copied from. A bound given with finer precision is
    taken as is.
    """
    parsed = parse(value, field=field)
    if parsed.microsecond % 1000 == 0:
        parsed += timedelta(microseconds=999)
    return parsed
