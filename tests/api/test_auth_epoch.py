"""Revocation takes effect at once on every serving process (``accounts.auth_epoch``).

Each test warms the authentication cache of two serving processes on one database, the test's
live server and a second ``uvicorn`` process, then changes a credential in this process and
expects the very next request to either process to be refused.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import update

from steelyard.accounts import auth_epoch
from steelyard.accounts import service as accounts
from steelyard.accounts.models import ApiKey
from steelyard.accounts.schemas import Actor
from steelyard.accounts.security import token_hash
from steelyard.api.auth import Authenticator
from steelyard.clock import SYSTEM_CLOCK
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


def test_a_revoked_key_is_refused_by_every_process_on_the_next_request(
    server: LiveServer, other_process: str, org: Org, db: Database
) -> None:
    key = auth(org.live_key)
    for base in _both(server, other_process):
        assert httpx.get(f"{base}/v1/projects", auth=key).status_code == 200
    # Revoked behind the processes' backs (no signal): each still answers from its cache, which
    # shows that the refusals below come from the signal and not from a cache miss.
    with db.unit_of_work() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.key_hash == token_hash(org.live_key))
            .values(revoked_at=_now())
        )
    for base in _both(server, other_process):
        assert httpx.get(f"{base}/v1/projects", auth=key).status_code == 200, base
    # Back to valid, then revoked as the product does it: the service signals in the same
    # transaction.
    with db.unit_of_work() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.key_hash == token_hash(org.live_key))
            .values(revoked_at=None)
        )
    for base in _both(server, other_process):
        assert httpx.get(f"{base}/v1/projects", auth=key).status_code == 200, base
    with db.unit_of_work() as session:
        (row,) = [k for k in accounts.list_api_keys(session, org.org_id) if not k.is_test]
        accounts.revoke_api_key(session, org.org_id, row.id, now=_now())
    for base in _both(server, other_process):
        r = httpx.get(f"{base}/v1/projects", auth=key)
        assert r.status_code == 401, (base, r.text)
    # The organization's other key is untouched.
    for base in _both(server, other_process):
        assert httpx.get(f"{base}/v1/projects", auth=auth(org.test_key)).status_code == 200


def test_a_signed_out_session_is_refused_by_every_process_on_the_next_request(
    server: LiveServer, other_process: str, org: Org, db: Database
) -> None:
    with httpx.Client(base_url=server.url) as http:
        headers = login(http, make_worker(db, org.org_id))
    for base in _both(server, other_process):
        assert httpx.post(f"{base}/api/work/next", headers=headers).status_code == 204, base
    # Signing out is a request to one process; the other must refuse the token at once.
    assert httpx.post(f"{server.url}/api/auth/logout", headers=headers).status_code == 204
    for base in reversed(_both(server, other_process)):
        r = httpx.post(f"{base}/api/work/next", headers=headers)
        assert r.status_code == 401, (base, r.text)


def test_a_removed_member_is_refused_by_every_process_on_the_next_request(
    server: LiveServer, other_process: str, org: Org, db: Database
) -> None:
    with httpx.Client(base_url=server.url) as http:
        email = make_worker(db, org.org_id)
        headers = login(http, email)
    for base in _both(server, other_process):
        assert httpx.post(f"{base}/api/work/next", headers=headers).status_code == 204, base
    with db.unit_of_work() as session:
        accounts.remove_member(session, org.org_id, email, now=_now())
    for base in _both(server, other_process):
        r = httpx.post(f"{base}/api/work/next", headers=headers)
        assert r.status_code == 401, (base, r.text)


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


def test_the_signal_goes_out_on_commit_only(db: Database, watcher: auth_epoch.EpochWatcher) -> None:
    before = _stable(watcher)
    with db.unit_of_work() as session:
        auth_epoch.credentials_changed(session)
        session.flush()
        assert watcher.token() == before, "signalled before the change was committed"
    assert _settles(watcher, before)

    before = _stable(watcher)
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        auth_epoch.credentials_changed(session)
        raise RuntimeError("rolled back")
    with db.unit_of_work() as session:
        pass  # an unrelated commit on the same kind of session
    time.sleep(0.2)
    assert watcher.token() == before, "a rolled-back change was signalled"


def test_a_lookup_that_overlaps_a_change_is_not_kept(db: Database, org: Org) -> None:
    """A key looked up just before its revocation committed must not stay cached."""
    lookups: list[str] = []

    class Overlapping(Authenticator):
        def _lookup(self, kind: str, secret: str) -> Actor:
            actor = super()._lookup(kind, secret)
            lookups.append(secret)
            if len(lookups) == 1:
                with db.unit_of_work() as session:  # a change commits meanwhile
                    auth_epoch.credentials_changed(session)
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
