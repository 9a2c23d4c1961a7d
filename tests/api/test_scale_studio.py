"""Studio (the studio part of scenario 10) with the real client: assignments, groups, batches."""

from __future__ import annotations

import httpx
import pytest
import scaleapi
from scaleapi.exceptions import (
    ScaleDuplicateResource,
    ScaleInvalidRequest,
    ScaleResourceNotFound,
)
from scaleapi.tasks import TaskType

from steelyard.db.engine import Database
from tests.api.helpers import (
    auth,
    client,
    image_project,
    image_task,
    make_worker,
    name,
    scale_error,
)
from tests.conftest import LiveServer, Org


def _team(db: Database, org: Org, n: int) -> list[str]:
    """Members of ``org`` (an invitation is not a membership until accepted, and test keys
    cannot manage the team, so they are made here)."""
    return [make_worker(db, org.org_id) for _ in range(n)]


def _studio_project(c: scaleapi.ScaleClient) -> str:
    project = name("studio")
    c.create_project(project, TaskType.ImageAnnotation, studio=True)
    return project


def _assignments(c: scaleapi.ScaleClient) -> dict[str, list[str]]:
    return {e: sorted(a.assigned_projects) for e, a in c.list_studio_assignments().items()}


def test_assignments(server: LiveServer, org: Org, db: Database) -> None:
    c = client(server, org.test_key)
    x, y = _team(db, org, 2)
    p1, p2 = image_project(c), image_project(c, project=f"team a/{name()}")
    assert c.list_studio_assignments() == {}

    added = c.add_studio_assignments([x, y.upper()], [p1])
    assert {e: a.assigned_projects for e, a in added.items()} == {x: [p1], y: [p1]}
    assert added[x].email == x and added[x].as_dict() == [p1]
    c.add_studio_assignments([x], [p2, p1])  # adding again is harmless
    assert _assignments(c) == {x: sorted([p1, p2]), y: [p1]}

    removed = c.remove_studio_assignments([y], [p1])
    assert {e: sorted(a.assigned_projects) for e, a in removed.items()} == {x: sorted([p1, p2])}
    assert _assignments(c) == {x: sorted([p1, p2])}

    # assignments follow the project's environment: the live key sees none of them
    assert client(server, org.live_key).list_studio_assignments() == {}


def test_assignment_errors_name_the_field(
    server: LiveServer, org: Org, http: httpx.Client, db: Database
) -> None:
    c = client(server, org.test_key)
    (x,) = _team(db, org, 1)
    p1 = image_project(c)
    with pytest.raises(ScaleInvalidRequest) as bad:
        c.add_studio_assignments([x, "stranger@example.com"], [p1])
    assert "emails.1" in bad.value.message and "stranger@example.com" in bad.value.message
    with pytest.raises(ScaleResourceNotFound) as missing:
        c.add_studio_assignments([x], [p1, "nope"])
    assert "projects.1" in missing.value.message
    assert c.list_studio_assignments() == {}  # nothing half-done

    key = auth(org.test_key)
    scale_error(
        http.post("/v1/studio/assignments/add", json={"emails": [x], "projects": []}, auth=key),
        400,
        "projects",
    )
    r = http.post(
        "/v1/studio/assignments/remove", json={"emails": [x, 3], "projects": [p1]}, auth=key
    )
    scale_error(r, 400, "emails.1")
    assert r.json()["field"] == "emails.1"
    scale_error(http.post("/v1/studio/assignments/add", json=["x"], auth=key), 400, "body")


def test_project_groups(server: LiveServer, org: Org, http: httpx.Client, db: Database) -> None:
    c = client(server, org.test_key)
    x, y, z = _team(db, org, 3)
    project = image_project(c, project=f"team a/{name()}")  # a slash round-trips
    assert c.list_project_groups(project) == []

    group = c.create_project_group(project, [x, y], "night shift")
    assert (group.name, group.numWorkers, group.isSingleton) == ("night shift", 2, False)
    assert {w["email"] for w in group.as_dict()["workers"]} == {x, y}
    c.create_project_group(project, [], "empty")

    updated = c.update_project_group(project, "night shift", [z, z.upper()], [x])
    assert updated.id == group.id and updated.numWorkers == 2
    assert {w["email"] for w in updated.as_dict()["workers"]} == {y, z}
    groups = {g.name: g for g in c.list_project_groups(project)}
    assert set(groups) == {"night shift", "empty"}
    assert groups["empty"].numWorkers == 0 and groups["empty"].workers == []
    assert groups["night shift"].numWorkers == 2

    with pytest.raises(ScaleDuplicateResource):
        c.create_project_group(project, [], "night shift")
    with pytest.raises(ScaleInvalidRequest) as bad:
        c.create_project_group(project, [x, "stranger@example.com"], "other")
    assert "emails.1" in bad.value.message
    with pytest.raises(ScaleInvalidRequest) as bad:
        c.update_project_group(project, "night shift", ["stranger@example.com"], [])
    assert "add_emails.0" in bad.value.message
    with pytest.raises(ScaleResourceNotFound) as missing:
        c.update_project_group(project, "day shift", [x], [])
    assert "day shift" in missing.value.message
    with pytest.raises(ScaleResourceNotFound):
        c.list_project_groups("nope")
    key = auth(org.test_key)
    url = f"/v1/studio/projects/{project.replace('/', '%2F').replace(' ', '%20')}/groups"
    r = http.post(url, json={"emails": [x]}, auth=key)
    scale_error(r, 400, "name")
    assert r.json()["field"] == "name"


def test_studio_batches(server: LiveServer, org: Org, http: httpx.Client, db: Database) -> None:
    c = client(server, org.live_key)  # live: tasks stay pending, so counts mean something
    (x,) = _team(db, org, 1)
    project = _studio_project(c)
    other = name("studio")
    c.create_project(other, TaskType.ImageAnnotation, studio=True)
    b1, b2, b3 = name("b"), name("b"), name("b")
    c.create_batch(project, b1)
    c.create_batch(other, b2)  # a Studio project's batch waits in staging: still pending
    c.create_batch(project, b3)
    for _ in range(2):
        image_task(c, project=project, batch=b1)
    c.create_project_group(project, [x], "g1")
    c.create_project_group(project, [], "g2")
    c.create_project_group(other, [x], "g-other")

    batches = c.list_studio_batches()
    assert [b.name for b in batches] == [b1, b2, b3]  # creation order
    first = batches[0]
    assert (first.project_name, first.batch_type, first.total, first.completed) == (
        project,
        "Production",
        2,
        0,
    )
    assert first.groups == [] and first.studio_priority is None
    assert first.project_id == batches[2].project_id != batches[1].project_id

    assigned = c.assign_studio_batches(b1, ["g2", "g1"])
    assert assigned.name == b1 and assigned.groups == ["g1", "g2"]
    assert c.assign_studio_batches(b1, ["g2"]).groups == ["g2"]  # replaces
    with pytest.raises(ScaleResourceNotFound) as missing:
        c.assign_studio_batches(b1, ["g1", "g-other"])  # another project's group
    assert "groups.1" in missing.value.message
    with pytest.raises(ScaleResourceNotFound):
        c.assign_studio_batches("nope", ["g1"])

    ordered = c.set_studio_batches_priorities([b3, b1])
    assert [(b.name, b.studio_priority) for b in ordered] == [(b3, 1), (b1, 2), (b2, None)]
    assert [b.name for b in c.list_studio_batches()] == [b3, b1, b2]
    assert next(b for b in c.list_studio_batches() if b.name == b1).groups == ["g2"]
    with pytest.raises(ScaleResourceNotFound) as missing:
        c.set_studio_batches_priorities([b1, "nope"])
    assert "batches.1.name" in missing.value.message
    with pytest.raises(ScaleInvalidRequest) as bad:
        c.set_studio_batches_priorities([b1, b1])
    assert "batches.1.name" in bad.value.message
    assert [b.name for b in c.list_studio_batches()] == [b3, b1, b2]  # unchanged

    reset = c.reset_studio_batches_priorities()
    assert [(b.name, b.studio_priority) for b in reset] == [(b1, None), (b2, None), (b3, None)]

    key = auth(org.live_key)
    scale_error(
        http.post("/v1/studio/batches/set_priorities", json={"batches": "x"}, auth=key),
        400,
        "batches",
    )
    scale_error(http.put(f"/v1/studio/batches/{b1}", json={}, auth=key), 400, "groups")
    # the test environment has its own batches
    assert client(server, org.test_key).list_studio_batches() == []


def test_completed_batches_are_not_listed(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)  # test key: tasks complete as they are created
    project = _studio_project(c)
    done, staged = name("b"), name("b")
    c.create_batch(project, done)
    image_task(c, project=project, batch=done)
    c.finalize_batch(done)
    c.create_batch(project, staged)
    assert c.get_batch(done).status == "completed"
    assert [b.name for b in c.list_studio_batches()] == [staged]


def test_another_org_sees_nothing(
    server: LiveServer, org: Org, other_org: Org, db: Database
) -> None:
    c = client(server, org.test_key)
    (x,) = _team(db, org, 1)
    project = _studio_project(c)
    batch = name("b")
    c.create_batch(project, batch)
    c.add_studio_assignments([x], [project])
    c.create_project_group(project, [x], "g1")

    other = client(server, other_org.test_key)
    assert other.list_studio_assignments() == {}
    assert other.list_studio_batches() == []
    with pytest.raises(ScaleResourceNotFound):
        other.list_project_groups(project)
    with pytest.raises(ScaleResourceNotFound):
        other.assign_studio_batches(batch, ["g1"])
    with pytest.raises(ScaleResourceNotFound):
        other.set_studio_batches_priorities([batch])
    with pytest.raises(ScaleInvalidRequest) as bad:  # x is not their teammate
        other.create_project_group(image_project(other), [x], "g1")
    assert "emails.0" in bad.value.message
    assert _assignments(c) == {x: [project]}


def test_only_studio_projects_batches_are_studio_batches(server: LiveServer, org: Org) -> None:
    """A project is a Studio project when created with ``studio=True``; the batches of other
    projects are not Studio's to list, order or assign."""
    c = client(server, org.live_key)
    ordinary, studio = image_project(c), _studio_project(c)
    plain, staged = name("b"), name("b")
    c.create_batch(ordinary, plain)
    c.create_batch(studio, staged)
    c.create_project_group(ordinary, [], "g1")
    assert [b.name for b in c.list_studio_batches()] == [staged]
    with pytest.raises(ScaleResourceNotFound) as missing:
        c.set_studio_batches_priorities([staged, plain])
    assert "batches.1.name" in missing.value.message
    with pytest.raises(ScaleResourceNotFound):
        c.assign_studio_batches(plain, ["g1"])
    assert [b.name for b in c.set_studio_batches_priorities([staged])] == [staged]
    assert [b.name for b in c.reset_studio_batches_priorities()] == [staged]
