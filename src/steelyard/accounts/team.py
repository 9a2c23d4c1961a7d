"""An organization's team as Scale's teams API shows it: members and pending invitations.

``invite_teammates`` creates invitations (``accounts.invitations``), never memberships, so no
organization can add another's person. Pending invitees are listed with their invited role and
the invitation's ``expiry`` (Scale's ``Teammate.expiry``, which is None for members), and
``set_role`` changes a member's role or a pending invitation's. Team management is a live
operation: the API refuses it to test keys (``api.scale_v1.teams``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from steelyard.accounts import auth_epoch, invitations, service
from steelyard.accounts.models import Membership, User
from steelyard.errors import NotFound, ValidationError

#: Scale's teammate roles ↔ Steelyard's organization roles.
SCALE_TO_ROLE = {
    "labeler": "annotator",
    "member": "reviewer",
    "manager": "manager",
    "admin": "admin",
}
ROLE_TO_SCALE = {
    "annotator": "labeler",
    "reviewer": "member",
    "manager": "manager",
    "admin": "admin",
    "owner": "admin",
}


@dataclass(frozen=True)
class Teammate:
    email: str
    role: str
    first_name: str | None
    last_name: str | None
    #: When a pending invitation lapses; None for a member.
    expiry: datetime | None = None


def list_team(session: Session, org_id: str, *, now: datetime) -> list[Teammate]:
    rows = session.execute(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id)
    ).all()
    team = [
        Teammate(u.email, ROLE_TO_SCALE.get(role, role), u.first_name, u.last_name)
        for u, role in rows
    ]
    team += [
        Teammate(i.email, ROLE_TO_SCALE.get(i.role, i.role), None, None, i.expires_at)
        for i in invitations.pending_for_org(session, org_id, now=now)
    ]
    return sorted(team, key=lambda t: t.email)


def _scale_role(team_role: str) -> str:
    try:
        return SCALE_TO_ROLE[team_role]
    except KeyError:
        raise ValidationError(
            f"team_role must be one of {', '.join(SCALE_TO_ROLE)}.", field="team_role"
        ) from None


def _check_emails(emails: object) -> list[str]:
    if not isinstance(emails, list) or not emails:
        raise ValidationError("emails must be a non-empty list of email addresses.", field="emails")
    out = []
    for i, email in enumerate(emails):
        if not isinstance(email, str):
            raise ValidationError(f"'{email}' is not a valid email address.", field=f"emails.{i}")
        out.append(service.normalize_email(email, field=f"emails.{i}"))
    return out


def invite_teammates(
    session: Session, org_id: str, emails: object, team_role: str, *, now: datetime
) -> list[Teammate]:
    """Invite each email (members stay as they are); the invitees accept to join."""
    role = _scale_role(team_role)
    for email in _check_emails(emails):
        invitations.invite(session, org_id, email, role, now=now)
    return list_team(session, org_id, now=now)


def set_teammate_roles(
    session: Session, org_id: str, emails: object, team_role: str, *, now: datetime
) -> list[Teammate]:
    """Change the role of members or pending invitations of ``org_id`` (owners keep theirs)."""
    role = _scale_role(team_role)
    changed = False
    for i, email in enumerate(_check_emails(emails)):
        membership = session.scalar(
            select(Membership)
            .join(User, User.id == Membership.user_id)
            .where(Membership.org_id == org_id, User.email == email)
        )
        if membership is not None:
            if membership.role not in ("owner", role):
                membership.role = role
                changed = True
            continue
        pending = invitations.pending_for_email(session, org_id, email, now=now)
        if pending is None:
            raise NotFound(
                f"{email} is not a member of this team nor invited to it.", field=f"emails.{i}"
            )
        pending.role = role
    session.flush()
    if changed:
        auth_epoch.credentials_changed(session)
    return list_team(session, org_id, now=now)
