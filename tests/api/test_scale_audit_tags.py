"""Scenario 6 (audits and review-status filters) and scenario 7 (metadata and tags)."""

from __future__ import annotations

import httpx
import pytest
from scaleapi.exceptions import ScaleInvalidRequest
from scaleapi.tasks import TaskReviewStatus

from tests.api.helpers import auth, client, image_project, image_task, scale_error
from tests.conftest import LiveServer, Org


def test_audit_flow(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    rejected = image_task(c, project="p1")
    accepted = image_task(c, project="p1")
    untouched = image_task(c, project="p1")
    assert "customer_review_status" not in untouched.as_dict()

    assert c.audit_task(rejected.id, accepted=False, comments="wrong label") is None
    doc = c.get_task(rejected.id).as_dict()
    assert doc["customer_review_status"] == "rejected"
    assert doc["customer_review_comments"] == ["wrong label"]
    assert doc["audits"][-1]["audit_result"] == "rejected"
    assert doc["status"] == "completed"
    accepted.audit(True)
    assert c.get_task(accepted.id).customer_review_status == "accepted"
    assert c.get_task(accepted.id).customer_review_comments == []

    # a second audit changes the verdict and appends the comment
    c.audit_task(rejected.id, accepted=True, comments="fine after all")
    again = c.get_task(rejected.id).as_dict()
    assert again["customer_review_status"] == "accepted"
    assert again["customer_review_comments"] == ["wrong label", "fine after all"]
    assert [a["audit_result"] for a in again["audits"]] == ["rejected", "accepted"]
    c.audit_task(rejected.id, accepted=False)

    found = list(
        c.get_tasks(
            project_name="p1", review_status=[TaskReviewStatus.Rejected, TaskReviewStatus.Fixed]
        )
    )
    assert [t.id for t in found] == [rejected.id]
    both = c.get_tasks(
        project_name="p1", review_status=[TaskReviewStatus.Rejected, TaskReviewStatus.Accepted]
    )
    assert {t.id for t in both} == {rejected.id, accepted.id}
    assert [
        t.id for t in c.get_tasks(project_name="p1", review_status=TaskReviewStatus.Accepted)
    ] == [accepted.id]
    assert c.get_tasks_count(project_name="p1", review_status=TaskReviewStatus.Accepted) == 1


def test_auditing_a_pending_task_is_invalid(server: LiveServer, org: Org) -> None:
    c = client(server, org.live_key)
    task = image_task(c)
    with pytest.raises(ScaleInvalidRequest) as info:
        c.audit_task(task.id, accepted=True)
    assert "pending" in info.value.message
    c.cancel_task(task.id)
    with pytest.raises(ScaleInvalidRequest):
        c.audit_task(task.id, accepted=False, comments="no")
    assert "customer_review_status" not in c.get_task(task.id).as_dict()


def test_audit_body_is_checked(http: httpx.Client, org: Org, server: LiveServer) -> None:
    task = image_task(client(server, org.test_key))
    key = auth(org.test_key)
    scale_error(http.post(f"/v1/task/{task.id}/audit", json={}, auth=key), 400, "accepted")
    scale_error(
        http.post(f"/v1/task/{task.id}/audit", json={"accepted": "yes"}, auth=key), 400, "accepted"
    )
    scale_error(
        http.post(f"/v1/task/{task.id}/audit", json={"accepted": True, "comments": 3}, auth=key),
        400,
        "comments",
    )
    scale_error(http.post(f"/v1/task/{task.id}/audit", auth=key), 400, "body")
    assert "customer_review_status" not in http.get(f"/v1/task/{task.id}", auth=key).json()


def test_review_status_comma_list_and_repeated_keys(
    http: httpx.Client, org: Org, server: LiveServer
) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    a, f, r = (image_task(c, project="p1") for _ in range(3))
    c.audit_task(a.id, True)
    c.audit_task(r.id, False)
    key = auth(org.test_key)
    # exactly what the client sends for a list: one comma-joined, percent-encoded value
    url = "/v1/tasks?project=p1&customer_review_status=accepted%2Crejected"
    assert {d["task_id"] for d in http.get(url, auth=key).json()["docs"]} == {a.id, r.id}
    repeated = http.get(
        "/v1/tasks",
        params=[
            ("project", "p1"),
            ("customer_review_status", "accepted"),
            ("customer_review_status", "fixed"),
        ],
        auth=key,
    )
    assert [d["task_id"] for d in repeated.json()["docs"]] == [a.id]
    scale_error(
        http.get("/v1/tasks", params={"customer_review_status": "accepted,bogus"}, auth=key),
        400,
        "customer_review_status",
    )
    assert f.id not in {d["task_id"] for d in http.get(url, auth=key).json()["docs"]}


def test_metadata(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    task = image_task(c, metadata={"original": True, "nested": {"a": [1, 2]}})
    assert task.metadata == {"original": True, "nested": {"a": [1, 2]}}
    updated = c.set_task_metadata(task.id, {"k": "v"})
    assert updated.metadata == {"k": "v"}  # replaced, not merged
    task.refresh()
    assert task.metadata == {"k": "v"}
    task.set_metadata({"k2": "v2"})
    assert c.get_task(task.id).metadata == {"k2": "v2"}
    # the client sends ``body or None``, so clearing arrives as an empty body
    assert c.set_task_metadata(task.id, {}).metadata == {}
    assert c.get_task(task.id).metadata == {}


def test_tags(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    task = image_task(c, project="p1", tags=["x"])
    other = image_task(c, project="p1", tags=["b"])
    assert task.tags == ["x"]
    assert c.set_task_tags(task.id, ["a", "b"]).tags == ["a", "b"]
    assert c.add_task_tags(task.id, ["b", "c"]).tags == ["a", "b", "c"]
    assert c.delete_task_tags(task.id, ["a"]).tags == ["b", "c"]
    assert c.get_task(task.id).tags == ["b", "c"]

    assert [t.task_id for t in c.tasks(project="p1", tags=["b", "c"]).docs] == [task.id]
    assert {t.task_id for t in c.tasks(project="p1", tags="b").docs} == {task.id, other.id}
    assert [t.id for t in c.get_tasks(project_name="p1", tags=["c"])] == [task.id]
    assert c.tasks(project="p1", tags=["a"]).docs == []
    assert c.get_tasks_count(project_name="p1", tags=["b"]) == 2

    assert c.delete_task_tags(task.id, ["not-there"]).tags == ["b", "c"]
    assert c.add_task_tags(task.id, ["c", "c", "d"]).tags == ["b", "c", "d"]
    assert c.delete_task_tags(task.id, []).tags == ["b", "c", "d"]  # arrives body-less: no-op
    assert c.set_task_tags(task.id, []).tags == []  # arrives body-less: clears
    assert c.tasks(project="p1", tags=["c"]).docs == []
    task.add_tags(["z"])
    assert c.get_task(task.id).tags == ["z"]


def test_tag_bodies_are_checked(http: httpx.Client, org: Org, server: LiveServer) -> None:
    task = image_task(client(server, org.test_key), tags=["keep"])
    key = auth(org.test_key)
    for body in ({"tags": ["a"]}, ["a", 1], "a", [["a"]], [None]):
        for method in ("POST", "PUT", "DELETE"):
            r = http.request(method, f"/v1/task/{task.id}/tags", json=body, auth=key)
            scale_error(r, 400, "tags")
    scale_error(
        http.post(f"/v1/task/{task.id}/tags", json=[str(i) for i in range(101)], auth=key),
        400,
        "tags",
    )
    assert http.get(f"/v1/task/{task.id}", auth=key).json()["tags"] == ["keep"]


def test_batch_metadata_is_reflected(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    c.create_batch("p1", "b1", metadata={"a": 1})
    c.set_batch_metadata("b1", {"b": 2})
    assert c.get_batch("b1").metadata == {"b": 2}
    assert c.set_batch_metadata("b1", {}).metadata == {}
    assert c.get_batch("b1").metadata == {}


def test_audit_with_a_corrected_response(http: httpx.Client, org: Org, server: LiveServer) -> None:
    """Steelyard extension: an audit may carry the fixed response (kept in prior_responses)."""
    c = client(server, org.test_key)
    task = image_task(c)
    before = c.get_task(task.id).response
    key = auth(org.test_key)
    box = {"type": "box", "label": "car", "left": 1, "top": 2, "width": 3, "height": 4}
    scale_error(
        http.post(
            f"/v1/task/{task.id}/audit",
            json={"accepted": False, "response": {"annotations": [{**box, "label": "cat"}]}},
            auth=key,
        ),
        400,
        "response.annotations.0.label",
    )
    r = http.post(
        f"/v1/task/{task.id}/audit",
        json={"accepted": False, "response": {"annotations": [box]}},
        auth=key,
    )
    assert r.status_code == 200, r.text
    after = c.get_task(task.id).as_dict()
    assert after["customer_review_status"] == "fixed"
    assert after["prior_responses"] == [before]
    assert after["response"]["annotations"][0]["width"] == 3
    assert c.tasks(customer_review_status="fixed").docs[0].task_id == task.id
