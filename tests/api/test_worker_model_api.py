"""Completion under a project's worker model, through HTTP: a reliable worker's label outweighs
an unreliable one's, and adaptive redundancy stops or asks by the model.

The model is stored as the background fit stores it (``worker_models.write``), with known
reliabilities, so the expected confidences are computable here; the fit itself is tested in
tests/workflow/test_worker_models.py and tests/jobs/test_worker_model_job.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from scaleapi.tasks import TaskType
from sqlalchemy import select

from steelyard.accounts import security
from steelyard.accounts.models import User
from steelyard.db.engine import Database
from steelyard.projects.models import Project
from steelyard.quality.adaptive import WorkerModel, decide
from steelyard.tasks.models import Task
from steelyard.workflow import worker_models
from tests.api.helpers import PASSWORD, auth, client, login, make_worker, name
from tests.conftest import LiveServer, Org

CATEGORIES = ["cat", "dog", "bird"]


@pytest.fixture(scope="module")
def password_hash() -> str:
    return security.hash_password(PASSWORD)


def _setup(
    server: LiveServer,
    http: httpx.Client,
    db: Database,
    org: Org,
    hashed: str,
    params: dict[str, Any],
    skills: dict[str, float | None],
) -> tuple[str, dict[str, Any], WorkerModel]:
    """A project with ``params``, one worker per ``skills`` key, and a stored model giving each
    that reliability (the default 0.7 for anyone else)."""
    project = name("wm")
    client(server, org.live_key).create_project(project, TaskType.Categorization, params=params)
    emails = {key: make_worker(db, org.org_id, password_hash=hashed) for key in skills}
    with db.unit_of_work() as s:
        rows = s.execute(select(User.email, User.id).where(User.email.in_(emails.values())))
        ids = {email: user_id for email, user_id in rows.all()}
        project_id = s.scalar(
            select(Project.id).where(Project.org_id == org.org_id, Project.name == project)
        )
        assert project_id is not None
        model = WorkerModel.one_coin(
            CATEGORIES,
            [1 / 3] * 3,
            {ids[emails[k]]: v for k, v in skills.items() if v is not None},  # None: unseen
            default_skill=0.7,
        )
        worker_models.write(s, org.org_id, project_id, model, 100, datetime.now(UTC))
    workers = {key: login(http, email) for key, email in emails.items()}
    workers["ids"] = {key: ids[email] for key, email in emails.items()}
    return project, workers, model


def _task(server: LiveServer, org: Org, project: str) -> str:
    task = client(server, org.live_key).create_task(
        TaskType.Categorization,
        project=project,
        attachment="a picture",
        attachment_type="text",
        categories=CATEGORIES,
    )
    return str(task.id)


def _label(http: httpx.Client, worker: Any, project: str, task_id: str, category: str) -> str:
    r = http.post("/api/work/next", params={"project": project}, headers=worker)
    assert r.status_code == 200 and r.json()["task"]["task_id"] == task_id, r.text
    r = http.post(
        f"/api/work/{r.json()['assignment_id']}/submit",
        json={"response": {"category": category}},
        headers=worker,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


def test_a_reliable_worker_outweighs_an_unreliable_one(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    params = {"pipeline": "consensus_task", "consensus_attempts": 2}
    skills: dict[str, float | None] = {"good": 0.95, "bad": 0.45}
    project, w, model = _setup(server, http, db, org, password_hash, params, skills)
    task_id = _task(server, org, project)
    assert _label(http, w["bad"], project, task_id, "dog") == "pending"
    assert _label(http, w["good"], project, task_id, "cat") == "completed"
    task = http.get(f"/v1/task/{task_id}", auth=auth(org.live_key)).json()
    ids = w["ids"]
    expected = decide([(ids["bad"], "dog"), (ids["good"], "cat")], worker_model=model)
    assert task["response"] == {"category": "cat"}
    assert task["confidence"] == pytest.approx(expected.confidence)
    # Under the default (everyone 0.7) this was a coin toss for the first label's answer.
    assert task["confidence"] > 0.85


def test_adaptive_stops_on_one_confident_label_and_asks_after_a_split(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    """min 1, max 3, target 0.9. Default reliability would need two agreeing labels (one is
    0.8); the reliable worker's single label is enough under the model. A pair that disagrees
    (unreliable, then an average newcomer) asks for a third label."""
    params = {
        "pipeline": "consensus_task",
        "redundancy": {"min": 1, "max": 3, "target_confidence": 0.9},
    }
    skills: dict[str, float | None] = {"good": 0.97, "bad": 0.45, "new": None}
    project, w, model = _setup(server, http, db, org, password_hash, params, skills)
    confident, split = _task(server, org, project), _task(server, org, project)
    assert _label(http, w["good"], project, confident, "cat") == "completed"
    assert _label(http, w["bad"], project, split, "dog") == "pending"
    assert _label(http, w["new"], project, split, "cat") == "pending"
    with db.unit_of_work(write=False) as s:
        rows = dict(
            s.execute(
                select(Task.task_id, Task.labels_needed).where(Task.task_id.in_([confident, split]))
            ).all()
        )
    assert rows == {confident: 1, split: 3}
    done = http.get(f"/v1/task/{confident}", auth=auth(org.live_key)).json()
    expected = decide([(w["ids"]["good"], "cat")], worker_model=model)
    assert done["confidence"] == pytest.approx(expected.confidence) and expected.confidence > 0.9
    # The third label (the reliable worker) settles it at the maximum or before.
    assert _label(http, w["good"], project, split, "cat") == "completed"
    last = http.get(f"/v1/task/{split}", auth=auth(org.live_key)).json()
    assert last["response"] == {"category": "cat"}
