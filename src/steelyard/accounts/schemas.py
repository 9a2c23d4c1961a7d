"""Who is calling: the actor every service call is scoped by."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Actor:
    """The caller. ``is_test`` selects the test environment (a ``test_`` key)."""

    org_id: str
    is_test: bool
    kind: str  # "api_key" | "user"
    role: str
    user_id: str | None = None
    #: The login session a ``user`` actor signed in with (what sign-out revokes).
    session_id: str | None = None
    #: When that session ends (None for an API key): a cached actor must not outlive it.
    expires_at: datetime | None = None

    @property
    def is_customer(self) -> bool:
        return self.kind == "api_key" or self.role in ("owner", "admin", "manager")
