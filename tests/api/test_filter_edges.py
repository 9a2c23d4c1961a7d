"""Hostile but well-formed list and get requests answer 4xx naming the field, never 5xx
(issue 7, defect 8).

Time filters at the ends of the calendar used to answer 500 (``OverflowError`` converting
``0001-01-01T00:00:00+01:00`` to UTC), ``GET /v1/tasks`` with 990 tags 500 on SQLite (expression
depth) and ran for minutes on PostgreSQL (planning one semi-join per tag). The parameters tried
here come from the OpenAPI document, so a parameter added later is tried too.
"""

from __future__ import annotations

import base64
import http.client
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import pytest

from steelyard.tasks import repository, service
from tests.api.helpers import BOXES, IMAGE, auth, scale_error
from tests.conftest import LiveServer, Org

TIME_PARAM_SUFFIXES = ("_time", "_after", "_before")
#: Request heads past this are refused by the HTTP server itself (httptools cannot parse a
#: request target over 64 KiB; ``steelyard serve`` caps heads there too): a 4xx, not ours.
HEAD_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Operation:
    path: str
    query: tuple[str, ...]
    path_params: tuple[str, ...]


def _get_operations(server: LiveServer) -> list[Operation]:
    """Every GET of the Scale APIs, with its query and path parameters."""
    found = []
    for path, operations in server.app.openapi()["paths"].items():
        op = operations.get("get")
        if op is None or not path.startswith(("/v1/", "/v2/")):
            continue
        params = op.get("parameters", [])
        found.append(
            Operation(
                path=path,
                query=tuple(p["name"] for p in params if p["in"] == "query"),
                path_params=tuple(p["name"] for p in params if p["in"] == "path"),
            )
        )
    return found


def _time_params(server: LiveServer) -> list[tuple[str, str]]:
    return [
        (op.path, name)
        for op in _get_operations(server)
        for name in op.query
        if name.endswith(TIME_PARAM_SUFFIXES)
    ]


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def raw_get(server: LiveServer, key: str, target: str) -> Answer:
    """GET ``target`` (path and query, sent exactly as given) with no client-side length cap:
    httpx refuses queries over 64 KiB, and some of these are meant to be longer."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
    token = base64.b64encode(f"{key}:".encode()).decode()
    try:
        conn.request("GET", target, headers={"Authorization": f"Basic {token}"})
        response = conn.getresponse()
        return Answer(response.status, response.read())
    finally:
        conn.close()


def _query(pairs: Iterable[tuple[str, str]]) -> str:
    return urlencode(list(pairs))


def _concrete(op: Operation, value: str = "x") -> str:
    path = op.path
    for name in op.path_params:
        path = path.replace("{" + name + "}", value)
    return path


def _check(answer: Answer, what: str, target: str) -> None:
    """Not a 5xx; a 4xx from the application is in Scale's shape, naming what it refuses."""
    assert answer.status < 500, (what, answer.status, answer.body[:300])
    if answer.status >= 400 and len(target) < HEAD_LIMIT - 1024:
        body = answer.json()
        assert body["status_code"] == answer.status and body["error"], (what, body)


# --- time filters ---------------------------------------------------------------------------


def test_the_time_filters_are_found(server: LiveServer) -> None:
    found = _time_params(server)
    assert len(found) == 16, found
    assert {
        ("/v1/tasks", "start_time"),
        ("/v1/tasks", "completed_before"),
        ("/v1/batches", "end_time"),
        ("/v2/tasks", "completed_after"),
        ("/v2/batches", "created_before"),
        ("/v2/projects", "created_after"),
    } <= set(found)


#: Instants outside datetime's range once converted to UTC → taken as the calendar's end,
#: i.e. the same answer as the latest/earliest instant written in UTC.
CLAMPED = {
    "0001-01-01T00:00:00+01:00": "0001-01-01T00:00:00Z",
    "0001-01-01T00:59:59.999999+23:59": "0001-01-01T00:00:00Z",
    "0001-01-01 00:00:00+01:00": "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00": "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:00:00.000-23:59": "9999-12-31T23:59:59.999999Z",
}
#: Valid in UTC: must simply work.
VALID = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "0001-01-01", "9999-12-31"]
#: Not an instant this server can represent or read: 400 naming the field.
REFUSED = [
    "10000-01-01",
    "99999-01-01T00:00:00Z",
    "1e20",
    "-1e20",
    "-62135596801",  # seconds since the epoch: year 0
    "253402300800",  # seconds since the epoch: year 10000
    "inf",
    "nan",
    "0000-12-31",
    "9999-12-31T23:59:59+24:00",
]


@pytest.fixture
def data(server: LiveServer, org: Org) -> str:
    """A test-environment project, batch and completed task (test keys complete at once), so
    that the windows below have something to include or leave out. Returns the key."""
    key = auth(org.test_key)
    with httpx.Client(base_url=server.url, auth=key, timeout=30) as http:
        r = http.post("/v1/projects", json={"name": "p1", "type": "imageannotation"})
        assert r.status_code == 200, r.text
        assert http.post("/v1/batches", json={"project": "p1", "name": "b1"}).status_code == 200
        body = {"attachment": IMAGE, "geometries": BOXES, "project": "p1", "batch": "b1"}
        r = http.post("/v1/task/imageannotation", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "completed"
    return org.test_key


def test_every_time_filter_at_the_ends_of_the_calendar(server: LiveServer, data: str) -> None:
    problems: list[str] = []
    for path, name in _time_params(server):
        for value in [*CLAMPED, *VALID, *REFUSED]:
            answer = raw_get(server, data, f"{path}?{_query([(name, value)])}")
            what = f"{path}?{name}={value}"
            if value in REFUSED:
                body = answer.json() if answer.status < 500 else {}
                if answer.status != 400 or body.get("field") != name:
                    problems.append(f"{what}: {answer.status} {answer.body[:200]!r}")
                continue
            if answer.status != 200:
                problems.append(f"{what}: {answer.status} {answer.body[:200]!r}")
            elif value in CLAMPED:
                same = raw_get(server, data, f"{path}?{_query([(name, CLAMPED[value])])}")
                if answer.json() != same.json():
                    problems.append(f"{what} differs from {name}={CLAMPED[value]}")
    assert not problems, "\n".join(problems)


def test_clamped_bounds_include_and_exclude_what_they_should(server: LiveServer, data: str) -> None:
    def ids(**params: str) -> int:
        answer = raw_get(server, data, f"/v1/tasks?{_query(params.items())}")
        assert answer.status == 200, answer.body
        return len(answer.json()["docs"])

    early, late = "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"
    assert ids(start_time=early) == ids(end_time=late) == ids(completed_after=early) == 1
    assert ids(start_time=late) == ids(end_time=early) == ids(completed_before=early) == 0


# --- many values ----------------------------------------------------------------------------


def test_tags_up_to_the_maximum_work_and_beyond_it_are_refused_by_name(
    server: LiveServer, org: Org
) -> None:
    most = repository.MAX_FILTER_TAGS
    assert most == service.MAX_TAGS  # a filter can ask for every tag a task may carry
    tags = [f"tag-{i:03d}" for i in range(most)]
    key = org.live_key
    with httpx.Client(base_url=server.url, auth=auth(key), timeout=60) as http:
        body = {"attachment": IMAGE, "geometries": BOXES, "tags": tags}
        r = http.post("/v1/task/imageannotation", json=body)
        assert r.status_code == 200, r.text
        task_id = r.json()["task_id"]
        body["tags"] = tags[:-1]
        assert http.post("/v1/task/imageannotation", json=body).status_code == 200
    for n in (1, 2, 3, 10, most - 1, most):
        started = time.monotonic()
        answer = raw_get(server, key, f"/v1/tasks?{_query(('tags', t) for t in tags[:n])}")
        seconds = time.monotonic() - started
        assert answer.status == 200, (n, answer.body[:300])
        docs = answer.json()["docs"]
        assert answer.json()["total"] == len(docs) == (2 if n < most else 1), n
        assert task_id in {d["task_id"] for d in docs}
        # PostgreSQL took 11 s to plan 100 tags as 100 semi-joins
        assert seconds < 5, (n, seconds)
    # repeated values count once
    repeated = raw_get(server, key, f"/v1/tasks?{_query(('tags', t) for t in tags * 10)}")
    assert repeated.status == 200 and repeated.json()["total"] == 1, repeated.body[:300]
    for n in (most + 1, 990, 1000):
        names = [f"t{i}" for i in range(n)]
        answer = raw_get(server, key, f"/v1/tasks?{_query(('tags', t) for t in names)}")
        assert answer.status == 400, (n, answer.status, answer.body[:300])
        assert answer.json()["field"] == "tags"
        assert str(most) in answer.json()["error"]
    # 10,000 tags do not fit in a request head the server accepts; 10,000 empty ones do
    answer = raw_get(server, key, f"/v1/tasks?{_query(('tags', f't{i}') for i in range(10_000))}")
    assert 400 <= answer.status < 500, answer.status
    answer = raw_get(server, key, f"/v1/tasks?{_query(('tags', '') for _ in range(10_000))}")
    assert answer.status == 200, answer.body[:300]


def _many(name: str, n: int) -> Iterator[tuple[str, str]]:
    return ((name, f"v{i}") for i in range(n))


def test_every_query_parameter_with_a_thousand_and_ten_thousand_values(
    server: LiveServer, org: Org, http: httpx.Client
) -> None:
    key = org.live_key
    problems: list[str] = []
    for op in _get_operations(server):
        base = _concrete(op)
        for name in op.query:
            for pairs in (
                list(_many(name, 1000)),
                list(_many(name, 10_000)),
                [(name, "")] * 10_000,
                [(name, ",".join(f"v{i}" for i in range(1000)))],
            ):
                target = f"{base}?{_query(pairs)}"
                try:
                    _check(raw_get(server, key, target), f"{base} {name} x{len(pairs)}", target)
                except AssertionError as exc:
                    problems.append(str(exc))
    assert not problems, "\n".join(problems)


# --- hostile single values ------------------------------------------------------------------

#: Sent exactly as written (already percent-encoded).
HOSTILE = [
    "-1",
    "0",
    "99999999999999999999999999999999",
    "1e308",
    "-9223372036854775809",
    "%ff",
    "%c3%28",
    "%ed%a0%80",  # an encoded UTF-16 surrogate
    "%e2%82",  # a truncated sequence
    "%",
    "x" * 10_000,
    quote("é" * 3000),
]


def test_every_query_and_path_parameter_with_hostile_values(server: LiveServer, org: Org) -> None:
    key = org.live_key
    problems: list[str] = []
    for op in _get_operations(server):
        for value in HOSTILE:
            targets = [f"{_concrete(op)}?{name}={value}" for name in op.query]
            targets.append(f"{_concrete(op)}?{value}={value}")
            if op.path_params:
                targets.append(_concrete(op, value))
            for target in targets:
                try:
                    _check(raw_get(server, key, target), target[:120], target)
                except AssertionError as exc:
                    problems.append(str(exc))
    assert not problems, "\n".join(problems)


def test_paging_numbers_out_of_range_name_the_field(http: httpx.Client, org: Org) -> None:
    key = auth(org.live_key)
    for path in ("/v1/tasks", "/v1/batches", "/v2/tasks", "/v2/batches"):
        for value in ("-1", "0", "101", "10000000000000000000000"):
            scale_error(http.get(path, params={"limit": value}, auth=key), 400, "limit")
    for value in ("-1", "10000000000000000000000"):
        scale_error(http.get("/v1/batches", params={"offset": value}, auth=key), 400, "offset")


# --- names longer than their columns --------------------------------------------------------


def test_names_longer_than_their_columns_answer_the_same_on_every_backend(
    http: httpx.Client, org: Org
) -> None:
    """PostgreSQL refuses a string longer than its VARCHAR where SQLite stores it: both must
    refuse it first, by name."""
    key = auth(org.live_key)
    long = "n" * 10_000
    r = http.post("/v1/projects", json={"name": "p1", "type": "imageannotation"}, auth=key)
    assert r.status_code == 200, r.text
    task = {"attachment": IMAGE, "geometries": BOXES}
    refusals: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/projects", {"name": long, "type": "imageannotation"}, "name"),
        ("/v1/batches", {"project": "p1", "name": long}, "name"),
        ("/v1/batches", {"project": long, "name": "b"}, "project"),
        ("/v2/batch", {"project_name": "p1", "name": long}, "name"),
        ("/v1/task/imageannotation", {**task, "unique_id": long}, "unique_id"),
        ("/v1/task/imageannotation", {**task, "project": long}, "project"),
        ("/v1/task/imageannotation", {**task, "batch": long}, "batch"),
        ("/v1/task/imageannotation", {**task, "tags": ["ok", long]}, "tags.1"),
    ]
    for path, body, field in refusals:
        scale_error(http.post(path, json=body, auth=key), 400, field)
    r = http.post("/v1/task/imageannotation", json=task, auth=key)
    assert r.status_code == 200, r.text
    task_id = r.json()["task_id"]
    scale_error(http.post(f"/v1/task/{task_id}/tags", json=[long], auth=key), 400, "tags.0")
    scale_error(http.put(f"/v1/task/{task_id}/tags", json=["a", long], auth=key), 400, "tags.1")
    # the longest that fits is stored
    tag = "t" * 300
    r = http.put(f"/v1/task/{task_id}/tags", json=[tag], auth=key)
    assert r.status_code == 200 and r.json()["tags"] == [tag], r.text
    # looked up by a name no column can hold: not found, alike on every backend
    for path in (f"/v1/projects/{long}", f"/v1/batches/{long}", f"/v1/task/{long}"):
        scale_error(http.get(path, auth=key), 404)
    for params in ({"project": long}, {"batch": long}):
        scale_error(http.get("/v1/tasks", params=params, auth=key), 404)
    for params in ({"tags": long}, {"unique_id": long}, {"type": long}):
        r = http.get("/v1/tasks", params=params, auth=key)
        assert r.status_code == 200 and r.json()["docs"] == [], r.text
