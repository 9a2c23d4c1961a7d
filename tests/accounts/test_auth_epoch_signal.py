"""The signal behind revocation (``accounts.auth_epoch``): the database's triggers fire on every
change to a credential row, whoever makes it, only once it commits, and not for new
credentials; the authentication cache keeps nothing looked up across a change.

Each watcher here has an engine of its own and does not hear this process's direct bump, so
it hears only what another serving process would hear: the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from steelyard.accounts import auth_epoch, sessions
from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.accounts.security import token_hash
from steelyard.api.auth import Authenticator
from steelyard.clock import SYSTEM_CLOCK
from steelyard.db.engine import Database
from tests.accounts.plain_sql import execute, plain_connection, plain_sql, user_id_of
from tests.api.helpers import make_worker
from tests.conftest import Org


def _now() -> datetime:
    return datetime.now(UTC)


def _deaf_to_this_process(watcher: auth_epoch.EpochWatcher) -> auth_epoch.EpochWatcher:
    """A watcher that hears only what other processes hear: not this process's direct bump."""
    watcher.name = "another process"
    return watcher


@pytest.fixture
def watcher(db: Database) -> Iterator[auth_epoch.EpochWatcher]:
    # Its own engine, as another process would have.
    other = Database(db.url)
    w = _deaf_to_this_process(auth_epoch.watch(other.engine))
    w.start()
    yield w
    w.close()
    other.dispose()


def _settles(watcher: auth_epoch.EpochWatcher, before: object) -> bool:
    """Whether the watcher's token moved from ``before`` (PostgreSQL delivers asynchronously,
    so wait a moment for the notification to be handled)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        token = watcher.token()
        if token != before and token == watcher.token():
            return True
        time.sleep(0.01)
    return False


def _stable(watcher: auth_epoch.EpochWatcher) -> object:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        token = watcher.token()
        if token == watcher.token():
            return token
        time.sleep(0.01)
    pytest.fail("the watcher never settled: is it listening?")


def _quiet(watcher: auth_epoch.EpochWatcher, before: object) -> bool:
    """Whether the token stays at ``before`` for a while (long enough for a notification)."""
    time.sleep(0.3)
    return watcher.token() == before


#: Every way a credential's row can change behind the product's back: (table, statement).
_CHANGES = [
    ("api_keys", "UPDATE api_keys SET name = %s WHERE org_id = %s AND is_test = %s"),
    ("api_keys", "DELETE FROM api_keys WHERE org_id = %s AND is_test = %s"),
    ("users", "UPDATE users SET first_name = %s WHERE id = %s"),
    ("users", "DELETE FROM users WHERE id = %s"),
    ("memberships", "UPDATE memberships SET role = %s WHERE user_id = %s"),
    ("memberships", "DELETE FROM memberships WHERE user_id = %s"),
    ("login_sessions", "UPDATE login_sessions SET user_agent = %s WHERE user_id = %s"),
    ("login_sessions", "DELETE FROM login_sessions WHERE user_id = %s"),
]


def _params(statement: str, org: Org, user_id: str) -> tuple[Any, ...]:
    if "api_keys" in statement:
        return (("renamed",) if "UPDATE" in statement else ()) + (org.org_id, True)
    if statement.startswith("UPDATE memberships"):
        return ("reviewer", user_id)
    return (("x",) if "UPDATE" in statement else ()) + (user_id,)


@pytest.mark.parametrize(
    ("table", "statement"), _CHANGES, ids=[f"{s.split()[0].lower()}-{t}" for t, s in _CHANGES]
)
def test_every_change_to_a_credential_row_is_signalled(
    db: Database, org: Org, watcher: auth_epoch.EpochWatcher, table: str, statement: str
) -> None:
    email = make_worker(db, org.org_id)
    user_id = user_id_of(db, email)
    with db.unit_of_work() as session:
        sessions.start_session(session, user_id=user_id, org_id=org.org_id, now=_now())
    before = _stable(watcher)
    plain_sql(db, statement, *_params(statement, org, user_id))
    assert _settles(watcher, before), f"{statement} was not signalled"


def test_a_new_sign_in_or_key_is_not_signalled(
    db: Database, org: Org, watcher: auth_epoch.EpochWatcher
) -> None:
    """Creating credentials invalidates nothing cached, so every process keeps its cache."""
    email = make_worker(db, org.org_id)
    before = _stable(watcher)
    with db.unit_of_work() as session:
        sessions.start_session(
            session, user_id=user_id_of(db, email), org_id=org.org_id, now=_now()
        )
        accounts.create_api_key(session, org.org_id, is_test=False)
    assert _quiet(watcher, before)


def test_the_signal_goes_out_on_commit_only(
    db: Database, org: Org, watcher: auth_epoch.EpochWatcher
) -> None:
    revoke = "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE key_hash = %s"
    before = _stable(watcher)
    with plain_connection(db) as conn:
        execute(db, conn, "BEGIN")
        execute(db, conn, revoke, token_hash(org.live_key))
        assert _quiet(watcher, before), "signalled before the change was committed"
        execute(db, conn, "ROLLBACK")
        assert _quiet(watcher, before), "a rolled-back change was signalled"
        execute(db, conn, "BEGIN")
        execute(db, conn, revoke, token_hash(org.live_key))
        execute(db, conn, "COMMIT")
    assert _settles(watcher, before)


def test_a_lookup_that_overlaps_a_change_is_not_kept(db: Database, org: Org) -> None:
    """A key looked up just before its revocation committed must not stay cached."""
    lookups: list[str] = []

    class Overlapping(Authenticator):
        def _lookup(self, kind: str, secret: str) -> Actor:
            actor = super()._lookup(kind, secret)
            lookups.append(secret)
            if len(lookups) == 1:  # a change commits meanwhile, elsewhere
                plain_sql(db, "UPDATE api_keys SET name = %s WHERE org_id = %s", "x", org.org_id)
            return actor

    authn = Overlapping(db, SYSTEM_CLOCK)
    authn.start()
    try:

        async def calls(n: int) -> None:
            for _ in range(n):
                await authn.actor("api_key", org.live_key)

        asyncio.run(calls(2))
        # The first lookup overlapped a change, so it was not kept: the second looked up again.
        assert len(lookups) == 2
        _stable(authn.watcher)  # PostgreSQL: the change's notification has been handled
        asyncio.run(calls(3))
        # Once nothing changes, one lookup serves the following calls.
        assert len(lookups) <= 3
    finally:
        authn.close()
