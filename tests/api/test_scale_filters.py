"""Scenario 8 (filters and time windows) and the query-string quirks of the client."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from scaleapi.exceptions import ScaleInvalidRequest
from scaleapi.tasks import TaskStatus, TaskType

from tests.api.helpers import IMAGE, auth, client, image_project, image_task, scale_error
from tests.conftest import LiveServer, Org


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _pause() -> None:
    time.sleep(0.01)  # distinct millisecond timestamps


def test_created_time_windows(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    a = image_task(c, project="p1")
    _pause()
    b = image_task(c, project="p1")
    _pause()
    d = image_task(c, project="p1")

    def ids(**kw: str) -> list[str]:
        return [t.task_id for t in c.tasks(project="p1", **kw).docs]

    # an empty window
    assert c.tasks(start_time="2000-01-01", end_time="2000-01-02").docs == []
    assert c.tasks(start_time="2999-01-01 00:00:00.000000").docs == []
    # the client's docstring format, ISO with T and Z, and offsets all work
    assert ids(start_time="2000-01-01 00:00:00.000000", end_time="2999-01-01 00:00:00.000000") == [
        a.id,
        b.id,
        d.id,
    ]
    # bounds are inclusive, including at the millisecond precision the API writes them
    assert ids(start_time=b.created_at, end_time=b.created_at) == [b.id]
    assert ids(end_time=a.created_at) == [a.id]
    assert ids(start_time=d.created_at) == [d.id]
    b_at = _at(b.created_at)
    assert ids(start_time=b_at.isoformat(), end_time=_at(d.created_at).isoformat()) == [b.id, d.id]
    plus_two = b_at.astimezone(timezone_plus_two())
    assert ids(start_time=plus_two.isoformat(), end_time=plus_two.isoformat()) == [b.id]
    naive = b_at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    assert ids(start_time=naive, end_time=naive) == [b.id]  # naive is UTC
    # the get_tasks helpers map created_after/before onto start_time/end_time
    assert [t.id for t in c.get_tasks(project_name="p1", created_after=b.created_at)] == [
        b.id,
        d.id,
    ]
    assert [t.id for t in c.get_tasks(project_name="p1", created_before=b.created_at)] == [
        a.id,
        b.id,
    ]
    assert (
        c.get_tasks_count(
            project_name="p1", created_after=b.created_at, created_before=b.created_at
        )
        == 1
    )


def timezone_plus_two() -> object:
    from datetime import timezone

    return timezone(timedelta(hours=2))


def test_completed_and_updated_windows(server: LiveServer, org: Org) -> None:
    live = client(server, org.live_key)
    image_project(live, "p1")
    pending = image_task(live, project="p1")
    _pause()
    test = client(server, org.test_key)
    image_project(test, "p1")
    done = image_task(test, project="p1")
    assert test.tasks(completed_after=done.completed_at).docs[0].task_id == done.id
    assert test.tasks(completed_before=done.completed_at).docs[0].task_id == done.id
    assert test.tasks(completed_after="2999-01-01").docs == []
    assert live.tasks(completed_after="2000-01-01").docs == []  # pending: never completed
    assert live.tasks(completed_before="2999-01-01").docs == []

    _pause()
    touched = live.set_task_metadata(pending.id, {"touched": True})
    untouched = image_task(live, project="p1")
    assert _at(touched.updated_at) > _at(touched.created_at)
    after = [t.task_id for t in live.tasks(updated_after=touched.updated_at).docs]
    assert after == [pending.id, untouched.id]
    before = [t.task_id for t in live.tasks(updated_before=touched.updated_at).docs]
    assert before == [pending.id]
    assert [
        t.id for t in live.get_tasks(project_name="p1", updated_after=untouched.updated_at)
    ] == [untouched.id]


def test_status_and_type_filters(server: LiveServer, org: Org, http: httpx.Client) -> None:
    live = client(server, org.live_key)
    image_project(live, "img")
    live.create_project("cat", TaskType.Categorization)
    t1 = image_task(live, project="img")
    t2 = image_task(live, project="img")
    cat = live.create_task(
        TaskType.Categorization,
        project="cat",
        attachment="hello",
        attachment_type="text",
        categories=["a", "b"],
    )
    live.cancel_task(t2.id)
    assert [t.task_id for t in live.tasks(status="pending").docs] == [t1.id, cat.id]
    assert [t.task_id for t in live.tasks(status="canceled").docs] == [t2.id]
    assert live.tasks(status="completed").total == 0
    assert [t.task_id for t in live.tasks(type="categorization").docs] == [cat.id]
    assert live.tasks(type="imageannotation", status="pending").total == 1
    assert live.get_tasks_count(project_name="img", status=TaskStatus.Canceled) == 1
    assert [
        t.id for t in live.get_tasks(project_name="cat", task_type=TaskType.Categorization)
    ] == [cat.id]
    key = auth(org.live_key)
    assert http.get("/v1/tasks", params={"status": "Pending"}, auth=key).json()["total"] == 2
    scale_error(http.get("/v1/tasks", params={"status": "done"}, auth=key), 400, "status")
    live.create_batch("cat", "cat-batch")
    scale_error(
        http.get("/v1/tasks", params={"project": "img", "batch": "cat-batch"}, auth=key),
        400,
        "batch",
    )


def test_unknown_filter_is_refused_by_the_client(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    with pytest.raises(ScaleInvalidRequest):
        c.tasks(bogus=1)
    with pytest.raises(ValueError):
        list(c.get_tasks())  # project or batch is required by the helper


def test_unknown_query_keys_are_ignored_by_the_server(http: httpx.Client, org: Org) -> None:
    r = http.get("/v1/tasks", params={"bogus": "1", "offset": "0"}, auth=auth(org.test_key))
    assert r.status_code == 200


def test_limited_response_and_attachment_url(
    server: LiveServer, org: Org, http: httpx.Client
) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    task = image_task(c, project="p1", metadata={"m": 1})
    limited = c.tasks(project="p1", limited_response=True).docs[0].as_dict()
    assert set(limited) == {"task_id", "status", "metadata", "project", "otherVersion"}
    assert (limited["task_id"], limited["metadata"], limited["project"]) == (
        task.id,
        {"m": 1},
        "p1",
    )
    limited2 = next(iter(c.get_tasks(project_name="p1", limited_response=True))).as_dict()
    assert set(limited2) == set(limited)

    full = next(iter(c.get_tasks(project_name="p1"))).as_dict()  # sends include_attachment_url=True
    assert full["attachment_url"] == IMAGE  # an external attachment is its own URL
    plain = c.tasks(project="p1").docs[0].as_dict()
    assert "attachment_url" not in plain


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("True", True),
        ("true", True),
        ("1", True),
        ("TRUE", True),
        ("False", False),
        ("false", False),
        ("0", False),
    ],
)
def test_query_booleans(
    http: httpx.Client, org: Org, server: LiveServer, value: str, expected: bool
) -> None:
    image_task(client(server, org.test_key))
    r = http.get("/v1/tasks", params={"limited_response": value}, auth=auth(org.test_key))
    assert r.status_code == 200, r.text
    assert ("type" not in r.json()["docs"][0]) is expected


def test_bad_query_values_name_the_field(http: httpx.Client, org: Org) -> None:
    key = auth(org.test_key)
    for field in (
        "start_time",
        "end_time",
        "updated_after",
        "updated_before",
        "completed_after",
        "completed_before",
    ):
        scale_error(http.get("/v1/tasks", params={field: "yesterday"}, auth=key), 400, field)
    scale_error(
        http.get("/v1/tasks", params={"limited_response": "maybe"}, auth=key),
        400,
        "limited_response",
    )
    scale_error(
        http.get("/v1/tasks", params={"include_attachment_url": "sure"}, auth=key),
        400,
        "include_attachment_url",
    )
    scale_error(http.get("/v1/batches", params={"start_time": "soon"}, auth=key), 400, "start_time")
    scale_error(
        http.get("/v1/batches", params={"exclude_archived": "perhaps"}, auth=key),
        400,
        "exclude_archived",
    )
    scale_error(http.get("/v1/batches", params={"offset": -1}, auth=key), 400, "offset")


def test_paging_edges(server: LiveServer, org: Org, http: httpx.Client) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    ids = [image_task(c, project="p1", tags=["even" if i % 2 == 0 else "odd"]).id for i in range(7)]
    key = auth(org.test_key)

    def walk(params: dict[str, object]) -> tuple[list[str], list[int]]:
        got: list[str] = []
        totals: list[int] = []
        token = None
        while True:
            page = http.get("/v1/tasks", params={**params, "next_token": token}, auth=key).json()
            got += [d["task_id"] for d in page["docs"]]
            totals.append(page["total"])
            assert page["has_more"] is (page["next_token"] is not None)
            if not page["has_more"]:
                return got, totals
            token = page["next_token"]

    assert walk({"project": "p1", "limit": 7}) == (ids, [7])  # exact fit: no empty extra page
    assert walk({"project": "p1", "limit": 1}) == (ids, [7] * 7)
    evens = ids[0::2]
    assert walk({"project": "p1", "limit": 2, "tags": "even"}) == (evens, [4, 4])
    assert walk({"project": "p1", "limit": 3, "tags": "even"}) == (evens, [4, 4])
    assert [t.id for t in c.get_tasks(project_name="p1", limit=3)] == ids
    assert [t.id for t in c.get_tasks(project_name="p1", tags=["odd"], limit=1)] == ids[1::2]
    empty = http.get("/v1/tasks", params={"project": "p1", "tags": "none"}, auth=key).json()
    assert (empty["docs"], empty["total"], empty["has_more"], empty["next_token"]) == (
        [],
        0,
        False,
        None,
    )
    # a task created while paging shows up on a later page, nothing is repeated
    first = http.get("/v1/tasks", params={"project": "p1", "limit": 4}, auth=key).json()
    late = image_task(c, project="p1").id
    rest = http.get(
        "/v1/tasks",
        params={"project": "p1", "limit": 100, "next_token": first["next_token"]},
        auth=key,
    ).json()
    assert [d["task_id"] for d in first["docs"] + rest["docs"]] == [*ids, late]


def test_task_timestamps_are_scale_style(server: LiveServer, org: Org) -> None:
    task = image_task(client(server, org.test_key))
    for stamp in (task.created_at, task.updated_at, task.completed_at):
        parsed = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert abs(parsed - datetime.now(UTC)) < timedelta(minutes=5)
        assert len(stamp.split(".")[1]) == 4  # milliseconds and Z


def test_a_listing_counts_its_total_once(server: LiveServer, org: Org, http: httpx.Client) -> None:
    """Filters the status counters cannot answer (tags, time windows...) are counted row by row;
    the count of the first page rides in ``next_token`` so a listing counts once, not per page.
    Totals the counters answer stay live."""
    c = client(server, org.test_key)
    image_project(c, "once")
    tagged = [
        image_task(c, project="once", tags=["a", "b"] if i % 2 else ["a"]).id for i in range(5)
    ]
    key = auth(org.test_key)

    def get(params: dict[str, object]) -> dict[str, object]:
        r = http.get("/v1/tasks", params=params, auth=key)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    first = get({"project": "once", "tags": "a", "limit": 2})
    plain = get({"project": "once", "limit": 2})
    assert (first["total"], plain["total"]) == (5, 5)
    image_task(c, project="once", tags=["a"])
    later = get({"project": "once", "tags": "a", "limit": 2, "next_token": first["next_token"]})
    assert later["total"] == 5  # as counted when the listing started
    assert get({"project": "once", "limit": 2, "next_token": plain["next_token"]})["total"] == 6
    # Both tags: driven from the first, the second checked per task.
    both = get({"project": "once", "tags": ["a", "b"], "limit": 100})
    assert [d["task_id"] for d in both["docs"]] == tagged[1::2]
    assert both["total"] == 2
