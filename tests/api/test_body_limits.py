"""One body limit on every route (issue 7, defect 7).

``/api/auth/login`` used to read a 60 MB body whole and answer 401, taking the server's peak
memory from ~190 MB to 486 MB: only handlers that read the body through ``deps.json_body``
were bounded. ``api.limits.BodyLimitMiddleware`` now bounds every request before anything
reads it. Most tests here use an app with a tiny limit so that every route of the route table
can be tried cheaply; the memory test runs a real ``steelyard serve``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from steelyard.api.app import create_app
from steelyard.api.limits import FORM_OVERHEAD, UPLOAD_PATHS
from steelyard.config import load_settings
from tests.api.helpers import BOXES, IMAGE
from tests.conftest import LiveServer, Org, basic, free_port
from tests.jobs.helpers import NewOrg, create_org, serve

LIMIT = 4096
UPLOAD_LIMIT = 8192
MiB = 1024 * 1024
#: The most one ``receive`` can hand over: uvicorn pauses reading past 64 KiB of buffered body,
#: and asyncio reads up to 256 KiB per socket read.
ONE_MESSAGE = 64 * 1024 + 256 * 1024


@dataclass
class Tight:
    url: str
    org: NewOrg
    routes: list[tuple[str, str]]
    #: Body bytes the application pulled for the latest request (see ``PulledBytes``).
    pulled: dict[str, int]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=basic(self.org.live_key), timeout=30)


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tight]:
    """An app whose body limit is 4 KiB (uploads 8 KiB), on its own SQLite file."""
    tmp = tmp_path_factory.mktemp("tight")
    settings = load_settings(
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'tight.db'}",
        max_body_bytes=LIMIT,
        max_upload_bytes=UPLOAD_LIMIT,
        rate_limit_per_key=10**9,
        rate_limit_per_address=10**9,
        login_rate_limit_per_address=10**9,
    )
    app = create_app(settings, run_jobs=False)
    # Every documented operation, and paths no document lists (the front page, no route at
    # all): the limit holds before routing, so an undocumented route is bounded the same way.
    routes = sorted(
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    )
    routes += [("GET", "/"), ("POST", "/"), ("POST", "/no/such/route"), ("PUT", "/api/nothing")]
    pulled = {"bytes": 0}
    app.add_middleware(PulledBytes, pulled=pulled)  # added last: outside every other layer
    with serve(app) as live:
        org = create_org(app.state.db)
        with httpx.Client(base_url=live.url, auth=basic(org.live_key)) as http:
            r = http.post("/v1/projects", json={"name": "p1", "type": "imageannotation"})
            assert r.status_code == 200, r.text
        yield Tight(url=live.url, org=org, routes=routes, pulled=pulled)


class PulledBytes:
    """Counts the body bytes pulled from the server for a request, by anything inside it."""

    def __init__(self, app: ASGIApp, pulled: dict[str, int]) -> None:
        self.app, self.pulled = app, pulled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.pulled["bytes"] = 0

        async def counting() -> Message:
            message = await receive()
            self.pulled["bytes"] += len(message.get("body", b""))
            return message

        await self.app(scope, counting, send)


def _concrete(path: str) -> str:
    """A route's path with every parameter filled in (the limit applies before routing)."""
    parts = [("x" if part.startswith("{") else part) for part in path.split("/")]
    return "/".join(parts)


def _chunks(total: int, size: int = 1024) -> Iterator[bytes]:
    """``total`` bytes in pieces, sent without a length (``Transfer-Encoding: chunked``)."""
    piece = b" " * size
    while total > 0:
        yield piece[: min(size, total)]
        total -= size


def _is_too_large(r: httpx.Response, path: str, field: str = "body") -> None:
    assert r.status_code == 413, (path, r.status_code, r.text)
    body = r.json()
    if path.startswith(("/v1", "/v2")):
        assert body["status_code"] == 413 and body["field"] == field, body
    else:
        assert body["error"]["code"] == "too_large" and body["error"]["field"] == field, body


def test_the_route_table_is_walked(tight: Tight) -> None:
    paths = {path for _method, path in tight.routes}
    assert {"/api/auth/login", "/v1/task/{task_type}", "/v1/files/upload", "/v2/batch"} <= paths


def test_no_route_reads_a_chunked_body_past_the_limit(tight: Tight) -> None:
    """Chunked bodies of 1 MiB (256 times the limit): a route that reads its body gets 413 as
    soon as the limit is passed, having pulled at most one more message from the server (which
    hands over what it has buffered, up to its high-water mark plus one socket read); a route
    that answers without reading (a GET list, a refused credential) need not pull it at all."""
    refused = set()
    with tight.client() as http:
        for method, path in tight.routes:
            if path in UPLOAD_PATHS:
                continue
            url = _concrete(path)
            r = http.request(method, url, content=_chunks(MiB, 16 * 1024))
            assert "content-length" not in r.request.headers
            assert tight.pulled["bytes"] <= LIMIT + ONE_MESSAGE, (method, path, tight.pulled)
            if tight.pulled["bytes"] > LIMIT:
                _is_too_large(r, url)
                refused.add((method, path))
            else:
                assert r.status_code != 413, (method, path)
    assert {
        ("POST", "/api/auth/login"),
        ("POST", "/v1/task/{task_type}"),
        ("POST", "/v1/projects"),
        ("POST", "/v2/batch"),
        ("POST", "/api/invitations/accept"),
    } <= refused


def test_every_route_refuses_a_declared_length_over_the_limit_without_reading_it(
    tight: Tight,
) -> None:
    """Only the head is sent: the 413 comes back although no byte of the body ever does."""
    host, port = tight.url.removeprefix("http://").split(":")
    for method, path in tight.routes:
        if path in UPLOAD_PATHS:
            continue
        url = _concrete(path)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            head = (
                f"{method} {url} HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {60 * MiB}\r\n\r\n"
            )
            sock.sendall(head.encode())
            status_line = sock.makefile("rb").readline()
        assert status_line.split()[1] == b"413", (method, path, status_line)


def test_a_body_at_the_limit_works_and_one_byte_more_does_not(tight: Tight) -> None:
    def task_body(size: int) -> bytes:
        doc: dict[str, Any] = {"attachment": IMAGE, "geometries": BOXES, "metadata": {"pad": ""}}
        doc["metadata"]["pad"] = "x" * (size - len(json.dumps(doc)))
        data = json.dumps(doc).encode()
        assert len(data) == size
        return data

    ct = {"Content-Type": "application/json"}
    with tight.client() as http:
        at_limit = task_body(LIMIT)
        r = http.post("/v1/task/imageannotation", content=at_limit, headers=ct)
        assert r.status_code == 200, r.text
        r = http.post("/v1/task/imageannotation", content=iter([at_limit]), headers=ct)
        assert r.status_code == 200, r.text
        over = task_body(LIMIT + 1)
        _is_too_large(http.post("/v1/task/imageannotation", content=over, headers=ct), "/v1")
        _is_too_large(
            http.post("/v1/task/imageannotation", content=iter([over]), headers=ct), "/v1"
        )
        # a pydantic body model (not read through json_body) at the limit is read and judged
        login = {"email": "nobody@example.com", "password": ""}
        login["password"] = "x" * (LIMIT - len(json.dumps(login)))
        r = http.post("/api/auth/login", content=json.dumps(login).encode(), headers=ct)
        assert r.status_code in (401, 422), r.text


def test_uploads_have_their_own_larger_limit(tight: Tight) -> None:
    with tight.client() as http:
        between = b"a" * (LIMIT * 3 // 2)  # over the body limit, under the upload limit
        r = http.post("/v1/files/upload", files={"file": ("a.txt", between, "text/plain")})
        assert r.status_code == 200, r.text
        assert r.json()["size"] == len(between)
        over = b"a" * (UPLOAD_LIMIT + FORM_OVERHEAD + 1)
        r = http.post("/v1/files/upload", files={"file": ("a.txt", over, "text/plain")})
        _is_too_large(r, "/v1", field="file")
        form = httpx.Request("POST", "/", files={"file": ("a.txt", over, "text/plain")})
        data = form.read()
        pieces = (data[i : i + 4096] for i in range(0, len(data), 4096))
        headers = {"Content-Type": form.headers["content-type"]}
        r = http.post("/v1/files/upload", content=pieces, headers=headers)
        assert "content-length" not in r.request.headers
        _is_too_large(r, "/v1", field="file")


def test_chunked_bodies_over_the_default_limit(server: LiveServer, org: Org) -> None:
    limit = server.settings.max_body_bytes
    with httpx.Client(base_url=server.url, auth=basic(org.live_key), timeout=60) as http:
        for path in ("/api/auth/login", "/v1/task/imageannotation", "/v1/projects", "/v2/batch"):
            started = time.monotonic()
            _is_too_large(http.post(path, content=_chunks(limit + 1, MiB)), path)
            assert time.monotonic() - started < 10, path
        # the connection and the server are still fine afterwards
        assert http.get("/v1/projects").status_code == 200


# --- a real server process: the memory a 60 MB body costs it ------------------------------


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``steelyard serve`` in its own process (SQLite under ``tmp_path``): (url, pid)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEELYARD_")}
    env["STEELYARD_DATA_DIR"] = str(tmp_path / "data")
    steelyard = Path(sys.executable).parent / "steelyard"
    argv = [str(steelyard), "serve", "--port", str(port), "--no-jobs", "--log-level", "warning"]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=out, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                httpx.get(f"{url}/v1/projects", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "steelyard serve did not start"
                time.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_a_60mb_login_body_is_refused_at_once_and_costs_the_server_no_memory(
    serve_process: tuple[str, int],
) -> None:
    url, pid = serve_process
    size = 60 * MiB
    with httpx.Client(base_url=url, timeout=60) as http:
        # warm up the login path (imports, first queries) so they do not count as growth
        for _ in range(2):
            r = http.post("/api/auth/login", json={"email": "a@example.com", "password": "x"})
            assert r.status_code in (401, 422), r.text
        before = _peak_rss(pid)
        for declared in (True, False):
            headers = {"Content-Type": "application/json"}
            if declared:
                headers["Content-Length"] = str(size)
            started = time.monotonic()
            r = http.post("/api/auth/login", content=_chunks(size, MiB), headers=headers)
            seconds = time.monotonic() - started
            _is_too_large(r, "/api/auth/login")
            assert seconds < 15, seconds
        grown = _peak_rss(pid) - before
        # Before the fix the peak grew by ~300 MB (several copies of the body).
        assert grown < 30 * MiB, f"peak memory grew by {grown / MiB:.0f} MiB"
