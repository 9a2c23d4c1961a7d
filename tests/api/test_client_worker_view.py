"""What a worker is shown of a task (defect 12 of issue 7): what labeling needs, and none of the
customer's own fields (callback URL, unique_id, metadata, tags, batch, audit and callback state).

The customer creates tasks with the real ``scaleapi`` client; the worker leases them through the
worker API, as a labeler's browser does.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from scaleapi.tasks import TaskType

from steelyard.accounts import security
from steelyard.db.engine import Database
from tests.api.helpers import IMAGE, PASSWORD, client, login, make_worker, name
from tests.conftest import LiveServer, Org

#: Everything a worker's view of a task may hold.
WORKER_KEYS = {"task_id", "type", "project", "instruction", "params"}
#: Values only the customer may see; none may appear anywhere in a worker's view.
SECRETS = {
    "callback_url": "http://127.0.0.1:9/customer-hook-secret",
    "unique_id": "unique-id-secret",
    "metadata": {"customer_ref": "metadata-secret"},
    "tags": ["tag-secret"],
}

#: type → the params a task of that type is created with (plus a customer-only extra param).
TYPES: dict[TaskType, dict[str, Any]] = {
    TaskType.ImageAnnotation: {
        "attachment": IMAGE,
        "geometries": {"box": {"objects_to_annotate": ["car"]}},
        "annotation_attributes": {"occluded": {"choices": ["yes", "no"]}},
    },
    TaskType.Annotation: {"attachment": IMAGE, "objects_to_annotate": ["car"]},
    TaskType.Categorization: {"attachment": "Is it?", "categories": ["yes", "no"]},
    TaskType.Comparison: {"attachments": ["one", "two"], "choices": ["A", "B"]},
    TaskType.TextCollection: {
        "attachments": [{"type": "text", "content": "An article"}],
        "fields": [{"type": "text", "field_id": "summary", "title": "Summary"}],
    },
    TaskType.NamedEntityRecognition: {
        "text": "Acme hired Ada.",
        "labels": [{"name": "ORG", "children": ["COMPANY"]}],
    },
}


@pytest.fixture
def worker(http: httpx.Client, org: Org, db: Database) -> dict[str, str]:
    hashed = security.hash_password(PASSWORD)  # outside the transaction that stores the worker
    return login(http, make_worker(db, org.org_id, password_hash=hashed))


@pytest.mark.parametrize("task_type", list(TYPES), ids=[t.value for t in TYPES])
def test_a_worker_sees_what_labeling_needs_and_nothing_of_the_customers(
    server: LiveServer,
    org: Org,
    http: httpx.Client,
    worker: dict[str, str],
    task_type: TaskType,
) -> None:
    c = client(server, org.live_key)
    project, batch = name("proj"), name("batch-secret")
    c.create_project(project, task_type, params={"instruction": "Project instructions"})
    c.create_batch(project, batch)
    own = TYPES[task_type]
    task = c.create_task(
        task_type,
        project=project,
        batch=batch,
        instruction="Label carefully",
        customer_note="param-secret",  # kept in the params for the customer, not for workers
        **own,
        **SECRETS,
    )
    assert task.params["customer_note"] == "param-secret"  # the customer still sees it all

    r = http.post("/api/work/next", params={"project": project}, headers=worker)
    assert r.status_code == 200, r.text
    view = r.json()["task"]
    assert set(view) <= WORKER_KEYS, set(view) - WORKER_KEYS
    assert view["task_id"] == task.id
    assert view["type"] == task_type.value
    assert view["project"] == project
    assert "Label carefully" in view["instruction"]
    assert "Project instructions" in view["instruction"]
    if task_type == TaskType.Annotation:  # the legacy form reaches the worker as geometries
        own = {"attachment": IMAGE, "geometries": {"box": {"objects_to_annotate": ["car"]}}}
    for key, value in own.items():
        assert view["params"][key] == value, key
    text = json.dumps(r.json())
    for secret in ("customer-hook-secret", "unique-id-secret", "metadata-secret", "tag-secret"):
        assert secret not in text, secret
    assert "param-secret" not in text and batch not in text

    # the same lease asked for again (the worker's held lease) is shown the same way
    again = http.post("/api/work/next", headers=worker)
    assert again.status_code == 200, again.text
    assert again.json()["task"] == view
