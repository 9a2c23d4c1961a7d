"""Tell every serving process at once that credentials changed (a key or session revoked, a user
deactivated or removed, a role changed), so that no cached authentication outlives it.

Services call ``credentials_changed(session)`` inside the transaction that makes the change;
the signal goes out when that transaction commits. The authentication cache
(``steelyard.api.auth``) listens for it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session


def credentials_changed(session: Session) -> None:
    """Signal, on commit of ``session``'s transaction, that cached credentials are stale."""
    # Interface only for now: the implementation (a file beside the SQLite database, NOTIFY on
    # PostgreSQL) lands with the single authentication path.
    del session
