"""Fixtures for the job, callback and file tests: a private SQLite database per test.

The outbox is one table for every organization, so a runner under test must not share a
database with the API tests (it would claim their jobs); each test gets a copy of a migrated
template file instead, which is much faster than migrating again.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from steelyard.accounts import service as accounts
from steelyard.clock import FrozenClock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.db.migrate import upgrade


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database.engine)
    with database.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    database.dispose()
    return path


@pytest.fixture
def fresh_db(migrated_template: Path, tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "steelyard.db"
    shutil.copy(migrated_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def job_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'steelyard.db'}",
        secret_key="test-secret-key",
        callback_retry_base_seconds=60,
        job_concurrency=1,
        job_poll_seconds=0.05,
    )


@dataclass(frozen=True)
class NewOrg:
    org_id: str
    live_key: str
    test_key: str
    callback_auth_key: str


def create_org(db: Database) -> NewOrg:
    with db.unit_of_work() as session:
        created = accounts.create_organization(session, f"org-{uuid.uuid4().hex[:10]}")
        return NewOrg(
            org_id=created.org.id,
            live_key=created.live_api_key,
            test_key=created.test_api_key,
            callback_auth_key=created.org.callback_auth_key,
        )


@pytest.fixture
def new_org(fresh_db: Database) -> NewOrg:
    return create_org(fresh_db)


@dataclass
class Live:
    url: str
    app: FastAPI


@contextmanager
def serve(app: FastAPI) -> Iterator[Live]:
    """The app on a real port (Starlette's TestClient needs a package we do not install)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Live(url=f"http://127.0.0.1:{port}", app=app)
    finally:
        server.should_exit = True
        thread.join(10)
