"""Hostile and sloppy input over raw HTTP: every answer is the right 4xx in Scale's shape, names
the field, and leaves nothing half-written."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import BOXES, IMAGE, auth, count_projects, count_tasks, scale_error
from tests.conftest import LiveServer, Org

VALID_TASK: dict[str, Any] = {"attachment": IMAGE, "geometries": BOXES}
#: A valid task body without its closing brace, for tests that append raw JSON.
HEAD = json.dumps(VALID_TASK).encode()[:-1]


@pytest.fixture
def key(org: Org, http: httpx.Client) -> httpx.BasicAuth:
    """The live key of an org that has project ``p1`` with batch ``b1``."""
    k = auth(org.live_key)
    assert (
        http.post(
            "/v1/projects", json={"name": "p1", "type": "imageannotation"}, auth=k
        ).status_code
        == 200
    )
    assert http.post("/v1/batches", json={"project": "p1", "name": "b1"}, auth=k).status_code == 200
    return k


@pytest.fixture
def nothing_written(http: httpx.Client, org: Org, key: httpx.BasicAuth) -> Iterator[None]:
    before = (count_tasks(http, org.live_key), count_projects(http, org.live_key))
    batches = http.get("/v1/batches", auth=key).json()["totalDocs"]
    yield
    assert (count_tasks(http, org.live_key), count_projects(http, org.live_key)) == before
    assert http.get("/v1/batches", auth=key).json()["totalDocs"] == batches


ENDPOINTS = [
    ("POST", "/v1/projects"),
    ("POST", "/v1/projects/p1/setParams"),
    ("POST", "/v1/batches"),
    ("POST", "/v1/batches/b1/setMetadata"),
    ("POST", "/v1/task/imageannotation"),
    ("POST", "/v1/evaluation_tasks/imageannotation"),
    ("POST", "/v1/teams/invite"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"name": }', b"{'single': 'quotes'}", b"\xff\xfe{}", b'{"a": 1} trailing', b"NaN"],
    ids=["open", "missing-value", "single-quotes", "not-utf8", "trailing", "nan"],
)
def test_malformed_json(
    http: httpx.Client,
    key: httpx.BasicAuth,
    nothing_written: None,
    method: str,
    path: str,
    raw: bytes,
) -> None:
    r = http.request(
        method, path, content=raw, headers={"Content-Type": "application/json"}, auth=key
    )
    scale_error(r, 400, "body")


def test_malformed_json_on_task_paths(http: httpx.Client, key: httpx.BasicAuth) -> None:
    tid = http.post("/v1/task/imageannotation", json=VALID_TASK, auth=key).json()["task_id"]
    ct = {"Content-Type": "application/json"}
    for method, suffix in (
        ("POST", "setMetadata"),
        ("POST", "tags"),
        ("PUT", "tags"),
        ("DELETE", "tags"),
        ("POST", "unique_id"),
        ("POST", "audit"),
    ):
        r = http.request(method, f"/v1/task/{tid}/{suffix}", content=b"[1,", headers=ct, auth=key)
        scale_error(r, 400, "body")
    doc = http.get(f"/v1/task/{tid}", auth=key).json()
    assert (doc["metadata"], doc["tags"]) == ({}, [])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("metadata", []),
        ("metadata", "k=v"),
        ("metadata", 3),
        ("tags", "a"),
        ("tags", [1, 2]),
        ("tags", ["a", None]),
        ("tags", {"a": 1}),
        ("tags", [["nested"]]),
        ("unique_id", 5),
        ("unique_id", ["u"]),
        ("unique_id", {"u": 1}),
        ("unique_id", True),
        ("unique_id", "u" * 501),
        ("project", 5),
        ("project", ["p1"]),
        ("project", {"name": "p1"}),
        ("batch", 7),
        ("batch", ["b1"]),
        ("callback_url", 5),
        ("callback_url", "not a url"),
        ("callback_url", "ftp://example.com/hook"),
        ("instruction", ["do", "it"]),
        ("priority", "high"),
        ("priority", 1.5),
        ("priority", 10**30),
        ("attachment", ["x"]),
        ("geometries", "box"),
    ],
)
def test_wrong_types_for_task_fields(
    http: httpx.Client, key: httpx.BasicAuth, nothing_written: None, field: str, value: Any
) -> None:
    body = {**VALID_TASK, "project": "p1", "unique_id": "fresh", field: value}
    scale_error(http.post("/v1/task/imageannotation", json=body, auth=key), 400, field)
    # the unique_id was not taken by the failed attempt
    if field != "unique_id":
        r = http.get("/v1/tasks", params={"unique_id": "fresh"}, auth=key)
        assert r.json()["docs"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 5, "type": "imageannotation"}, "name"),
        ({"name": "", "type": "imageannotation"}, "name"),
        ({"name": "   ", "type": "imageannotation"}, "name"),
        ({"name": "n" * 301, "type": "imageannotation"}, "name"),
        ({"name": "x", "type": ["imageannotation"]}, "type"),
        ({"name": "x", "type": "imageannotation", "params": "p"}, "params"),
        ({"name": "x", "type": "imageannotation", "rapid": "sometimes"}, "rapid"),
        ({"name": "x", "type": "imageannotation", "studio": 3}, "studio"),
        ({"name": "x", "type": "imageannotation", "datasetId": 5}, "datasetId"),
    ],
)
def test_wrong_types_for_project_fields(
    http: httpx.Client,
    key: httpx.BasicAuth,
    nothing_written: None,
    body: dict[str, Any],
    field: str,
) -> None:
    scale_error(http.post("/v1/projects", json=body, auth=key), 400, field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"project": 1, "name": "b2"}, "project"),
        ({"project": "p1", "name": ["b2"]}, "name"),
        ({"project": "p1", "name": ""}, "name"),
        ({"project": "p1", "name": "b2", "metadata": [1]}, "metadata"),
        ({"project": "p1", "name": "b2", "callback": 5}, "callback"),
        ({"project": "p1", "name": "b2", "callback": "nowhere"}, "callback"),
        ({"project": "p1", "name": "b2", "calibration_batch": "maybe"}, "calibration_batch"),
        ({"project": "p1", "name": "b2", "self_label_batch": 2}, "self_label_batch"),
    ],
)
def test_wrong_types_for_batch_fields(
    http: httpx.Client,
    key: httpx.BasicAuth,
    nothing_written: None,
    body: dict[str, Any],
    field: str,
) -> None:
    scale_error(http.post("/v1/batches", json=body, auth=key), 400, field)


@pytest.mark.parametrize(
    "body",
    [None, [], [VALID_TASK], "task", 42],
    ids=["empty", "empty-list", "list", "string", "number"],
)
def test_task_body_must_be_an_object(
    http: httpx.Client, key: httpx.BasicAuth, nothing_written: None, body: Any
) -> None:
    content = b"" if body is None else json.dumps(body).encode()
    r = http.post(
        "/v1/task/imageannotation",
        content=content,
        headers={"Content-Type": "application/json"},
        auth=key,
    )
    scale_error(r, 400, "body")


@pytest.mark.parametrize(
    ("type_name", "body", "field"),
    [
        ("imageannotation", {"geometries": BOXES}, "attachment"),
        ("imageannotation", {"attachment": IMAGE}, "geometries"),
        ("categorization", {"attachment": "x", "attachment_type": "text"}, "categories"),
        ("categorization", {"categories": ["a", "b"]}, "attachment"),
        ("comparison", {"choices": ["A", "B"]}, "attachments"),
        (
            "textcollection",
            {"fields": [{"type": "text", "field_id": "f", "title": "F"}]},
            "attachments",
        ),
        ("namedentityrecognition", {"labels": ["x"]}, "text"),
    ],
)
def test_missing_required_type_params(
    http: httpx.Client,
    key: httpx.BasicAuth,
    nothing_written: None,
    type_name: str,
    body: dict[str, Any],
    field: str,
) -> None:
    scale_error(
        http.post(f"/v1/task/{type_name}", json={**body, "unique_id": "x"}, auth=key), 400, field
    )


def test_oversized_bodies_are_413(
    http: httpx.Client, key: httpx.BasicAuth, server: LiveServer, nothing_written: None
) -> None:
    limit = server.settings.max_body_bytes
    big = {**VALID_TASK, "metadata": {"blob": "x" * (limit + 10)}}
    data = json.dumps(big).encode()
    scale_error(
        http.post(
            "/v1/task/imageannotation",
            content=data,
            headers={"Content-Type": "application/json"},
            auth=key,
        ),
        413,
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count as it reads
        for i in range(0, len(data), 1 << 20):
            yield data[i : i + (1 << 20)]

    r = http.post(
        "/v1/task/imageannotation",
        content=chunks(),
        headers={"Content-Type": "application/json"},
        auth=key,
    )
    scale_error(r, 413)
    scale_error(
        http.post(
            "/v1/projects", content=data, headers={"Content-Type": "application/json"}, auth=key
        ),
        413,
    )
    # the connection and the server are still fine afterwards
    assert http.get("/v1/projects/p1", auth=key).status_code == 200


def test_values_the_databases_cannot_store(
    http: httpx.Client, key: httpx.BasicAuth, nothing_written: None
) -> None:
    ct = {"Content-Type": "application/json"}
    bodies = {  # the tail of the body → the field the error must name
        b', "metadata": {"x": NaN}}': "body",
        b', "metadata": {"x": -Infinity}}': "body",
        b', "metadata": {"x": 1e999}}': "body",
        b', "metadata": {"x": "a\\u0000b"}}': "metadata.x",
        b', "metadata": {"x": "\\ud800"}}': "metadata.x",
        b', "metadata": {"\\u0000": 1}}': "metadata",
        b', "unique_id": "\\u0000"}': "unique_id",
        b', "tags": ["ok", "\\udc00x"]}': "tags.1",
    }
    for tail, field in bodies.items():
        r = http.post("/v1/task/imageannotation", content=HEAD + tail, headers=ct, auth=key)
        scale_error(r, 400, field)
    text = (
        json.dumps({**VALID_TASK, "metadata": {}})[:-3] + "{" + '"d": {' * 5000 + "}" * 5001 + "}"
    )
    r = http.post("/v1/task/imageannotation", content=text.encode(), headers=ct, auth=key)
    scale_error(r, 400, "body")
    r = http.post("/v1/projects", content=b"[" * 100_000 + b"]" * 100_000, headers=ct, auth=key)
    scale_error(r, 400, "body")


def test_integers_past_64_bits_are_refused_by_name(
    http: httpx.Client, key: httpx.BasicAuth
) -> None:
    ct = {"Content-Type": "application/json"}
    big = HEAD + b', "metadata": {"ids": [1, 123456789012345678901234567890]}}'
    r = http.post("/v1/task/imageannotation", content=big, headers=ct, auth=key)
    scale_error(r, 400, "metadata.ids.1")
    edge = HEAD + b', "metadata": {"lo": -9223372036854775808, "hi": 18446744073709551615}}'
    r = http.post("/v1/task/imageannotation", content=edge, headers=ct, auth=key)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"] == {"lo": -(2**63), "hi": 2**64 - 1}


def test_surrogate_pairs_are_fine(http: httpx.Client, key: httpx.BasicAuth) -> None:
    emoji = HEAD + b', "metadata": {"x": "\\ud83d\\ude00"}}'  # as json.dumps escapes it
    r = http.post(
        "/v1/task/imageannotation",
        content=emoji,
        headers={"Content-Type": "application/json"},
        auth=key,
    )
    assert r.status_code == 200, r.text
    assert r.json()["metadata"] == {"x": "\U0001f600"}


def test_nul_in_paths_and_queries(http: httpx.Client, key: httpx.BasicAuth) -> None:
    for path in (
        "/v1/projects/a%00b",
        "/v1/batches/a%00b",
        "/v1/task/a%00b",
        "/v1/batches/a%00b/status",
    ):
        r = http.get(path, auth=key)
        assert r.status_code in (400, 404), (path, r.status_code, r.text)
        scale_error(r, r.status_code)
    for params in (
        {"project": "a\x00b"},
        {"unique_id": "\x00"},
        {"tags": "\x00"},
        {"batch": "\x00"},
    ):
        r = http.get("/v1/tasks", params=params, auth=key)
        assert r.status_code in (400, 404), (params, r.status_code, r.text)
    r = http.get("/v1/batches", params={"project": "\x00"}, auth=key)
    assert r.status_code in (400, 404), r.text


def test_out_of_range_numbers_in_queries(http: httpx.Client, key: httpx.BasicAuth) -> None:
    huge = base64.urlsafe_b64encode(b"s" + b"9" * 30).decode().rstrip("=")
    scale_error(http.get("/v1/tasks", params={"next_token": huge}, auth=key), 400, "next_token")
    negative = base64.urlsafe_b64encode(b"s-5").decode().rstrip("=")
    scale_error(http.get("/v1/tasks", params={"next_token": negative}, auth=key), 400, "next_token")
    scale_error(http.get("/v1/tasks", params={"limit": 10**30}, auth=key), 400, "limit")
    r = http.get("/v1/batches", params={"offset": 10**30}, auth=key)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert r.json()["docs"] == []
    else:
        scale_error(r, 400, "offset")
    scale_error(http.get("/v1/tasks", params={"start_time": "9" * 40}, auth=key), 400, "start_time")
    scale_error(
        http.get("/v1/tasks", params={"start_time": "99999-01-01"}, auth=key), 400, "start_time"
    )


def test_unknown_project_or_batch_in_a_task_leaves_nothing(
    http: httpx.Client, key: httpx.BasicAuth, nothing_written: None
) -> None:
    scale_error(
        http.post("/v1/task/imageannotation", json={**VALID_TASK, "project": "nope"}, auth=key),
        404,
        "nope",
    )
    scale_error(
        http.post("/v1/task/imageannotation", json={**VALID_TASK, "batch": "nope"}, auth=key),
        404,
        "nope",
    )
    scale_error(http.post("/v1/task/lidarsegmentation", json=VALID_TASK, auth=key), 402)
    scale_error(
        http.post("/v1/batches", json={"project": "nope", "name": "b9"}, auth=key), 404, "nope"
    )
