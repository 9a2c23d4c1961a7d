"""Scenario 3 (unique_id idempotency) and the client's 5xx → 409 recovery GET."""

from __future__ import annotations

import types
import uuid
from typing import Any

import httpx
import pytest
import requests
import scaleapi
from scaleapi.exceptions import ScaleDuplicateResource, ScaleInvalidRequest
from scaleapi.tasks import TaskType
from urllib3.util.retry import RequestHistory

from tests.api.helpers import auth, client, image_project, image_task
from tests.conftest import LiveServer, Org


def test_unique_id_lifecycle(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    first = image_task(c, unique_id="u-1")
    assert first.unique_id == "u-1"
    with pytest.raises(ScaleDuplicateResource) as dup:
        image_task(c, unique_id="u-1")
    assert first.id in dup.value.message
    assert "u-1" in dup.value.message
    assert c.tasks(unique_id="u-1").docs[0].id == first.id
    assert c.tasks(unique_id="u-1").total == 1

    # test-key tasks are completed, so make a pending one to cancel with clear_unique_id
    live = client(server, org.live_key)
    pending = image_task(live, unique_id="u-1")
    canceled = live.cancel_task(pending.id, clear_unique_id=True)
    assert canceled.status == "canceled"
    assert "unique_id" not in canceled.as_dict()
    reborn = image_task(live, unique_id="u-1")
    assert reborn.id != pending.id
    assert live.tasks(unique_id="u-1").docs[0].id == reborn.id

    second = image_task(c, unique_id="u-2")
    with pytest.raises(ScaleDuplicateResource) as taken:
        c.update_task_unique_id(second.id, "u-1")
    assert first.id in taken.value.message
    assert c.get_task(second.id).unique_id == "u-2"
    assert c.update_task_unique_id(second.id, "u-2").unique_id == "u-2"  # same value: no-op
    assert c.update_task_unique_id(second.id, "u-3").unique_id == "u-3"
    image_task(c, unique_id="u-2")  # the old value is free again

    cleared = c.clear_task_unique_id(first.id)
    assert "unique_id" not in cleared.as_dict()
    assert "unique_id" not in c.get_task(first.id).as_dict()
    assert c.clear_task_unique_id(first.id).id == first.id  # clearing twice is fine
    assert image_task(c, unique_id="u-1").id != first.id


def test_unique_id_spans_projects_and_types(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    c.create_project("p2", TaskType.Categorization)
    first = image_task(c, project="p1", unique_id="global")
    with pytest.raises(ScaleDuplicateResource) as dup:
        c.create_task(
            TaskType.Categorization,
            project="p2",
            attachment="a sentence",
            attachment_type="text",
            categories=["x", "y"],
            unique_id="global",
        )
    assert first.id in dup.value.message
    assert c.get_tasks_count(project_name="p2") == 0


def test_unique_id_filter_takes_many_values(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    ids = {image_task(c, project="p1", unique_id=f"m-{i}").id for i in range(3)}
    image_task(c, project="p1", unique_id="other")
    found = c.tasks(unique_id=["m-0", "m-1", "m-2", "missing"])  # repeated query keys
    assert {t.id for t in found.docs} == ids
    assert found.total == 3
    assert {t.id for t in c.get_tasks(project_name="p1", unique_id=["m-0", "m-2"])} < ids


def test_unique_id_must_be_a_string_when_changed(
    http: httpx.Client, org: Org, server: LiveServer
) -> None:
    c = client(server, org.test_key)
    task = image_task(c)
    key = auth(org.test_key)
    for body in ({"unique_id": 5}, {"unique_id": ""}, {}, ["u"]):
        r = http.post(f"/v1/task/{task.id}/unique_id", json=body, auth=key)
        assert r.status_code == 400, (body, r.text)
        assert "unique_id" in r.json()["error"] or "body" in r.json()["error"]
    with pytest.raises(ScaleInvalidRequest):
        c.update_task_unique_id(task.id, "")


@pytest.mark.parametrize(
    "unique_id", [str(uuid.uuid4()), "with space", "plus+sign", "a b+c", "ü/é", "100%"]
)
def test_client_recovers_after_a_5xx_then_409(
    server: LiveServer, org: Org, monkeypatch: pytest.MonkeyPatch, unique_id: str
) -> None:
    """Over https the client retries a create that got a 5xx; when the retry gets 409 it looks
    the task up with ``GET tasks?unique_id=<raw value, not URL-encoded>`` and returns it. Here
    the first attempt's task exists and the create answers 409; the 5xx is written into the
    response's retry history, exactly as urllib3 would have, so the client's own recovery code
    runs against the server."""
    c = client(server, org.live_key)
    original = image_task(c, unique_id=unique_id, metadata={"attempt": 1})
    real = scaleapi.api.Api._http_request
    calls: list[tuple[str, str]] = []

    def after_retry(method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        res = real(method, url, *args, **kwargs)
        calls.append((method, url))
        if method == "POST":
            assert res.status_code == 409, res.text
            history = (RequestHistory(method, url, None, 503, None),)
            res.raw = types.SimpleNamespace(retries=types.SimpleNamespace(history=history))
        return res

    monkeypatch.setattr(scaleapi.api.Api, "_http_request", staticmethod(after_retry))
    recovered = image_task(c, unique_id=unique_id, metadata={"attempt": 2})
    assert recovered.id == original.id
    assert recovered.metadata == {"attempt": 1}
    assert [m for m, _ in calls] == ["POST", "GET"]
    assert c.tasks(unique_id=unique_id).total == 1
