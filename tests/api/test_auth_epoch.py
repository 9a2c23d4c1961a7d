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

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from steelyard.accounts import service as accounts
from steelyard.accounts import sessions
from steelyard.accounts.security import token_hash
from steelyard.api.app import create_app
from steelyard.clock import FrozenClock
from steelyard.config import Settings
from steelyard.db.engine import Database
from tests.accounts.plain_sql import plain_sql, user_id_of
from tests.api.helpers import auth, login, make_worker
from tests.api.serving import serving_app
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
        user_id_of(db, email),
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


def test_a_cached_session_ends_at_its_expiry_exactly(
    settings: Settings, db: Database, org: Org
) -> None:
    """A session cached a moment before its fixed expiry must not outlive it by the cache's
    lifetime."""
    clock = FrozenClock(_now())
    app = create_app(settings, clock=clock, run_jobs=False, migrate=False)
    with serving_app(app) as url, httpx.Client(base_url=url) as http:
        headers = login(http, make_worker(db, org.org_id))
        clock.advance((sessions.SESSION_TTL - timedelta(seconds=1)).total_seconds())
        assert http.post("/api/work/next", headers=headers).status_code == 204
        assert http.post("/api/work/next", headers=headers).status_code == 204  # cached
        clock.advance(1)
        r = http.post("/api/work/next", headers=headers)
    assert r.status_code == 401, r.text
