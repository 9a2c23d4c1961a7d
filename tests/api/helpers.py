"""Shared helpers for the API tests: clients, task params, error-body checks, workers."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import scaleapi
from scaleapi.tasks import Task, TaskType

from steelyard.accounts import security
from steelyard.accounts import service as accounts
from steelyard.db.engine import Database
from tests.conftest import LiveServer, basic

IMAGE = "https://example.com/images/car.jpg"
BOXES: dict[str, Any] = {"box": {"objects_to_annotate": ["car", "truck"]}}
PASSWORD = "correct horse battery"


def client(server: LiveServer, key: str) -> scaleapi.ScaleClient:
    """The official client, unmodified, pointed at the live test server."""
    return scaleapi.ScaleClient(key, source="pytest", api_instance_url=server.v1)


def name(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def image_task(c: scaleapi.ScaleClient, **kwargs: Any) -> Task:
    kwargs.setdefault("attachment", IMAGE)
    kwargs.setdefault("geometries", BOXES)
    return c.create_task(TaskType.ImageAnnotation, **kwargs)


def image_project(c: scaleapi.ScaleClient, project: str | None = None, **params: Any) -> str:
    project = project or name("proj")
    c.create_project(project, TaskType.ImageAnnotation, params=params or None)
    return project


def scale_error(response: httpx.Response, status: int, *mentions: str) -> str:
    """Assert Scale's error shape ``{"status_code", "error"}`` with ``status``; return the text.

    Each of ``mentions`` must appear in the message (case-insensitive): errors name the field.
    """
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body, dict), body
    assert body["status_code"] == status, body
    assert isinstance(body["error"], str) and body["error"], body
    for word in mentions:
        assert word.lower() in body["error"].lower(), (word, body)
    return str(body["error"])


def auth(key: str) -> httpx.BasicAuth:
    return basic(key)


def raw_task(
    http: httpx.Client, key: str, body: Any, *, type_name: str = "imageannotation"
) -> httpx.Response:
    return http.post(f"/v1/task/{type_name}", json=body, auth=auth(key))


def count_tasks(http: httpx.Client, key: str) -> int:
    r = http.get("/v1/tasks", params={"limit": 1}, auth=auth(key))
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def count_projects(http: httpx.Client, key: str) -> int:
    r = http.get("/v1/projects", auth=auth(key))
    assert r.status_code == 200, r.text
    return len(r.json())


def make_worker(
    db: Database, org_id: str, *, role: str = "annotator", password_hash: str | None = None
) -> str:
    """A worker in ``org_id``; returns the email (password: ``PASSWORD``).

    ``password_hash`` lets a test that needs many workers hash the password once.
    """
    email = f"w-{uuid.uuid4().hex[:12]}@example.com"
    hashed = password_hash or security.hash_password(PASSWORD)  # slow: before the transaction
    with db.unit_of_work() as session:
        accounts.create_user(session, org_id=org_id, email=email, password_hash=hashed, role=role)
    return email


def login(http: httpx.Client, email: str) -> dict[str, str]:
    """Bearer headers for a worker."""
    r = http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}
