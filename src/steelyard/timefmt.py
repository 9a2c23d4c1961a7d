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


#: The first and last instants a ``datetime`` holds in UTC (years 1 to 9999).
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def parse(value: str, *, field: str) -> datetime:
    """Accept ``2024-01-02``, ``2024-01-02 03:04:05.678``, ``...T...Z``, offsets; naive = UTC.

    A time written within years 1 to 9999 whose offset takes it past either end once in UTC
    (``0001-01-01T00:00:00+01:00``) is taken as that end: as a bound it selects exactly what
    the instant itself would, since nothing is stored beyond the ends. Seconds since the epoch
    outside those years are refused, naming ``field``.
    """
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            # OSError: glibc's own range for very negative times ends before datetime's.
            parsed = datetime.fromtimestamp(float(text), tz=UTC)
        except (ValueError, OverflowError, OSError):
            raise ValidationError(
                f"{field} must be an ISO-8601 date or time between the years 1 and 9999, "
                f"got '{value[:100]}'.",
                field=field,
            ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return EARLIEST if parsed.year == 1 else LATEST


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
