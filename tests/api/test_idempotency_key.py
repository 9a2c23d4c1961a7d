"""``Idempotency-Key``: a repeated request replays the first response instead of redoing it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.types import Message

from steelyard.accounts.schemas import Actor
from steelyard.api import idempotency
from steelyard.api.app import create_app
from steelyard.errors import ValidationError
from steelyard.idempotency import service
from steelyard.idempotency.models import IdempotencyRecord
from tests.conftest import LiveServer, Org, basic
from tests.jobs.helpers import serve


def _create(http: httpx.Client, org: Org, key: str, text: str = "hello") -> httpx.Response:
    return http.post(
        "/v1/task/categorization",
        auth=basic(org.live_key),
        headers={"Idempotency-Key": key},
        json={"attachment": text, "attachment_type": "text", "categories": ["a", "b"]},
    )


def _count(http: httpx.Client, org: Org) -> int:
    return int(http.get("/v1/tasks", auth=basic(org.live_key), params={"limit": 1}).json()["total"])


def test_same_key_replays_first_response(server: LiveServer, http: httpx.Client, org: Org) -> None:
    key = str(uuid.uuid4())
    first = _create(http, org, key)
    second = _create(http, org, key)
    assert first.status_code == second.status_code == 200
    assert second.json()["task_id"] == first.json()["task_id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert _count(http, org) == 1
    # A new key does new work.
    assert _create(http, org, str(uuid.uuid4())).json()["task_id"] != first.json()["task_id"]
    assert _count(http, org) == 2


def test_key_reused_for_other_request_is_refused(http: httpx.Client, org: Org) -> None:
    key = str(uuid.uuid4())
    assert _create(http, org, key, "one").status_code == 200
    other = _create(http, org, key, "two")
    assert other.status_code == 400
    assert "Idempotency-Key" in other.json()["error"]
    assert _count(http, org) == 1


def test_errors_are_replayed_too(http: httpx.Client, org: Org) -> None:
    key = str(uuid.uuid4())
    body = {"attachment_type": "text", "categories": ["a"]}
    first = http.post(
        "/v1/task/categorization",
        auth=basic(org.live_key),
        headers={"Idempotency-Key": key},
        json=body,
    )
    again = http.post(
        "/v1/task/categorization",
        auth=basic(org.live_key),
        headers={"Idempotency-Key": key},
        json=body,
    )
    assert first.status_code == again.status_code == 400
    assert first.json() == again.json()


def test_keys_are_per_organization(http: httpx.Client, org: Org, other_org: Org) -> None:
    key = str(uuid.uuid4())
    a = _create(http, org, key)
    b = _create(http, other_org, key)
    assert a.status_code == b.status_code == 200
    assert a.json()["task_id"] != b.json()["task_id"]
    assert "idempotent-replayed" not in b.headers


def test_bad_key_is_a_clear_400(http: httpx.Client, org: Org) -> None:
    r = _create(http, org, "x" * 300)
    assert r.status_code == 400
    assert r.json()["field"] == "Idempotency-Key"
    assert _count(http, org) == 0


# --- hostile keys and paths: the same answer on SQLite and PostgreSQL -------------------------


def _raw_post(server: LiveServer, org: Org, path: str, key: bytes) -> tuple[int, dict[str, Any]]:
    """A POST whose ``Idempotency-Key`` goes out byte for byte (httpx refuses control bytes)."""
    body = json.dumps({"attachment": "x", "attachment_type": "text", "categories": ["a", "b"]})
    token = base64.b64encode(f"{org.live_key}:".encode()).decode()
    host, port = server.url.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + b"Idempotency-Key: " + key + b"\r\n\r\n" + body.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head_part, _, payload = answer.partition(b"\r\n\r\n")
    status = int(head_part.split()[1])
    return status, json.loads(payload) if payload.startswith(b"{") else {}


def test_a_path_longer_than_the_stored_column_is_a_400_on_every_backend(
    http: httpx.Client, org: Org
) -> None:
    """``idempotency_records.path`` holds 2,000 characters: PostgreSQL answered 500 past it,
    SQLite stored it."""
    long_path = "/v1/task/" + "x" * 2100
    r = http.post(
        long_path,
        auth=basic(org.live_key),
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"attachment": "x"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "url"
    # Without a key the route answers as usual (no such task type).
    assert http.post(long_path, auth=basic(org.live_key), json={}).status_code == 402
    at_limit = "/v1/task/" + "x" * (2000 - len("/v1/task/"))
    r = http.post(
        at_limit,
        auth=basic(org.live_key),
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"attachment": "x"},
    )
    assert r.status_code == 402, r.text


@pytest.mark.parametrize(
    "key",
    [
        b"k" * 10_000,
        b"k" * 256,
        b"tab\tinside",
        b"bell\x07",
        b"del\x7f",
        b"\x01start",
        "cl\u00e9".encode(),  # UTF-8 bytes: the server sees Latin-1 "cl\u00c3\u00a9"
        b"\xff\xfe",
    ],
    ids=["10000", "256", "tab", "bell", "del", "soh", "utf8", "high-bytes"],
)
def test_a_key_that_is_too_long_or_not_printable_ascii_is_a_400(
    server: LiveServer, org: Org, key: bytes
) -> None:
    status, body = _raw_post(server, org, "/v1/task/categorization", key)
    # The server may refuse some bytes in a header itself (400, no JSON); it must never store
    # such a key nor answer 5xx.
    assert status == 400, (status, body)
    if body:
        assert body["field"] == "Idempotency-Key", body
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert _count(http, org) == 0


def test_the_longest_printable_key_works(http: httpx.Client, org: Org) -> None:
    key = "".join(chr(c) for c in range(0x21, 0x7F)) * 3
    key = key[: 255 - 5] + " x y"  # spaces inside are printable
    first, again = _create(http, org, key), _create(http, org, key)
    assert first.status_code == again.status_code == 200, first.text
    assert again.headers["idempotent-replayed"] == "true"
    assert _count(http, org) == 1


def test_a_key_in_use_answers_409_in_the_api_shape(
    server: LiveServer, http: httpx.Client, org: Org
) -> None:
    """Refusals go through the one error mapping (``api.errors.domain_response``)."""
    key = str(uuid.uuid4())
    actor = Actor(org_id=org.org_id, is_test=False, kind="api_key", role="admin")
    # A first request that is still running: its record has no response yet.
    with server.db.unit_of_work() as session:
        service.begin(
            session,
            actor,
            key=key,
            method="POST",
            path="/v1/task/categorization",
            request_hash=hashlib.sha256(b"{}").hexdigest(),
            now=datetime.now(UTC),
        )
    r = http.post(
        "/v1/task/categorization",
        auth=basic(org.live_key),
        headers={"Idempotency-Key": key},
        content=b"{}",
    )
    assert r.status_code == 409
    assert r.json() == {
        "status_code": 409,
        "error": "A request with this Idempotency-Key is still being processed.",
        "field": "Idempotency-Key",
    }


# --- uploads: bounded by the upload limit alone -----------------------------------------------

SMALL_BODY = 4096
SMALL_UPLOAD = 64 * 1024


@pytest.fixture(scope="module")
def small_limits(server: LiveServer) -> Iterator[str]:
    """The shared server's database behind an app whose limits are tiny (a 4 KiB body, 64 KiB
    uploads), so that an upload can be over the body limit and under the upload limit."""
    settings = server.settings.model_copy(
        update={"max_body_bytes": SMALL_BODY, "max_upload_bytes": SMALL_UPLOAD}
    )
    with serve(create_app(settings, run_jobs=False, migrate=False)) as live:
        yield live.url


def _form(data: bytes) -> tuple[bytes, str]:
    """A multipart body holding ``data`` as ``file``, and its content type (with the boundary:
    a retry sends the very same bytes)."""
    form = httpx.Request("POST", "/", files={"file": ("a.bin", data, "application/octet-stream")})
    return form.read(), form.headers["content-type"]


def _upload(
    url: str, org: Org, key: str, form: tuple[bytes, str], *, chunked: bool
) -> httpx.Response:
    payload, content_type = form
    headers = {"Idempotency-Key": key, "Content-Type": content_type}
    content: bytes | Iterator[bytes] = payload
    if chunked:
        content = (payload[i : i + 8192] for i in range(0, len(payload), 8192))
    r = httpx.post(url, content=content, headers=headers, auth=basic(org.live_key), timeout=30)
    assert ("content-length" in r.request.headers) is not chunked
    return r


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_an_upload_with_a_key_up_to_the_upload_limit_is_kept_and_replayed(
    small_limits: str, org: Org, chunked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It used to be refused at the body limit when chunked, and served without its key (so
    a retry stored the file again) when its length was declared."""
    # The body goes to the spool's file, as a large upload's would.
    monkeypatch.setattr(idempotency, "SPOOL_MEMORY_BYTES", 16 * 1024)
    url = f"{small_limits}/v1/files/upload"
    key = str(uuid.uuid4())
    data = bytes(range(256)) * (SMALL_UPLOAD // 256)
    form = _form(data)
    first = _upload(url, org, key, form, chunked=chunked)
    assert first.status_code == 200, first.text
    assert first.json()["size"] == SMALL_UPLOAD
    again = _upload(url, org, key, form, chunked=chunked)
    assert again.status_code == 200, again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    other = _upload(url, org, key, _form(data[:-1]), chunked=chunked)
    assert (other.status_code, other.json()["field"]) == (400, "Idempotency-Key")


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_bodies_over_their_limit_with_a_key_are_413_naming_the_field(
    small_limits: str, org: Org, chunked: bool
) -> None:
    over = b"x" * (SMALL_UPLOAD + 300 * 1024)
    url = f"{small_limits}/v1/files/upload"
    r = _upload(url, org, str(uuid.uuid4()), _form(over), chunked=chunked)
    assert (r.status_code, r.json()["field"]) == (413, "file"), r.text
    body = json.dumps({"attachment": "x" * SMALL_BODY}).encode()
    content: bytes | Iterator[bytes] = iter([body]) if chunked else body
    r = httpx.post(
        f"{small_limits}/v1/task/categorization",
        content=content,
        headers={"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"},
        auth=basic(org.live_key),
        timeout=30,
    )
    assert r.json() == {
        "status_code": 413,
        "error": f"The request body is larger than {SMALL_BODY} bytes.",
        "field": "body",
    }


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 64 * 1024 + 1, 200_000])
@pytest.mark.parametrize("memory", [1024, 1024 * 1024], ids=["on-disk", "in-memory"])
def test_a_spooled_body_is_handed_on_whole_then_the_connection_speaks(
    size: int, memory: int
) -> None:
    data = bytes(i % 251 for i in range(size))
    sent = [data[i : i + 5000] for i in range(0, size, 5000)] or [b""]
    incoming: list[Message] = [
        {"type": "http.request", "body": piece, "more_body": i < len(sent) - 1}
        for i, piece in enumerate(sent)
    ] + [{"type": "http.disconnect"}]

    async def receive() -> Message:
        return incoming.pop(0)

    async def run() -> tuple[list[Message], str]:
        with tempfile.SpooledTemporaryFile(max_size=memory) as spool:
            body = idempotency._Body(spool)
            assert await body.read(receive)
            replay = body.replay(receive)
            got = [await replay()]
            while got[-1].get("more_body"):
                got.append(await replay())
            got.append(await replay())
            return got, body.digest

    got, digest = asyncio.run(run())
    assert b"".join(m.get("body", b"") for m in got[:-1]) == data
    assert digest == hashlib.sha256(data).hexdigest()
    assert got[-1] == {"type": "http.disconnect"}, "after the body: the connection's own"


@pytest.mark.parametrize(
    "key", ["", "k" * 256, "nul\x00", "bell\x07", "del\x7f", "tab\tinside", "cl\u00e9", "\u2603"]
)
def test_the_key_rule_holds_whatever_the_http_parser_lets_through(key: str) -> None:
    """httptools refuses most control bytes in a header itself; another parser may not."""
    with pytest.raises(ValidationError) as err:
        service.check_request(key, "/v1/task/categorization")
    assert err.value.field == "Idempotency-Key"
    service.check_request("k" * 255, "/v1/" + "p" * (service.MAX_PATH_LENGTH - 4))


def test_a_client_that_leaves_mid_body_is_not_served(server: LiveServer, org: Org) -> None:
    """The body read so far used to be handed to the route as if whole, and its answer kept."""
    key = str(uuid.uuid4())
    token = base64.b64encode(f"{org.live_key}:".encode()).decode()
    host, port = server.url.removeprefix("http://").split(":")
    head = (
        f"POST /v1/task/categorization HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Basic {token}\r\nIdempotency-Key: {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode() + b'{"attachment": "x", "attachment_type": "te')
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        with server.db.unit_of_work(write=False) as session:
            stored = session.scalar(
                select(func.count())
                .select_from(IdempotencyRecord)
                .where(IdempotencyRecord.org_id == org.org_id)
            )
        assert stored == 0, "a truncated body was served and its answer kept"
        time.sleep(0.1)
