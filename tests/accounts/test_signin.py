"""Sign-in as a service, on each database: throttling, rehash, the organization a session is
bound to, and accepting an invitation by its token."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from steelyard.accounts import invitations, security, signin
from steelyard.accounts import service as accounts
from steelyard.accounts.models import User
from steelyard.db.engine import Database
from steelyard.errors import NotFound, RateLimited, Unauthorized, ValidationError
from tests.accounts.helpers import PASSWORD, person
from tests.conftest import Org


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _sign_in(
    db: Database, email: str, password: str, now: datetime, org: str | None = None
) -> signin.SignedIn:
    return signin.sign_in(db, email=email, password=password, org=org, now=now)


def _retry_after(db: Database, email: str, now: datetime) -> int:
    with pytest.raises(RateLimited) as info:
        _sign_in(db, email, PASSWORD, now)
    return info.value.retry_after


@pytest.mark.parametrize("known", [True, False], ids=["account", "unknown-email"])
def test_failed_sign_ins_are_throttled_with_growing_delays(
    db: Database, org: Org, known: bool
) -> None:
    email = person(db, org.org_id) if known else f"nobody-{secrets.token_hex(4)}@example.com"
    now = _now()
    for _ in range(signin.FREE_FAILURES):
        with pytest.raises(Unauthorized):
            _sign_in(db, email, "wrong password here", now)
    # now even the right password waits (it is not checked), and says for how long
    assert _retry_after(db, email, now) == 60
    assert _retry_after(db, email, now + timedelta(seconds=45)) == 15
    later = now + timedelta(seconds=61)
    with pytest.raises(Unauthorized):
        _sign_in(db, email, "wrong again, sadly", later)
    assert _retry_after(db, email, later) == 120  # doubled
    latest = later + timedelta(seconds=121)
    if known:
        assert _sign_in(db, email, PASSWORD, latest).org_id == org.org_id
        for _ in range(signin.FREE_FAILURES - 1):  # a success starts the count over
            with pytest.raises(Unauthorized):
                _sign_in(db, email, "wrong password here", latest)
        assert _sign_in(db, email, PASSWORD, latest).token
    # failures are forgotten a day after the last one
    with pytest.raises(Unauthorized):
        _sign_in(db, email, "wrong password here", latest + signin.FORGET_AFTER)


def test_delays_are_capped_and_never_lock_for_good() -> None:
    delays = [signin.throttle_delay(n) for n in range(40)]
    assert delays[: signin.FREE_FAILURES] == [timedelta(0)] * signin.FREE_FAILURES
    assert delays[signin.FREE_FAILURES] == signin.FIRST_DELAY
    assert max(delays) == signin.MAX_DELAY == delays[-1]
    assert delays == sorted(delays)


def test_inactive_accounts_and_accounts_without_password_cannot_sign_in(
    db: Database, org: Org
) -> None:
    email = person(db, org.org_id)
    with db.unit_of_work() as session:
        accounts.set_user_active(session, email, False, now=_now())
        invited = accounts.create_user(
            session, org_id=org.org_id, email=f"x-{email}", password_hash=None, role="annotator"
        ).email
    for who in (email, invited):
        with pytest.raises(Unauthorized) as info:
            _sign_in(db, who, PASSWORD, _now())
        assert info.value.message == signin.WRONG  # the same answer as a wrong password


def _legacy_scrypt(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_a_legacy_hash_is_rehashed_to_argon2id_on_sign_in(db: Database, org: Org) -> None:
    legacy = _legacy_scrypt(PASSWORD)
    email = person(db, org.org_id)
    with db.unit_of_work() as session:
        user = accounts.find_user(session, email)
        assert user is not None
        user.password_hash = legacy
    _sign_in(db, email, PASSWORD, _now())
    with db.unit_of_work(write=False) as session:
        stored = session.scalar(select(User.password_hash).where(User.email == email))
    assert stored is not None and stored.startswith("$argon2id$")
    assert security.verify_password(PASSWORD, stored)
    assert _sign_in(db, email, PASSWORD, _now()).token


def test_a_session_is_bound_to_the_organization_chosen(
    db: Database, org: Org, other_org: Org
) -> None:
    email = person(db, org.org_id, other_org.org_id)
    with pytest.raises(ValidationError) as info:
        _sign_in(db, email, PASSWORD, _now())
    assert info.value.field == "org"
    assert org.name in info.value.message and other_org.name in info.value.message
    by_name = _sign_in(db, email, PASSWORD, _now(), org=other_org.name)
    by_id = _sign_in(db, email, PASSWORD, _now(), org=org.org_id)
    with db.unit_of_work(write=False) as session:
        assert accounts.authenticate_token(session, by_name.token, now=_now()).org_id == (
            other_org.org_id
        )
        assert accounts.authenticate_token(session, by_id.token, now=_now()).org_id == org.org_id
    # someone else's organization is not offered, nor named back
    loner = person(db, org.org_id)
    with pytest.raises(ValidationError) as info:
        _sign_in(db, loner, PASSWORD, _now(), org=other_org.name)
    assert info.value.message.endswith(f"Your organizations: {org.name}.")


def _invite(db: Database, org: Org, email: str, role: str = "reviewer") -> str:
    with db.unit_of_work() as session:
        token = invitations.invite(session, org.org_id, email, role, now=_now())
    assert token is not None
    return token


def _accept(db: Database, token: str, password: str) -> signin.SignedIn:
    return signin.accept_invitation(db, token=token, password=password, now=_now(), min_length=15)


def test_a_new_person_accepts_by_token_and_sets_a_password(db: Database, org: Org) -> None:
    email = f"new-{secrets.token_hex(5)}@example.com"
    token = _invite(db, org, email)
    with pytest.raises(ValidationError) as info:
        _accept(db, token, "password")
    assert info.value.field == "password"
    signed = _accept(db, token, PASSWORD)
    assert (signed.org_id, signed.role) == (org.org_id, "reviewer")
    assert _sign_in(db, email, PASSWORD, _now()).org_id == org.org_id
    with pytest.raises(NotFound):  # a token works once
        _accept(db, token, PASSWORD)


def test_an_existing_account_accepts_with_its_own_password_which_stays(
    db: Database, org: Org, other_org: Org
) -> None:
    email = person(db, other_org.org_id)
    token = _invite(db, org, email)
    with pytest.raises(Unauthorized):  # a token alone does not take over an account
        _accept(db, token, "a brand new password!")
    signed = _accept(db, token, PASSWORD)
    assert signed.org_id == org.org_id
    assert _sign_in(db, email, PASSWORD, _now(), org=other_org.name).org_id == other_org.org_id
    with pytest.raises(Unauthorized):
        _sign_in(db, email, "a brand new password!", _now(), org=org.name)


def test_an_invitation_makes_no_membership_until_accepted(db: Database, org: Org) -> None:
    email = person(db)  # an account with no organization
    _invite(db, org, email)
    with pytest.raises(Unauthorized) as info:
        _sign_in(db, email, PASSWORD, _now())
    assert "invitation" in info.value.message


def test_password_hashing_is_refused_inside_a_write_transaction(db: Database) -> None:
    """Defect 2: sign-in hashed under SQLite's write lock and stalled every writer."""
    stored = security.hash_password(PASSWORD)
    with db.unit_of_work() as session:
        assert session is not None
        with pytest.raises(RuntimeError, match="write transaction"):
            security.hash_password(PASSWORD)
        with pytest.raises(RuntimeError, match="write transaction"):
            security.verify_password(PASSWORD, stored)
    with db.unit_of_work(write=False):
        assert security.verify_password(PASSWORD, stored)  # a read transaction is fine
