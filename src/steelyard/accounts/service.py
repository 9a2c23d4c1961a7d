"""Organizations, users and memberships, API keys, and whom a credential belongs to.

A user (one per email) is global; what a user may do is a membership in one organization.
No organization can make someone a member: it invites (``accounts.invitations``) and the person
accepts. Only the operator's CLI creates memberships directly, and it never changes an existing
account's password. Every change that invalidates credentials (a key revoked, a user
deactivated or removed, a role changed) calls ``auth_epoch.credentials_changed`` in its
transaction, so cached authentication everywhere drops at once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from steelyard.accounts import auth_epoch, security, sessions
from steelyard.accounts.models import ROLES, ApiKey, LoginSession, Membership, Organization, User
from steelyard.accounts.schemas import Actor
from steelyard.errors import Duplicate, NotFound, Unauthorized, ValidationError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(email: str, *, field: str = "email") -> str:
    email = email.strip().lower() if isinstance(email, str) else ""
    if not _EMAIL.match(email) or len(email) > 320:
        raise ValidationError(f"'{email}' is not a valid email address.", field=field)
    return email


def check_role(role: str, *, field: str = "role") -> str:
    if role not in ROLES:
        raise ValidationError(f"Role must be one of {', '.join(ROLES)}.", field=field)
    return role


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


# --- API keys ------------------------------------------------------------------------------


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


def list_api_keys(session: Session, org_id: str) -> list[ApiKey]:
    return list(
        session.scalars(
            select(ApiKey).where(ApiKey.org_id == org_id).order_by(ApiKey.created_at, ApiKey.id)
        )
    )


def revoke_api_key(session: Session, org_id: str, key_id: str, *, now: datetime) -> ApiKey:
    """Revoke one of ``org_id``'s keys (again: no change). Effective at once everywhere."""
    key = session.scalar(select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.id == key_id))
    if key is None:
        raise NotFound(f"This organization has no API key '{key_id}'.", field="key_id")
    if key.revoked_at is None:
        key.revoked_at = now
        session.flush()
        auth_epoch.credentials_changed(session)
    return key


def authenticate_api_key(session: Session, key: str) -> Actor:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == security.token_hash(key)))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("Invalid API key.")
    return Actor(org_id=row.org_id, is_test=row.is_test, kind="api_key", role="admin")


# --- users and memberships -------------------------------------------------------------------


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def create_user(
    session: Session,
    *,
    org_id: str,
    email: str,
    password_hash: str | None,
    role: str,
    existing: bool = False,
    first_name: str | None = None,
    last_name: str | None = None,
) -> User:
    """Make ``email`` a member of ``org_id`` (the operator's act, not an organization's).

    ``password_hash`` comes from ``passwords.new_password_hash``, computed before the
    transaction. An email that already has an account is refused unless ``existing``; then only
    a membership is added and the account (password included) is left as it is.
    """
    email = normalize_email(email)
    check_role(role)
    user = find_user(session, email)
    if user is None:
        user = User(
            email=email, password_hash=password_hash, first_name=first_name, last_name=last_name
        )
        session.add(user)
        session.flush()
    elif not existing:
        raise Duplicate(
            f"{email} already has an account. Its password is never changed here; to add it to "
            "this organization as it is, ask for an existing account explicitly "
            "(steelyard user create --existing), or invite it.",
            field="email",
        )
    add_membership(session, org_id=org_id, user=user, role=role)
    return user


def add_membership(session: Session, *, org_id: str, user: User, role: str) -> Membership:
    if session.scalar(
        select(Membership.id).where(Membership.org_id == org_id, Membership.user_id == user.id)
    ):
        raise Duplicate(f"{user.email} is already a member of this organization.", field="email")
    membership = Membership(org_id=org_id, user_id=user.id, role=check_role(role))
    session.add(membership)
    session.flush()
    return membership


def _user(session: Session, email: str) -> User:
    user = find_user(session, normalize_email(email))
    if user is None:
        raise NotFound(f"No user with the email {email.strip().lower()}.", field="email")
    return user


def set_user_active(session: Session, email: str, active: bool, *, now: datetime) -> User:
    """Deactivating signs the user out everywhere, at once; the account and its history stay."""
    user = _user(session, email)
    if user.is_active != active:
        user.is_active = active
        session.flush()
    if not active:
        sessions.revoke_user_sessions(session, user.id, now=now)
        auth_epoch.credentials_changed(session)
    return user


def remove_member(session: Session, org_id: str, email: str, *, now: datetime) -> User:
    """Take ``email`` out of ``org_id``; that organization's sessions of the user end at once."""
    user = _user(session, email)
    membership = session.scalar(
        select(Membership).where(Membership.org_id == org_id, Membership.user_id == user.id)
    )
    if membership is None:
        raise NotFound(f"{user.email} is not a member of this organization.", field="email")
    session.delete(membership)
    session.flush()
    sessions.revoke_user_sessions(session, user.id, now=now, org_id=org_id)
    auth_epoch.credentials_changed(session)
    return user


def memberships_of(session: Session, user_id: str) -> list[tuple[str, str, str]]:
    """(org_id, org name, role) for each organization the user belongs to, by name."""
    rows = session.execute(
        select(Organization.id, Organization.name, Membership.role)
        .join(Membership, Membership.org_id == Organization.id)
        .where(Membership.user_id == user_id)
        .order_by(Organization.name)
    ).all()
    return [(org_id, name, role) for org_id, name, role in rows]


def authenticate_token(session: Session, token: str, *, now: datetime) -> Actor:
    """The actor behind a session token: valid only for the organization chosen at sign-in,
    while the session is neither expired nor revoked, the user active and still a member."""
    row = session.execute(
        select(
            LoginSession.id,
            LoginSession.user_id,
            LoginSession.org_id,
            LoginSession.expires_at,
            LoginSession.revoked_at,
            User.is_active,
            Membership.role,
        )
        .join(User, User.id == LoginSession.user_id)
        .outerjoin(
            Membership,
            and_(
                Membership.org_id == LoginSession.org_id,
                Membership.user_id == LoginSession.user_id,
            ),
        )
        .where(LoginSession.token_hash == security.token_hash(token))
    ).first()
    if row is None or row.expires_at <= now or row.revoked_at is not None or not row.is_active:
        raise Unauthorized("Invalid, expired or revoked session token.")
    if row.role is None:
        raise Unauthorized("This user no longer belongs to the organization.")
    return Actor(
        org_id=row.org_id,
        is_test=False,
        kind="user",
        role=row.role,
        user_id=row.user_id,
        session_id=row.id,
        expires_at=row.expires_at,
    )
