"""Scenario 5 (callback delivery) end to end: the real client, the live server with its job
runner, and a receiver on a loopback port that fails twice before it accepts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import scaleapi

from steelyard.callbacks.service import verify_signature
from steelyard.db.engine import Database
from tests.api.helpers import client, image_project, image_task, login, make_worker
from tests.conftest import LiveServer, Org


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


@dataclass
class Receiver:
    """Records every POST; answers ``script`` in order (then 200 forever)."""

    url: str
    script: list[int]
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, path: str) -> str:
        return f"{self.url}{path}"

    def to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="", script=[500, 500])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            with state.lock:
                state.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
                )
                status = state.script.pop(0) if state.script else 200
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"try again")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the callback")
        time.sleep(0.02)


def test_completion_callback_retries_until_it_succeeds(
    server: LiveServer, org: Org, receiver: Receiver
) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    task = image_task(c, project="p1", callback_url=receiver.at("/hook"), metadata={"k": "v"})
    assert task.status == "completed"
    assert wait_for(lambda: c.get_task(task.id).callback_succeeded is True)
    posts = receiver.to("/hook")
    assert len(posts) == 3  # 500, 500, 200
    for post in posts:
        assert post.headers["scale-callback-auth"] == org.callback_auth_key
        assert post.headers["content-type"].startswith("application/json")
        body = post.json
        assert body["task_id"] == task.id
        assert body["task"]["task_id"] == task.id
        assert body["task"]["status"] == "completed"
        assert body["task"]["metadata"] == {"k": "v"}
        assert body["task"]["project"] == "p1"
        assert body["response"] == c.get_task(task.id).response
        assert verify_signature(
            org.callback_auth_key,
            post.raw,
            post.headers["x-steelyard-timestamp"],
            post.headers["x-steelyard-signature"],
            now=datetime.now(UTC),
        )
    assert posts[0].raw == posts[-1].raw  # a retry resends the same document
    time.sleep(0.3)
    assert len(receiver.to("/hook")) == 3  # nothing after the success


def test_worker_completion_and_audit_fire_callbacks(
    server: LiveServer, org: Org, receiver: Receiver, http: httpx.Client, db: Database
) -> None:
    receiver.script.clear()
    c = client(server, org.live_key)
    task = image_task(c, callback_url=receiver.at("/live"))
    time.sleep(0.2)
    assert receiver.to("/live") == []  # pending: nothing to report yet
    worker = login(http, make_worker(db, org.org_id))
    lease = http.post("/api/work/next", headers=worker).json()
    box = {"type": "box", "label": "car", "left": 1, "top": 1, "width": 9, "height": 9}
    r = http.post(
        f"/api/work/{lease['assignment_id']}/submit",
        json={"response": {"annotations": [box]}},
        headers=worker,
    )
    assert r.status_code == 200
    first = wait_for(lambda: receiver.to("/live"))[0].json
    assert first["task"]["status"] == "completed"
    assert first["response"]["annotations"][0]["label"] == "car"
    assert wait_for(lambda: c.get_task(task.id).callback_succeeded is True)

    c.audit_task(task.id, accepted=False, comments="the box is too small")
    audit = wait_for(lambda: receiver.to("/live")[1:])[0].json
    assert audit["task"]["customer_review_status"] == "rejected"
    assert audit["task"]["customer_review_comments"] == ["the box is too small"]


def test_batch_completion_callback(server: LiveServer, org: Org, receiver: Receiver) -> None:
    receiver.script.clear()
    c = client(server, org.live_key)
    image_project(c, "p1")
    c.create_batch("p1", "b1", callback=receiver.at("/batch"))
    tasks = [image_task(c, batch="b1") for _ in range(2)]
    c.cancel_task(tasks[0].id)
    time.sleep(0.2)
    assert receiver.to("/batch") == []
    c.cancel_task(tasks[1].id)
    body = wait_for(lambda: receiver.to("/batch"))[0].json
    assert body["name"] == "b1"
    assert body["status"] == "completed"
    assert body["canceled"] == 2
    assert receiver.to("/batch")[0].headers["scale-callback-auth"] == org.callback_auth_key


def test_email_callback_without_smtp_is_refused_at_create(server: LiveServer, org: Org) -> None:
    # It used to be accepted and then fail at every delivery (issue 7, item 12).
    c = client(server, org.test_key)
    with pytest.raises(scaleapi.exceptions.ScaleInvalidRequest, match="STEELYARD_SMTP_URL"):
        image_task(c, callback_url="labels@example.com")


def test_each_organization_signs_with_its_own_key(
    server: LiveServer, org: Org, other_org: Org, receiver: Receiver
) -> None:
    receiver.script.clear()
    image_task(client(server, org.test_key), callback_url=receiver.at("/a"))
    image_task(client(server, other_org.test_key), callback_url=receiver.at("/b"))
    assert (
        wait_for(lambda: receiver.to("/a"))[0].headers["scale-callback-auth"]
        == org.callback_auth_key
    )
    assert (
        wait_for(lambda: receiver.to("/b"))[0].headers["scale-callback-auth"]
        == other_org.callback_auth_key
    )
    assert org.callback_auth_key != other_org.callback_auth_key
