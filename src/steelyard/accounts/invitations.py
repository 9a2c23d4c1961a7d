"""Invitations: how a person joins an organization, by accepting.

An organization invites an email with a role; that makes a pending invitation, never a
membership, whoever the email belongs to. The person accepts (or declines) it:

- signed in (any organization): ``GET /api/invitations`` lists the invitations to their email,
  ``POST /api/invitations/{id}/accept`` makes the membership;
- with the invitation's token (``POST /api/invitations/accept``): someone without an account
  sets a password there; someone with one gives their current password, which is never changed.

Inviting the same email again renews the invitation (new token, role and expiry). Invitations
expire after ``INVITATION_TTL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, bindparam, insert, select, update
from sqlalchemy.orm import Session

from steelyard.accounts import security, service
from steelyard.accounts.models import Invitation, Membership, Organization, User
from steelyard.accounts.schemas import Actor
from steelyard.db.base import new_id
from steelyard.errors import NotFound, Unauthorized

INVITATION_TTL = timedelta(days=14)


def _pending(now: datetime) -> ColumnElement[bool]:
    return and_(
        Invitation.accepted_at.is_(None),
        Invitation.declined_at.is_(None),
        Invitation.expires_at > now,
    )


@dataclass(frozen=True, slots=True)
class Offer:
    """An invitation about to be made: a normalized email and the hash of its new token, made
    before the transaction (``offer``)."""

    email: str
    token_hash: str


def offer(email: str, *, field: str = "email") -> tuple[Offer, str]:
    """An ``Offer`` for ``email`` and the token it carries (to hand to the person, once)."""
    token = security.new_token()
    return Offer(service.normalize_email(email, field=field), security.token_hash(token)), token


def invite(session: Session, org_id: str, email: str, role: str, *, now: datetime) -> str | None:
    """Invite ``email`` to ``org_id`` as ``role``; returns the token to hand to the person (shown
    once), or None when the email is already a member (nothing changes, as in Scale)."""
    made, token = offer(email)
    return token if invite_many(session, org_id, [made], role, now=now) else None


def invite_many(
    session: Session, org_id: str, offers: list[Offer], role: str, *, now: datetime
) -> set[str]:
    """Invite every offer's email that is not a member yet (members are left as they are);
    returns the emails invited. A few statements whatever the count: one read of the members
    and one of the invitations among the emails, one insert, one update."""
    service.check_role(role)
    emails = [o.email for o in offers]
    members = set(
        session.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org_id, User.email.in_(emails))
        )
    )
    existing = {
        email: invitation_id
        for email, invitation_id in session.execute(
            select(Invitation.email, Invitation.id).where(
                Invitation.org_id == org_id, Invitation.email.in_(emails)
            )
        )
    }
    fresh = {
        "role": role,
        "created_at": now,
        "expires_at": now + INVITATION_TTL,
        "accepted_at": None,
        "declined_at": None,
    }
    inserts, renewals = [], []
    for o in offers:
        if o.email in members:
            continue
        if o.email in existing:
            renewals.append({"_id": existing[o.email], "token_hash": o.token_hash, **fresh})
        else:
            row = {"id": new_id(), "org_id": org_id, "email": o.email, "token_hash": o.token_hash}
            inserts.append({**row, **fresh})
    if inserts:
        session.execute(insert(Invitation), inserts)
    if renewals:
        session.connection().execute(_RENEW, renewals)
    return {o.email for o in offers if o.email not in members}


_RENEW = (
    update(Invitation)
    .where(Invitation.id == bindparam("_id"))
    .values(
        role=bindparam("role"),
        token_hash=bindparam("token_hash"),
        created_at=bindparam("created_at"),
        expires_at=bindparam("expires_at"),
        accepted_at=bindparam("accepted_at"),
        declined_at=bindparam("declined_at"),
    )
)


def pending_for_org(
    session: Session, org_id: str, *, now: datetime
) -> list[tuple[str, str, datetime]]:
    """``(email, role, expires_at)`` of each pending invitation: plain rows, as a team of
    thousands is listed after every invite."""
    rows = session.execute(
        select(Invitation.email, Invitation.role, Invitation.expires_at)
        .where(Invitation.org_id == org_id, _pending(now))
        .order_by(Invitation.email)
    )
    return [(email, role, expires_at) for email, role, expires_at in rows]


def pending_among(
    session: Session, org_id: str, emails: list[str], *, now: datetime
) -> list[Invitation]:
    return list(
        session.scalars(
            select(Invitation).where(
                Invitation.org_id == org_id, Invitation.email.in_(emails), _pending(now)
            )
        )
    )


@dataclass(frozen=True)
class MyInvitation:
    id: str
    org_id: str
    org_name: str
    role: str
    expires_at: datetime


def _my_email(session: Session, actor: Actor) -> tuple[User, str]:
    if actor.kind != "user" or actor.user_id is None:
        raise Unauthorized("Sign in first: this takes a session token from /api/auth/login.")
    user = session.get(User, actor.user_id)
    if user is None:
        raise Unauthorized("Invalid session.")
    return user, user.email


def list_mine(session: Session, actor: Actor, *, now: datetime) -> list[MyInvitation]:
    """Pending invitations to the signed-in person's email, from every organization."""
    _, email = _my_email(session, actor)
    rows = session.execute(
        select(Invitation, Organization.name)
        .join(Organization, Organization.id == Invitation.org_id)
        .where(Invitation.email == email, _pending(now))
        .order_by(Organization.name)
    ).all()
    return [MyInvitation(i.id, i.org_id, name, i.role, i.expires_at) for i, name in rows]


def _mine(
    session: Session, actor: Actor, invitation_id: str, now: datetime
) -> tuple[User, Invitation]:
    user, email = _my_email(session, actor)
    row = session.scalar(
        select(Invitation).where(
            Invitation.id == invitation_id, Invitation.email == email, _pending(now)
        )
    )
    if row is None:
        raise NotFound("You have no such pending invitation.", field="invitation_id")
    return user, row


def accept(session: Session, actor: Actor, invitation_id: str, *, now: datetime) -> MyInvitation:
    user, row = _mine(session, actor, invitation_id, now)
    return _redeem(session, row, user, now)


def decline(session: Session, actor: Actor, invitation_id: str, *, now: datetime) -> None:
    _, row = _mine(session, actor, invitation_id, now)
    row.declined_at = now
    session.flush()


@dataclass(frozen=True)
class TokenInvitation:
    """A pending invitation found by its token, read before the slow password work."""

    id: str
    org_id: str
    email: str


def find_by_token(session: Session, token: str, *, now: datetime) -> TokenInvitation:
    row = session.scalar(
        select(Invitation).where(Invitation.token_hash == security.token_hash(token), _pending(now))
    )
    if row is None:
        raise NotFound("This invitation does not exist, has expired or was used.", field="token")
    return TokenInvitation(row.id, row.org_id, row.email)


def redeem_by_id(
    session: Session, invitation_id: str, user: User, *, now: datetime
) -> MyInvitation:
    """Accept a (still pending) invitation for ``user``, whose email it must be addressed to."""
    row = session.scalar(
        select(Invitation).where(
            Invitation.id == invitation_id, Invitation.email == user.email, _pending(now)
        )
    )
    if row is None:
        raise NotFound("This invitation does not exist, has expired or was used.", field="token")
    return _redeem(session, row, user, now)


def _redeem(session: Session, row: Invitation, user: User, now: datetime) -> MyInvitation:
    service.add_membership(session, org_id=row.org_id, user=user, role=row.role)
    row.accepted_at = now
    session.flush()
    org = service.get_organization(session, row.org_id)
    return MyInvitation(row.id, row.org_id, org.name, row.role, row.expires_at)
