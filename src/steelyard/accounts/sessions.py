"""Login sessions: bearer tokens bound to one organization, listed and revoked by their owner.

A session is revoked (``revoked_at``) rather than deleted, so that its owner can see it ended;
revoking calls ``auth_epoch.credentials_changed`` so that it ends on every process at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from steelyard.accounts import auth_epoch, security
from steelyard.accounts.models import LoginSession, Organization
from steelyard.accounts.schemas import Actor
from steelyard.errors import NotFound, Unauthorized

SESSION_TTL = timedelta(days=7)


def start_session(
    session: Session, *, user_id: str, org_id: str, now: datetime, user_agent: str | None = None
) -> str:
    """A new session for ``user_id`` in ``org_id``; returns the token (only its hash is kept)."""
    token = security.new_token()
    session.add(
        LoginSession(
            token_hash=security.token_hash(token),
            user_id=user_id,
            org_id=org_id,
            created_at=now,
            expires_at=now + SESSION_TTL,
            user_agent=(user_agent or None) and user_agent[:200],
        )
    )
    session.flush()
    return token


@dataclass(frozen=True)
class SessionInfo:
    id: str
    org_id: str
    org_name: str
    created_at: datetime
    expires_at: datetime
    user_agent: str | None
    current: bool


def signed_in(actor: Actor) -> str:
    """The signed-in person's user id (refused for an API key)."""
    if actor.kind != "user" or actor.user_id is None:
        raise Unauthorized("Sign in first: this takes a session token from /api/auth/login.")
    return actor.user_id


def list_sessions(session: Session, actor: Actor, *, now: datetime) -> list[SessionInfo]:
    """The caller's sessions that still work, in every organization, newest first."""
    user_id = signed_in(actor)
    rows = session.execute(
        select(LoginSession, Organization.name)
        .join(Organization, Organization.id == LoginSession.org_id)
        .where(
            LoginSession.user_id == user_id,
            LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > now,
        )
        .order_by(LoginSession.created_at.desc(), LoginSession.id)
    ).all()
    return [
        SessionInfo(
            id=s.id,
            org_id=s.org_id,
            org_name=name,
            created_at=s.created_at,
            expires_at=s.expires_at,
            user_agent=s.user_agent,
            current=s.id == actor.session_id,
        )
        for s, name in rows
    ]


def revoke_session(session: Session, actor: Actor, session_id: str, *, now: datetime) -> None:
    """End one of the caller's own sessions (sign-out is this, for the current one)."""
    user_id = signed_in(actor)
    done = session.execute(
        update(LoginSession)
        .where(
            LoginSession.id == session_id,
            LoginSession.user_id == user_id,
            LoginSession.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        raise NotFound("You have no such active session.", field="session_id")
    auth_epoch.credentials_changed(session)


def sign_out(session: Session, actor: Actor, *, now: datetime) -> None:
    signed_in(actor)
    if actor.session_id is None:
        raise Unauthorized("Sign in first: this takes a session token from /api/auth/login.")
    revoke_session(session, actor, actor.session_id, now=now)


def revoke_user_sessions(
    session: Session,
    user_id: str,
    *,
    now: datetime,
    org_id: str | None = None,
    keep_session_id: str | None = None,
) -> int:
    """End every session of ``user_id`` (in ``org_id`` only, when given; all but
    ``keep_session_id``). The caller signals ``credentials_changed``; returns how many ended."""
    stmt = update(LoginSession).where(
        LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None)
    )
    if org_id is not None:
        stmt = stmt.where(LoginSession.org_id == org_id)
    if keep_session_id is not None:
        stmt = stmt.where(LoginSession.id != keep_session_id)
    return int(session.execute(stmt.values(revoked_at=now)).rowcount)  # type: ignore[attr-defined]
