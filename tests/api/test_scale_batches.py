"""Scenario 2 (batch + tasks + paging) and the batch half of scenario 10 (listing)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from scaleapi.batches import BatchStatus
from scaleapi.exceptions import (
    ScaleDuplicateResource,
    ScaleInvalidRequest,
    ScaleResourceNotFound,
)
from scaleapi.tasks import TaskType

from tests.api.helpers import auth, client, image_project, image_task, scale_error
from tests.conftest import LiveServer, Org


def test_batch_tasks_and_paging(server: LiveServer, org: Org, http: httpx.Client) -> None:
    c = client(server, org.test_key)
    c.create_project("p1", TaskType.ImageAnnotation, params={"instruction": "Box cars"})
    batch = c.create_batch("p1", "b1")
    assert batch.name == "b1"
    assert batch.project == "p1"
    assert batch.status == BatchStatus.InProgress.value  # a fresh ordinary batch starts at once
    assert batch.metadata == {}
    assert batch.created_at

    ids = [image_task(c, batch="b1", unique_id=str(uuid.uuid4())).id for _ in range(3)]
    finalized = c.finalize_batch("b1")  # idempotent on a batch that is not staging
    assert finalized.name == "b1"

    seen = list(c.get_tasks(project_name="p1", batch_name="b1", limit=2))
    assert [t.id for t in seen] == ids
    assert c.get_tasks_count(project_name="p1", batch_name="b1") == 3
    assert c.get_tasks_count(batch_name="b1") == 3

    # the raw pages: has_more and next_token agree, total is the full count
    page1 = http.get(
        "/v1/tasks", params={"batch": "b1", "limit": 2}, auth=auth(org.test_key)
    ).json()
    assert (page1["has_more"], len(page1["docs"]), page1["total"], page1["limit"]) == (
        True,
        2,
        3,
        2,
    )
    assert page1["next_token"]
    page2 = http.get(
        "/v1/tasks",
        params={"batch": "b1", "limit": 2, "next_token": page1["next_token"]},
        auth=auth(org.test_key),
    ).json()
    assert (page2["has_more"], len(page2["docs"]), page2["total"]) == (False, 1, 3)
    assert page2["next_token"] is None
    assert [d["task_id"] for d in page1["docs"] + page2["docs"]] == ids

    got = c.get_batch("b1")
    status = got.get_status()
    assert status["status"] == got.status
    assert (got.tasks_pending, got.tasks_completed, got.tasks_error, got.tasks_canceled) == (
        0,
        3,
        0,
        0,
    )


def test_batch_status_counts_with_live_tasks(server: LiveServer, org: Org) -> None:
    c = client(server, org.live_key)
    image_project(c, "p1")
    c.create_batch("p1", "b1")
    tasks = [image_task(c, batch="b1") for _ in range(3)]
    c.cancel_task(tasks[0].id)
    batch = c.get_batch("b1")
    batch.get_status()
    assert (batch.tasks_pending, batch.tasks_completed, batch.tasks_canceled) == (2, 0, 1)
    assert batch.status == "in_progress"
    # canceling the rest ends the batch: every task is terminal
    for t in tasks[1:]:
        c.cancel_task(t.id)
    assert c.get_batch("b1").status == "completed"
    assert c.finalize_batch("b1").status == "completed"


def test_staging_batch_waits_for_finalize(server: LiveServer, org: Org) -> None:
    c = client(server, org.live_key)
    c.create_project("studio", TaskType.ImageAnnotation, studio=True)
    batch = c.create_batch("studio", "staged")
    assert batch.status == "staging"
    image_task(c, batch="staged")
    assert c.finalize_batch("staged").status == "in_progress"
    assert c.finalize_batch("staged").status == "in_progress"  # finalize is idempotent
    assert batch.finalize().status == "in_progress"
    calib = c.create_batch("studio", "calib", calibration_batch=True)
    assert calib.status == "staging"
    assert c.get_batch("calib").as_dict()["calibration_batch"] is True


def test_batch_errors(server: LiveServer, org: Org, http: httpx.Client) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    c.create_batch("p1", "b1")
    with pytest.raises(ScaleDuplicateResource):
        c.create_batch("p1", "b1")
    with pytest.raises(ScaleResourceNotFound):
        c.create_batch("no-such-project", "b2")
    with pytest.raises(ScaleResourceNotFound):
        c.get_batch("nope")
    with pytest.raises(ScaleResourceNotFound):
        c.finalize_batch("nope")
    with pytest.raises(ScaleResourceNotFound):
        c.batch_status("nope")
    with pytest.raises(ScaleResourceNotFound):
        c.set_batch_metadata("nope", {"a": 1})
    with pytest.raises(ScaleResourceNotFound):
        image_task(c, batch="nope")
    # a task naming a batch of another project is refused
    image_project(c, "p2")
    with pytest.raises(ScaleInvalidRequest) as info:
        image_task(c, project="p2", batch="b1")
    assert "batch" in info.value.message.lower()
    key = auth(org.test_key)
    scale_error(http.post("/v1/batches", json={"project": "p1", "name": "b1"}, auth=key), 409, "b1")
    scale_error(http.post("/v1/batches", json={"project": "p1"}, auth=key), 400, "name")
    scale_error(http.post("/v1/batches", json={"name": "x"}, auth=key), 400, "project")
    scale_error(
        http.post("/v1/batches", json={"project": "p1", "name": "x", "metadata": "m"}, auth=key),
        400,
        "metadata",
    )
    scale_error(http.post("/v1/batches", json=[1, 2], auth=key), 400, "body")
    scale_error(http.post("/v1/batches/b1/setMetadata", json=["x"], auth=key), 400, "metadata")
    scale_error(http.get("/v1/batches", params={"status": "bogus"}, auth=key), 400, "status")


def test_batch_metadata(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    created = c.create_batch("p1", "b1", metadata={"source": "camera-7"})
    assert created.metadata == {"source": "camera-7"}
    updated = c.set_batch_metadata("b1", {"k": "v", "n": [1, 2]})
    assert updated.metadata == {"k": "v", "n": [1, 2]}  # replaced, not merged
    assert c.get_batch("b1").metadata == {"k": "v", "n": [1, 2]}


@pytest.mark.parametrize("batch_name", ["night run/2", "a b%2Fc", "x?y#z"])
def test_batch_names_round_trip(server: LiveServer, org: Org, batch_name: str) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    c.create_batch("p1", batch_name)
    assert c.get_batch(batch_name).name == batch_name
    task = image_task(c, batch=batch_name)
    assert task.batch == batch_name
    assert c.finalize_batch(batch_name).name == batch_name
    assert c.batch_status(batch_name)["completed"] == 1
    assert c.set_batch_metadata(batch_name, {"a": 1}).metadata == {"a": 1}
    assert [t.id for t in c.get_tasks(batch_name=batch_name)] == [task.id]


def test_batches_listing(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    image_project(c, "p2")
    names = [f"b{i}" for i in range(5)]
    for n in names:
        c.create_batch("p1", n)
    c.create_batch("p2", "elsewhere")
    assert [b.name for b in c.get_batches(project_name="p1")] == names
    first = c.batches(project="p1", limit=1)
    assert first.total == 5
    assert first.limit == 1
    assert first.has_more is True
    assert len(first.docs) == 1
    last = c.batches(project="p1", limit=2, offset=4)
    assert [b.name for b in last.docs] == ["b4"]
    assert last.has_more is False
    assert c.batches(limit=100).total == 6
    assert {b.name for b in c.get_batches(batch_status=BatchStatus.InProgress)} == {
        *names,
        "elsewhere",
    }
    assert list(c.get_batches(batch_status=BatchStatus.Completed)) == []
    assert list(c.get_batches(project_name="p1", created_after="2999-01-01")) == []
    assert (
        len(list(c.get_batches(project_name="p1", created_before="2999-01-01 00:00:00.000000")))
        == 5
    )
    assert len(list(c.get_batches(project_name="p1", exclude_archived=True))) == 5
    # a bound copied from a batch (millisecond precision) includes that batch
    b2 = c.get_batch("b2")
    window = c.get_batches(
        project_name="p1", created_after=b2.created_at, created_before=b2.created_at
    )
    assert "b2" in [b.name for b in window]
    with pytest.raises(ScaleResourceNotFound):
        c.batches(project="missing")


def test_batches_raw_envelope(http: httpx.Client, org: Org, server: LiveServer) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    c.create_batch("p1", "b1")
    r = http.get(
        "/v1/batches",
        params={"project": "p1", "exclude_archived": "True", "limit": 10},
        auth=auth(org.test_key),
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"docs", "totalDocs", "limit", "offset", "has_more"}
    assert "total" not in body  # batches use totalDocs
    assert (body["totalDocs"], body["limit"], body["offset"], body["has_more"]) == (1, 10, 0, False)
    assert {"name", "status", "project", "created_at", "metadata"} <= set(body["docs"][0])


def test_batches_are_separated_by_environment_and_org(
    server: LiveServer, org: Org, other_org: Org
) -> None:
    test = client(server, org.test_key)
    image_project(test, "p1")
    test.create_batch("p1", "b1")
    live = client(server, org.live_key)
    other = client(server, other_org.test_key)
    for outsider in (live, other):
        with pytest.raises(ScaleResourceNotFound):
            outsider.get_batch("b1")
        with pytest.raises(ScaleResourceNotFound):
            outsider.finalize_batch("b1")
        with pytest.raises(ScaleResourceNotFound):
            outsider.batch_status("b1")
        with pytest.raises(ScaleResourceNotFound):
            outsider.set_batch_metadata("b1", {"x": 1})
        assert outsider.batches().total == 0
    assert test.get_batch("b1").metadata == {}


def test_get_batches_pages_past_the_first_hundred(
    server: LiveServer, org: Org, http: httpx.Client
) -> None:
    """``get_batches`` sends no limit and steps ``offset`` by the reply's ``limit`` until
    ``has_more`` is false: more than one default page must come back whole."""
    key = auth(org.live_key)
    assert (
        http.post(
            "/v1/projects", json={"name": "many", "type": "imageannotation"}, auth=key
        ).status_code
        == 200
    )
    names = [f"batch-{i:03d}" for i in range(105)]
    for n in names:
        assert (
            http.post("/v1/batches", json={"project": "many", "name": n}, auth=key).status_code
            == 200
        )
    c = client(server, org.live_key)
    assert [b.name for b in c.get_batches(project_name="many")] == names
    assert c.batches(project="many", limit=1).total == 105
    tail = c.batches(project="many", offset=100)
    assert (len(tail.docs), tail.limit, tail.has_more) == (5, 100, False)
