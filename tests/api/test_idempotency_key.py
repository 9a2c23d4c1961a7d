"""``Idempotency-Key``: a repeated request replays the first response instead of redoing it."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import LiveServer, Org, basic


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
