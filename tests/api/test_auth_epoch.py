"""Revocation takes effect at once on every serving process (``accounts.auth_epoch``).

Each test warms the authentication cache of two serving processes on one database, the test's
live server and a second ``uvicorn`` process, then changes a credential and expects the very
next request to either process to be refused. The changes are made as an operator would: by
plain SQL on a connection of their own, with no Steelyard code (the database's triggers are
what tell the processes), and through the product's services.

On PostgreSQL "the next request" is the next one after the notification has reached the
process: the server hands it to each listening connection after the commit, on its own schedule
(normally well under a millisecond, longer on a saturated host), so a request racing it may
still be answered from the cache. The tests allow ``DELIVERY`` for that, far below the cache's
10 s. SQLite has no such window: the next request reads the committed counter.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.engine import make_url

from steelyard.accounts import auth_epoch, sessions
from steelyard.accounts import service as accounts
from steelyard.accounts.models import User
from steelyard.accounts.schemas import Actor
from steelyard.accounts.security import token_hash
from steelyard.api.app import create_app
from steelyard.api.auth import Authenticator
from steelyard.clock import SYSTEM_CLOCK, FrozenClock
from steelyard.config import Settings
from steelyard.db.engine import Database
from tests.api.helpers import auth, login, make_worker
from tests.conftest import LiveServer, Org, free_port


@pytest.fixture(scope="module")
def other_process(settings: Settings, server: LiveServer) -> Iterator[str]:
    """A second serving process on the test server's database (as ``serve --workers 2`` or a
    second host behind a load balancer would be)."""
    port = free_port()
    env = {
        **os.environ,
        "STEELYARD_DATABASE_URL": settings.resolved_database_url,
        "STEELYARD_DATA_DIR": str(settings.data_dir),
        "STEELYARD_SERVE_NO_JOBS": "1",
    }
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "--factory"),
            "steelyard.api.app:app_from_environment",
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the second serving process did not start")
        time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _both(server: LiveServer, other: str) -> list[str]:
    return [server.url, other]


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def plain_connection(db: Database) -> Iterator[Any]:
    """A DB-API connection of the driver's own, as ``sqlite3`` or ``psql`` would open: no
    Steelyard code, no SQLAlchemy. Statements use ``%s`` placeholders on both databases."""
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite":
        conn: Any = sqlite3.connect(str(url.database), isolation_level=None, timeout=30)
    else:
        conn = psycopg.connect(
            url.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        )
    try:
        yield conn
    finally:
        conn.close()


def plain_sql(db: Database, statement: str, *params: Any) -> None:
    """Run one statement in its own committed transaction on a plain connection."""
    with plain_connection(db) as conn:
        _execute(db, conn, statement, *params)


def _execute(db: Database, conn: Any, statement: str, *params: Any) -> None:
    if db.is_sqlite:
        statement = statement.replace("%s", "?")
    conn.execute(statement, params)


def _user_id(db: Database, email: str) -> str:
    with db.unit_of_work(write=False) as session:
        return str(session.scalar(select(User.id).where(User.email == email)))


def _signed_in(server: LiveServer, db: Database, org: Org) -> tuple[str, dict[str, str]]:
    with httpx.Client(base_url=server.url) as http:
        email = make_worker(db, org.org_id)
        return email, login(http, email)


#: Seconds a PostgreSQL notification may take to reach a serving process (see the module).
DELIVERY = 2.0


def _next(db: Database, method: str, url: str, **options: Any) -> httpx.Response:
    """The answer to the next request; on PostgreSQL, the first refusal within ``DELIVERY``."""
    response = httpx.request(method, url, **options)
    deadline = time.monotonic() + DELIVERY
    while not db.is_sqlite and response.status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.005)
        response = httpx.request(method, url, **options)
    return response


def _works(bases: list[str], headers: dict[str, str]) -> None:
    for base in bases:
        r = httpx.post(f"{base}/api/work/next", headers=headers)
        assert r.status_code == 204, (base, r.text)


def _refused(db: Database, bases: list[str], headers: dict[str, str]) -> None:
    for base in bases:
        r = _next(db, "POST", f"{base}/api/work/next", headers=headers)
        assert r.status_code == 401, (base, r.text)


# --- changed by plain SQL -------------------------------------------------------------------


def test_a_key_revoked_by_plain_sql_is_refused_by_every_process_on_the_next_request(
    server: LiveServer, other_process: str, org: Org, db: Database
) -> None:
    """As probed: a key revoked in the database kept working for 10 s through the key cache."""
    key = auth(org.live_key)
    bases = _both(server, other_process)
    for base in bases:
        assert httpx.get(f"{base}/v1/projects", auth=key).status_code == 200, base
    plain_sql(
        db,
        "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE key_hash = %s",
        token_hash(org.live_key),
    )
    for base in bases:
        r = _next(db, "GET", f"{base}/v1/projects", auth=key)
        assert r.status_code == 401, (base, r.text)
    # Un-revoked the same way: it works again at once (nothing stale either way).
    plain_sql(
        db, "UPDATE api_keys SET revoked_at = NULL WHERE key_hash = %s", token_hash(org.live_key)
    )
    for base in bases:
        assert httpx.get(f"{base}/v1/projects", auth=key).status_code == 200, base
    # The organization's other key was never affected.
    for base in bases:
        assert httpx.get(f"{base}/v1/projects", auth=auth(org.test_key)).status_code == 200


def test_a_user_deactivated_by_plain_sql_is_refused_by_every_process_on_the_next_request(
    server: LiveServer, other_process: str, org: Org, db: Database
) -> None:
    email, headers = _signed_in(server, db, org)
    bases = _both(server, other_process)
    _works(bases, headers)
    plain_sql(db, "UPDATE users SET is_active = %s WHERE email = %s", False, email)
    _refused(db, bases, headers)


def test_a_session_deleted_by_plain_sql_is_refused_by_every_process_on_the_next_request(
    server: LiveServer, other_process: str, org: Org, db: Database
) -> None:
    _, headers = _signed_in(server, db, org)
    bases = _both(server, other_process)
    _works(bases, headers)
    token = headers["Authorization"].removeprefix("Bearer ")
    plain_sql(db, "DELETE FROM login_sessions WHERE token_hash = %s", token_hash(token))
    _refused(db, list(reversed(bases)), headers)


def test_a_membership_deleted_by_plain_sql_is_refused_by_every_process_on_the_next_request(
    server: LiveServer, other_process: str, org: Org, db: Database
) -> None:
    email, headers = _signed_in(server, db, org)
    bases = _both(server, other_process)
    _works(bases, headers)
    plain_sql(
        db,
        "DELETE FROM memberships WHERE org_id = %s AND user_id = %s",
        org.org_id,
        _user_id(db, email),
    )
    _refused(db, bases, headers)


# --- changed through the product ------------------------------------------------------------


def test_a_key_revoked_by_the_service_is_refused_by_every_process_on_the_next_request(
    server: LiveServer, other_process: str, org: Org, db: Database
) -> None:
    key = auth(org.live_key)
    bases = _both(server, other_process)
    for base in bases:
        assert httpx.get(f"{base}/v1/projects", auth=key).status_code == 200, base
    with db.unit_of_work() as session:
        (row,) = [k for k in accounts.list_api_keys(session, org.org_id) if not k.is_test]
        accounts.revoke_api_key(session, org.org_id, row.id, now=_now())
    for base in bases:
        r = _next(db, "GET", f"{base}/v1/projects", auth=key)
        assert r.status_code == 401, (base, r.text)


def test_a_signed_out_session_is_refused_by_every_process_on_the_next_request(
    server: LiveServer, other_process: str, org: Org, db: Database
) -> None:
    _, headers = _signed_in(server, db, org)
    bases = _both(server, other_process)
    _works(bases, headers)
    # Signing out is a request to one process; the other must refuse the token at once.
    assert httpx.post(f"{server.url}/api/auth/logout", headers=headers).status_code == 204
    _refused(db, list(reversed(bases)), headers)


def test_a_removed_member_is_refused_by_every_process_on_the_next_request(
    server: LiveServer, other_process: str, org: Org, db: Database
) -> None:
    email, headers = _signed_in(server, db, org)
    bases = _both(server, other_process)
    _works(bases, headers)
    with db.unit_of_work() as session:
        accounts.remove_member(session, org.org_id, email, now=_now())
    _refused(db, bases, headers)


# --- session expiry -------------------------------------------------------------------------


@contextmanager
def serving(app: Any) -> Iterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_cached_session_ends_at_its_expiry_exactly(
    settings: Settings, db: Database, org: Org
) -> None:
    """A session cached a moment before its fixed expiry must not outlive it by the cache's
    lifetime."""
    clock = FrozenClock(_now())
    app = create_app(settings, clock=clock, run_jobs=False, migrate=False)
    with serving(app) as url, httpx.Client(base_url=url) as http:
        headers = login(http, make_worker(db, org.org_id))
        clock.advance((sessions.SESSION_TTL - timedelta(seconds=1)).total_seconds())
        assert http.post("/api/work/next", headers=headers).status_code == 204
        assert http.post("/api/work/next", headers=headers).status_code == 204  # cached
        clock.advance(1)
        r = http.post("/api/work/next", headers=headers)
    assert r.status_code == 401, r.text


# --- the signal itself ----------------------------------------------------------------------


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
    user_id = _user_id(db, email)
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
        sessions.start_session(session, user_id=_user_id(db, email), org_id=org.org_id, now=_now())
        accounts.create_api_key(session, org.org_id, is_test=False)
    assert _quiet(watcher, before)


def test_the_signal_goes_out_on_commit_only(
    db: Database, org: Org, watcher: auth_epoch.EpochWatcher
) -> None:
    revoke = "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE key_hash = %s"
    before = _stable(watcher)
    with plain_connection(db) as conn:
        _execute(db, conn, "BEGIN")
        _execute(db, conn, revoke, token_hash(org.live_key))
        assert _quiet(watcher, before), "signalled before the change was committed"
        _execute(db, conn, "ROLLBACK")
        assert _quiet(watcher, before), "a rolled-back change was signalled"
        _execute(db, conn, "BEGIN")
        _execute(db, conn, revoke, token_hash(org.live_key))
        _execute(db, conn, "COMMIT")
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
