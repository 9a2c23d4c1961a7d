"""An organization's team as Scale's teams API shows it: members and pending invitations.

``invite_teammates`` creates invitations (``accounts.invitations``), never memberships, so no
organization can add another's person. Pending invitees are listed with their invited role and
the invitation's ``expiry`` (Scale's ``Teammate.expiry``, which is None for members), and
``set_role`` changes a member's role or a pending invitation's. Team management is a live
operation: the API refuses it to test keys (``api.scale_v1.teams``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from steelyard.accounts import auth_epoch, invitations, service
from steelyard.accounts.models import Membership, User
from steelyard.errors import NotFound, ValidationError

#: Emails per invite or set_role call. Scale documents no limit; a 10 MiB body could name some
#: 300,000 addresses, and the whole call is one write transaction. A thousand take a few tens
#: of milliseconds.
MAX_EMAILS = 1000

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
        select(User.email, Membership.role, User.first_name, User.last_name)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id)
    )
    team = [
        Teammate(email, ROLE_TO_SCALE.get(role, role), first, last)
        for email, role, first, last in rows
    ]
    team += [
        Teammate(email, ROLE_TO_SCALE.get(role, role), None, None, expires_at)
        for email, role, expires_at in invitations.pending_for_org(session, org_id, now=now)
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
    """Normalized, each once, at most ``MAX_EMAILS``: no database needed, so the edge can do it
    before its transaction."""
    if not isinstance(emails, list) or not emails:
        raise ValidationError("emails must be a non-empty list of email addresses.", field="emails")
    if len(emails) > MAX_EMAILS:
        raise ValidationError(
            f"emails may list at most {MAX_EMAILS} addresses per call, got {len(emails)}; "
            "send them in several calls.",
            field="emails",
        )
    out = []
    for i, email in enumerate(emails):
        if not isinstance(email, str):
            raise ValidationError(f"'{email}' is not a valid email address.", field=f"emails.{i}")
        out.append(service.normalize_email(email, field=f"emails.{i}"))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class TeamChange:
    """An invite or set_role call's body, checked (``read_team_change``); for an invite, the
    invitations' new tokens are made here too, before the transaction."""

    emails: list[str]
    role: str
    offers: list[invitations.Offer] = field(default_factory=list)


def read_team_change(emails: object, team_role: str, *, invite: bool = False) -> TeamChange:
    checked, role = _check_emails(emails), _scale_role(team_role)
    offers = [invitations.offer(email)[0] for email in checked] if invite else []
    return TeamChange(checked, role, offers)


def invite_teammates(
    session: Session, org_id: str, change: TeamChange, *, now: datetime
) -> list[Teammate]:
    """Invite each email (members stay as they are); the invitees accept to join. A few
    statements whatever the number of emails."""
    if not change.offers:
        raise ValueError("read_team_change(..., invite=True) makes the offers to invite with")
    invitations.invite_many(session, org_id, change.offers, change.role, now=now)
    return list_team(session, org_id, now=now)


def set_teammate_roles(
    session: Session, org_id: str, change: TeamChange, *, now: datetime
) -> list[Teammate]:
    """Change the role of members or pending invitations of ``org_id`` (owners keep theirs).
    Members and invitations are read in one statement each, whatever the number of emails."""
    role, emails = change.role, change.emails
    memberships = {
        email: membership
        for membership, email in session.execute(
            select(Membership, User.email)
            .join(User, User.id == Membership.user_id)
            .where(Membership.org_id == org_id, User.email.in_(emails))
        )
    }
    pending = {i.email: i for i in invitations.pending_among(session, org_id, emails, now=now)}
    changed = False
    for i, email in enumerate(emails):
        membership = memberships.get(email)
        if membership is not None:
            if membership.role not in ("owner", role):
                membership.role = role
                changed = True
        elif email in pending:
            pending[email].role = role
        else:
            raise NotFound(
                f"{email} is not a member of this team nor invited to it.", field=f"emails.{i}"
            )
    session.flush()
    if changed:
        auth_epoch.credentials_changed(session)
    return list_team(session, org_id, now=now)
