"""Shared fixtures: databases (SQLite and, when configured, PostgreSQL) and live servers.

``STEELYARD_TEST_POSTGRES_URL`` turns on the PostgreSQL half of every ``backend``-parametrised
test. When it is set and the server cannot be reached the run fails: it never silently skips.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from steelyard.accounts import service as accounts
from steelyard.api.app import create_app
from steelyard.config import Settings, load_settings
from steelyard.db.engine import Database
from steelyard.db.migrate import upgrade

#: Fails any test during which something waited on the network or hashed a password inside a
#: write transaction (see the module).
pytest_plugins = ["tests._write_lock_guard"]

POSTGRES_URL = os.environ.get("STEELYARD_TEST_POSTGRES_URL", "")
BACKENDS = (
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)] if POSTGRES_URL else ["sqlite"]
)


def _fresh_postgres(url: str) -> None:
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    except Exception as exc:
        pytest.fail(f"STEELYARD_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {exc}")
    finally:
        db.dispose()


def database_url(backend: str, tmp: Path) -> str:
    if backend == "postgres":
        return POSTGRES_URL
    return f"sqlite:///{tmp / 'steelyard.db'}"


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def settings(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp(f"data-{backend}")
    if backend == "postgres":
        _fresh_postgres(POSTGRES_URL)
    return load_settings(
        data_dir=tmp,
        database_url=database_url(backend, tmp),
        allow_private_callbacks=True,
        callback_retry_base_seconds=0.05,
        job_poll_seconds=0.02,
        # The whole suite calls one server from one address: limits raised (still enforced, so
        # every request passes the limiter) far above it; tests of limits build their own app.
        rate_limit_per_key=10**9,
        rate_limit_per_address=10**9,
        login_rate_limit_per_address=10**9,
    )


@pytest.fixture(scope="session")
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.resolved_database_url)
    upgrade(database.engine)
    yield database
    database.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    settings: Settings
    db: Database
    app: Any

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"


@pytest.fixture(scope="session")
def server(settings: Settings, db: Database) -> Iterator[LiveServer]:
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", proxy_headers=False
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    yield LiveServer(url=f"http://127.0.0.1:{port}", settings=settings, db=db, app=app)
    srv.should_exit = True
    thread.join(timeout=10)


@dataclass
class Org:
    name: str
    org_id: str
    live_key: str
    test_key: str
    callback_auth_key: str


@pytest.fixture
def org(db: Database) -> Org:
    """A fresh organization per test: organizations isolate all data, so tests don't collide."""
    with db.unit_of_work() as session:
        created = accounts.create_organization(session, f"org-{uuid.uuid4().hex[:10]}")
        return Org(
            name=created.org.name,
            org_id=created.org.id,
            live_key=created.live_api_key,
            test_key=created.test_api_key,
            callback_auth_key=created.org.callback_auth_key,
        )


def basic(key: str) -> httpx.BasicAuth:
    return httpx.BasicAuth(key, "")


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
