"""Sign-in: password check outside any transaction, per-account throttling, org-bound sessions.

``sign_in`` (and ``accept_invitation`` for a token) runs in a worker thread, never on the event
loop, in three steps:

1. a read transaction refuses a throttled email (429) without taking the write lock; then a
   short write transaction checks again and charges one failure in advance (charging before
   the check means parallel guesses cannot overrun the limit), and reads the account;
2. the password is verified with no transaction open (argon2 is slow on purpose; under
   SQLite's write lock it stalled every writer). An unknown email, an inactive account or one
   without a password verifies against a dummy hash, so it costs what a wrong password costs;
3. on success a second short transaction clears the failures, stores a rehash when the hash
   is old, and opens a session for the one organization the person chose.

Throttling (NIST SP 800-63B): ``FREE_FAILURES`` consecutive failures are free (the setting
``STEELYARD_LOGIN_FAILURES_BEFORE_THROTTLE``); then each attempt
waits ``FIRST_DELAY`` doubled per further failure, at most ``MAX_DELAY``, answered 429 with
Retry-After. Failures are forgotten after ``FORGET_AFTER`` without one, and a success clears
them. Accounts are never locked for good (that would let anyone lock a victim out), and unknown
emails are throttled like real ones so the 429 does not reveal which accounts exist. The state
is in the database, so it holds across serving processes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.orm import Session

from steelyard.accounts import auth_epoch, invitations, passwords, security, service, sessions
from steelyard.accounts.models import SignInFailures, User
from steelyard.db.base import UTCDateTime
from steelyard.db.engine import Database
from steelyard.errors import RateLimited, SteelyardError, Unauthorized, ValidationError

FREE_FAILURES = 10
FIRST_DELAY = timedelta(seconds=60)
MAX_DELAY = timedelta(hours=1)
FORGET_AFTER = timedelta(hours=24)
WRONG = "Wrong email or password."


def throttle_delay(failures: int, free: int = FREE_FAILURES) -> timedelta:
    """How long after the last failure the next attempt must wait."""
    if failures < free:
        return timedelta(0)
    steps = min(failures - free, 16)  # 2**16 minutes is far past the cap
    delay: timedelta = FIRST_DELAY * (2**steps)
    return min(delay, MAX_DELAY)


# One statement both databases understand: the count restarts once the last failure is old.
_CHARGE = text(
    "INSERT INTO sign_in_failures (email_hash, failures, last_failed_at) VALUES (:h, 1, :now) "
    "ON CONFLICT (email_hash) DO UPDATE SET "
    "failures = CASE WHEN sign_in_failures.last_failed_at < :forget THEN 1 "
    "ELSE sign_in_failures.failures + 1 END, "
    "last_failed_at = excluded.last_failed_at"
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("forget", type_=UTCDateTime()))


def _email_key(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()


@dataclass(frozen=True)
class Candidate:
    """What step 1 read: the account behind an email (if any) and its hash as it was."""

    email: str
    user_id: str | None
    password_hash: str | None


def check_throttle(
    session: Session,
    email: str,
    *,
    now: datetime,
    free_failures: int = FREE_FAILURES,
    lock: bool = False,
) -> None:
    """Refuse (429) while ``email`` must wait. Also run in a read transaction before step 1,
    so that a flood of throttled attempts never takes the write lock."""
    stmt = select(SignInFailures).where(SignInFailures.email_hash == _email_key(email))
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is not None and row.last_failed_at >= now - FORGET_AFTER:
        wait = row.last_failed_at + throttle_delay(row.failures, free_failures) - now
        if wait > timedelta(0):
            raise RateLimited(
                "Too many failed sign-ins for this account; try again later.",
                retry_after=wait.total_seconds(),
                field="email",
            )


def begin(
    session: Session, email: str, *, now: datetime, free_failures: int = FREE_FAILURES
) -> Candidate:
    """Step 1 (a write transaction): refuse while throttled, else charge a failure up front."""
    key = _email_key(email)
    check_throttle(session, email, now=now, free_failures=free_failures, lock=True)
    session.execute(
        delete(SignInFailures).where(SignInFailures.last_failed_at < now - FORGET_AFTER)
    )
    session.connection().execute(_CHARGE, {"h": key, "now": now, "forget": now - FORGET_AFTER})
    user = service.find_user(session, email)
    usable = user is not None and user.is_active and user.password_hash is not None
    return Candidate(
        email=email,
        user_id=user.id if user is not None else None,
        password_hash=user.password_hash if user is not None and usable else None,
    )


def check(password: str, candidate: Candidate) -> tuple[bool, str | None]:
    """Step 2 (no transaction; slow): (password right, the new hash when a rehash is due)."""
    if not security.verify_password(password, candidate.password_hash):
        return False, None
    assert candidate.password_hash is not None
    if security.needs_rehash(candidate.password_hash):
        return True, security.hash_password(password)
    return True, None


@dataclass(frozen=True)
class SignedIn:
    token: str
    org_id: str
    org_name: str
    role: str


def finish(
    session: Session,
    candidate: Candidate,
    *,
    org: str | None,
    new_hash: str | None,
    now: datetime,
    user_agent: str | None,
    invitation_id: str | None = None,
) -> SignedIn | SteelyardError:
    """Step 3 (a write transaction, after a right password). Returns the refusal instead of
    raising it, so that clearing the failures still commits."""
    session.execute(
        delete(SignInFailures).where(SignInFailures.email_hash == _email_key(candidate.email))
    )
    user = session.get(User, candidate.user_id) if candidate.user_id else None
    if user is None or not user.is_active:  # deactivated since step 1
        return Unauthorized(WRONG)
    if new_hash is not None and user.password_hash == candidate.password_hash:
        user.password_hash = new_hash
    if invitation_id is not None:
        joined = invitations.redeem_by_id(session, invitation_id, user, now=now)
        org = joined.org_id
    memberships = service.memberships_of(session, user.id)
    chosen = _choose(memberships, org)
    if isinstance(chosen, SteelyardError):
        return chosen
    org_id, org_name, role = chosen
    token = sessions.start_session(
        session, user_id=user.id, org_id=org_id, now=now, user_agent=user_agent
    )
    return SignedIn(token=token, org_id=org_id, org_name=org_name, role=role)


def _choose(
    memberships: list[tuple[str, str, str]], org: str | None
) -> tuple[str, str, str] | SteelyardError:
    """The membership a session is bound to: the one named (by name or id), or the only one."""
    if not memberships:
        return Unauthorized(
            "This account belongs to no organization yet: accept an invitation first."
        )
    if org is not None:
        for membership in memberships:
            if org in (membership[0], membership[1]):
                return membership
        names = ", ".join(name for _, name, _ in memberships)
        return ValidationError(
            f"You are not a member of '{org}'. Your organizations: {names}.", field="org"
        )
    if len(memberships) == 1:
        return memberships[0]
    names = ", ".join(name for _, name, _ in memberships)
    return ValidationError(
        f"You belong to several organizations; say which with 'org' (name or id): {names}.",
        field="org",
    )


def sign_in(
    db: Database,
    *,
    email: str,
    password: str,
    org: str | None,
    now: datetime,
    user_agent: str | None = None,
    free_failures: int = FREE_FAILURES,
) -> SignedIn:
    """The whole sign-in; call it from a worker thread (it blocks on argon2)."""
    email = email.strip().lower()
    with db.unit_of_work(write=False) as session:
        check_throttle(session, email, now=now, free_failures=free_failures)
    with db.unit_of_work() as session:
        candidate = begin(session, email, now=now, free_failures=free_failures)
    ok, new_hash = check(password, candidate)
    if not ok:
        raise Unauthorized(WRONG)
    with db.unit_of_work() as session:
        outcome = finish(
            session, candidate, org=org, new_hash=new_hash, now=now, user_agent=user_agent
        )
    if isinstance(outcome, SteelyardError):
        raise outcome
    return outcome


def accept_invitation(
    db: Database,
    *,
    token: str,
    password: str,
    now: datetime,
    min_length: int,
    user_agent: str | None = None,
    free_failures: int = FREE_FAILURES,
) -> SignedIn:
    """Accept an invitation by its token and sign in to that organization.

    Without an account (or with one that never had a password) ``password`` becomes the
    account's password, checked against the policy. With an account, ``password`` must be its
    current password (verified and throttled as a sign-in), and it is not changed.
    """
    with db.unit_of_work(write=False) as session:
        invitation = invitations.find_by_token(session, token, now=now)
        user = service.find_user(session, invitation.email)
        has_password = user is not None and user.password_hash is not None
    new_hash: str | None = None
    if has_password:
        with db.unit_of_work() as session:
            candidate = begin(session, invitation.email, now=now, free_failures=free_failures)
        ok, new_hash = check(password, candidate)
        if not ok:
            raise Unauthorized(
                f"{invitation.email} already has an account: give its current password."
            )
    else:
        account_hash = passwords.new_password_hash(
            password, email=invitation.email, min_length=min_length
        )
    with db.unit_of_work() as session:
        if not has_password:
            candidate = _account_for(session, invitation.email, account_hash)
        outcome = finish(
            session,
            candidate,
            org=None,
            new_hash=new_hash,
            now=now,
            user_agent=user_agent,
            invitation_id=invitation.id,
        )
    if isinstance(outcome, SteelyardError):
        raise outcome
    return outcome


def _account_for(session: Session, email: str, password_hash: str) -> Candidate:
    """The account an invitation's token sets up: new, or one that never had a password."""
    user = service.find_user(session, email)
    if user is None:
        user = User(email=email, password_hash=password_hash)
        session.add(user)
        session.flush()
    elif user.password_hash is None:
        user.password_hash = password_hash
    else:  # a password was set since the read above: never replace it
        raise Unauthorized(f"{email} already has an account: give its current password.")
    return Candidate(email=email, user_id=user.id, password_hash=user.password_hash)


def change_password(
    db: Database,
    *,
    user_id: str,
    session_id: str | None,
    current: str,
    new: str,
    now: datetime,
    min_length: int,
    free_failures: int = FREE_FAILURES,
) -> int:
    """Replace a signed-in person's password after checking the current one (throttled like a
    sign-in). Their other sessions end; returns how many. Slow: call from a worker thread."""
    with db.unit_of_work(write=False) as session:
        user = session.get(User, user_id)
        if user is None:
            raise Unauthorized("Invalid session.")
        email = user.email
    with db.unit_of_work() as session:
        candidate = begin(session, email, now=now, free_failures=free_failures)
    ok, _ = check(current, candidate)
    if not ok:
        raise ValidationError("The current password is wrong.", field="current_password")
    new_hash = passwords.new_password_hash(new, email=email, min_length=min_length)
    with db.unit_of_work() as session:
        session.execute(
            delete(SignInFailures).where(SignInFailures.email_hash == _email_key(email))
        )
        user = session.get(User, user_id)
        if user is None or user.password_hash != candidate.password_hash:
            raise ValidationError(
                "The password changed meanwhile; sign in again.", field="current_password"
            )
        user.password_hash = new_hash
        ended = sessions.revoke_user_sessions(session, user_id, now=now, keep_session_id=session_id)
        auth_epoch.credentials_changed(session)
    return ended
