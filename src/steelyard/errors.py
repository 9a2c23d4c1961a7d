"""Domain errors: a stable code, a human message and, where it applies, the field at fault.

Nothing here knows about HTTP; ``steelyard.api.errors`` maps codes to status codes in one place.
"""

from __future__ import annotations


class SteelyardError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class ValidationError(SteelyardError):
    """Input does not fit: names the field (dotted path, e.g. ``geometries.box.min_width``)."""

    code = "invalid"


class NotFound(SteelyardError):
    code = "not_found"


class Duplicate(SteelyardError):
    """A unique name or id is taken. ``existing_id`` points at the holder when known."""

    code = "duplicate"

    def __init__(
        self, message: str, *, field: str | None = None, existing_id: str | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.existing_id = existing_id


class InvalidState(SteelyardError):
    """The object exists but cannot make this transition (cancel a completed task...)."""

    code = "invalid_state"


class AlreadySubmitted(InvalidState):
    """A submit for an assignment already submitted: the first one counted, this one stored
    nothing. Its own code lets a client that resends after a lost answer treat it as done."""

    code = "already_submitted"


class NotEnabled(SteelyardError):
    """A task type or feature this server does not provide."""

    code = "not_enabled"


class Unauthorized(SteelyardError):
    code = "unauthorized"


class Forbidden(SteelyardError):
    code = "forbidden"


class TooLarge(SteelyardError):
    code = "too_large"


class RateLimited(SteelyardError):
    """Too many requests (or failed sign-ins): try again after ``retry_after`` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = max(1, int(retry_after + 0.999))
