"""Gold answers for the worker-quality tests, stored as the gold submit path stores them.

The serving of gold through ``/api/work/next`` is built separately; until it lands these tests
create evaluation tasks through the Scale API and store a worker's scored answer directly, then
call ``worker_quality.after_gold_answer`` in the same write, as that submit path will.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from steelyard.accounts.models import User
from steelyard.db.engine import Database
from steelyard.projects.models import Project
from steelyard.workflow import worker_quality
from steelyard.workflow.models import QualityAnswer
from tests.api.helpers import auth

CATEGORIES = ["cat", "dog", "bird"]


def user_id(db: Database, email: str) -> str:
    with db.unit_of_work(write=False) as session:
        return str(session.scalar(select(User.id).where(User.email == email)))


def project_id(db: Database, org_id: str, name: str) -> str:
    with db.unit_of_work(write=False) as session:
        return str(
            session.scalar(
                select(Project.id).where(
                    Project.org_id == org_id, Project.name == name, Project.is_test.is_(False)
                )
            )
        )


def categorization_project(
    http: httpx.Client, key: str, name: str, **params: Any
) -> dict[str, Any]:
    r = http.post(
        "/v1/projects",
        json={
            "type": "categorization",
            "name": name,
            "params": {"categories": CATEGORIES, **params},
        },
        auth=auth(key),
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def gold_item(http: httpx.Client, key: str, project: str, expected: str = "cat") -> str:
    """An evaluation task of ``project`` whose right answer is ``expected``."""
    r = http.post(
        "/v1/evaluation_tasks/categorization",
        json={
            "project": project,
            "attachment": f"check {uuid.uuid4().hex[:8]}",
            "expected_response": {"category": expected},
        },
        auth=auth(key),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def answer_gold(
    db: Database,
    org_id: str,
    project: str,
    item: str,
    user: str,
    given: str,
    expected: str,
    now: datetime | None = None,
) -> str | None:
    """Store ``user``'s scored answer ``given`` to gold ``item`` and run the pause check in the
    same write; returns the id of the pause it opened, if any."""
    now = now or datetime.now(UTC)
    right = given == expected
    with db.unit_of_work() as session:
        session.add(
            QualityAnswer(
                org_id=org_id,
                project_id=project,
                quality_task_id=item,
                user_id=user,
                kind="evaluation",
                attempt=1,
                status="submitted",
                started_at=now - timedelta(seconds=5),
                expires_at=now + timedelta(minutes=5),
                submitted_at=now,
                active_seconds=5.0,
                response={"category": given},
                score=1.0 if right else 0.0,
                correct=right,
            )
        )
        session.flush()
        pause = worker_quality.after_gold_answer(session, org_id, project, user, now)
        return pause.id if pause is not None else None
