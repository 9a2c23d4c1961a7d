"""Organizations, users, API keys, logins and the team (teammates) of an organization."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from steelyard.accounts import security
from steelyard.accounts.models import (
    ROLES,
    ApiKey,
    LoginSession,
    Membership,
    Organization,
    User,
)
from steelyard.accounts.schemas import Actor
from steelyard.errors import Duplicate, NotFound, Unauthorized, ValidationError

SESSION_TTL = timedelta(days=7)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

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
class NewOrganization:
    org: Organization
    live_api_key: str
    test_api_key: str


def create_organization(session: Session, name: str) -> NewOrganization:
    name = name.strip()
    if not name:
        raise ValidationError("Organization name must not be empty.", field="name")
    if session.scalar(select(Organization.id).where(Organization.name == name)):
        raise Duplicate(f"An organization named '{name}' already exists.", field="name")
    org = Organization(name=name, callback_auth_key=secrets.token_hex(24))
    session.add(org)
    session.flush()
    live = create_api_key(session, org.id, is_test=False, name="default live key")
    test = create_api_key(session, org.id, is_test=True, name="default test key")
    return NewOrganization(org=org, live_api_key=live, test_api_key=test)


def get_organization_by_name(session: Session, name: str) -> Organization:
    org = session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        raise NotFound(f"No organization named '{name}'.", field="org")
    return org


def get_organization(session: Session, org_id: str) -> Organization:
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound("Organization not found.", field="org")
    return org


def create_api_key(session: Session, org_id: str, *, is_test: bool, name: str | None = None) -> str:
    """Create a key and return it in plain text; only its hash is stored, so show it once."""
    key = security.new_api_key(is_test)
    session.add(
        ApiKey(
            org_id=org_id,
            key_hash=security.token_hash(key),
            is_test=is_test,
            last4=key[-4:],
            name=name,
        )
    )
    session.flush()
    return key


def authenticate_api_key(session: Session, key: str) -> Actor:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == security.token_hash(key)))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("Invalid API key.")
    return Actor(org_id=row.org_id, is_test=row.is_test, kind="api_key", role="admin")


def create_user(
    session: Session,
    *,
    org_id: str,
    email: str,
    password: str | None,
    role: str,
    first_name: str | None = None,
    last_name: str | None = None,
) -> User:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise ValidationError(f"'{email}' is not a valid email address.", field="email")
    if role not in ROLES:
        raise ValidationError(f"Role must be one of {', '.join(ROLES)}.", field="role")
    if password is not None and len(password) < 8:
        raise ValidationError("Password must have at least 8 characters.", field="password")
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(
            email=email,
            password_hash=security.hash_password(password) if password else None,
            first_name=first_name,
            last_name=last_name,
        )
        session.add(user)
        session.flush()
    elif password:
        user.password_hash = security.hash_password(password)
    membership = session.scalar(
        select(Membership).where(Membership.org_id == org_id, Membership.user_id == user.id)
    )
    if membership is not None:
        raise Duplicate(f"{email} is already a member of this organization.", field="email")
    session.add(Membership(org_id=org_id, user_id=user.id, role=role))
    session.flush()
    return user


def login(session: Session, *, email: str, password: str, now: datetime) -> str:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if (
        user is None
        or not user.is_active
        or not security.verify_password(password, user.password_hash)
    ):
        raise Unauthorized("Wrong email or password.")
    membership = session.scalar(
        select(Membership).where(Membership.user_id == user.id).order_by(Membership.created_at)
    )
    if membership is None:
        raise Unauthorized("This user belongs to no organization.")
    token = security.new_token()
    session.add(
        LoginSession(
            token_hash=security.token_hash(token),
            user_id=user.id,
            org_id=membership.org_id,
            created_at=now,
            expires_at=now + SESSION_TTL,
        )
    )
    session.flush()
    return token


def authenticate_token(session: Session, token: str, *, now: datetime) -> Actor:
    row = session.get(LoginSession, security.token_hash(token))
    if row is None or row.expires_at <= now:
        raise Unauthorized("Invalid or expired session token.")
    role = session.scalar(
        select(Membership.role).where(
            Membership.org_id == row.org_id, Membership.user_id == row.user_id
        )
    )
    if role is None:
        raise Unauthorized("This user no longer belongs to the organization.")
    return Actor(org_id=row.org_id, is_test=False, kind="user", role=role, user_id=row.user_id)


# --- team (Scale "teammates") -------------------------------------------------------------


@dataclass(frozen=True)
class Teammate:
    email: str
    role: str
    first_name: str | None
    last_name: str | None


def list_team(session: Session, org_id: str) -> list[Teammate]:
    rows = session.execute(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id)
        .order_by(User.email)
    ).all()
    return [
        Teammate(u.email, ROLE_TO_SCALE.get(role, role), u.first_name, u.last_name)
        for u, role in rows
    ]


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
        if not isinstance(email, str) or not _EMAIL.match(email.strip()):
            raise ValidationError(f"'{email}' is not a valid email address.", field=f"emails.{i}")
        out.append(email.strip().lower())
    return out


def invite_teammates(
    session: Session, org_id: str, emails: object, team_role: str
) -> list[Teammate]:
    role = _scale_role(team_role)
    for email in _check_emails(emails):
        user = session.scalar(select(User).where(User.email == email))
        if user is not None and session.scalar(
            select(Membership).where(Membership.org_id == org_id, Membership.user_id == user.id)
        ):
            continue  # inviting a member again changes nothing, as in Scale
        create_user(session, org_id=org_id, email=email, password=None, role=role)
    return list_team(session, org_id)


def set_teammate_roles(
    session: Session, org_id: str, emails: object, team_role: str
) -> list[Teammate]:
    role = _scale_role(team_role)
    for i, email in enumerate(_check_emails(emails)):
        membership = session.scalar(
            select(Membership)
            .join(User, User.id == Membership.user_id)
            .where(Membership.org_id == org_id, User.email == email)
        )
        if membership is None:
            raise NotFound(f"{email} is not a member of this team.", field=f"emails.{i}")
        if membership.role != "owner":
            membership.role = role
    session.flush()
    return list_team(session, org_id)
