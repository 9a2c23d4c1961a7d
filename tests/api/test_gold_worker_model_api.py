"""Gold answered through ``/api/work/next`` → submit reaches the project's worker model: the
background fit clamps the gold items to their truth and, with enough of them, stores a
calibrator; the refit check sees new gold answers; completion then uses the calibrated model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from scaleapi.tasks import TaskType
from sqlalchemy import select

from steelyard.accounts import security
from steelyard.db.engine import Database
from steelyard.quality import project_model
from steelyard.quality.adaptive import decide
from steelyard.tasks.models import QualityTask
from steelyard.workflow import worker_models
from steelyard.workflow.models import QualityAnswer
from tests.api.helpers import PASSWORD, auth, client, login, make_worker, name
from tests.api.quality_helpers import project_id as project_id_of
from tests.api.quality_helpers import user_id
from tests.conftest import LiveServer, Org

CATEGORIES = ["cat", "dog", "bird"]


@pytest.fixture(scope="module")
def password_hash() -> str:
    return security.hash_password(PASSWORD)


def _live(server: LiveServer, org: Org, project: str, n: int) -> list[str]:
    c = client(server, org.live_key)
    return [
        str(
            c.create_task(
                TaskType.Categorization,
                project=project,
                attachment=f"live {i}",
                attachment_type="text",
                categories=CATEGORIES,
            ).id
        )
        for i in range(n)
    ]


def _gold(http: httpx.Client, org: Org, project: str, answers: list[str]) -> None:
    for i, answer in enumerate(answers):
        r = http.post(
            "/v1/evaluation_tasks/categorization",
            auth=(org.live_key, ""),
            json={
                "project": project,
                "attachment": f"gold {i}",
                "attachment_type": "text",
                "categories": CATEGORIES,
                "expected_response": {"category": answer},
            },
        )
        assert r.status_code == 200, r.text


def _expected(db: Database, assignment_id: str) -> str | None:
    """The gold item's right answer when the offer is gold, else ``None``."""
    with db.unit_of_work(write=False) as s:
        expected = s.scalar(
            select(QualityTask.expected_response)
            .join(QualityAnswer, QualityAnswer.quality_task_id == QualityTask.id)
            .where(QualityAnswer.id == assignment_id)
        )
    return None if expected is None else str(expected["category"])


def _step(http: httpx.Client, db: Database, worker: Any, project: str, answer: Any) -> str | None:
    """One next → submit; ``answer(expected or None)`` is the category given. Returns
    ``"gold"``, ``"live"``, or ``None`` when nothing was offered."""
    r = http.post("/api/work/next", params={"project": project}, headers=worker)
    assert r.status_code in (200, 204), r.text
    if r.status_code == 204:
        return None
    offer = r.json()
    expected = _expected(db, offer["assignment_id"])
    r = http.post(
        f"/api/work/{offer['assignment_id']}/submit",
        json={"response": {"category": answer(expected)}},
        headers=worker,
    )
    assert r.status_code == 200, r.text
    return "live" if expected is None else "gold"


def _due(db: Database, key: tuple[str, str]) -> bool:
    with db.unit_of_work(write=False) as s:
        return key in worker_models.due(s, datetime.now(UTC))


def test_gold_answered_through_next_and_submit_calibrates_the_stored_model(
    server: LiveServer,
    http: httpx.Client,
    db: Database,
    org: Org,
    password_hash: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Six gold items stand for "enough" here (the real minimum is 30; each is served once per
    # worker, so 30 would take a hundred next/submit rounds per worker).
    monkeypatch.setattr(project_model, "MIN_GOLD_ITEMS", 6)
    project = name("goldwm")
    client(server, org.live_key).create_project(
        project,
        TaskType.Categorization,
        params={"gold_rate": 0.5, "pipeline": "consensus_task", "consensus_attempts": 3},
    )
    pid = project_id_of(db, org.org_id, project)
    key = (org.org_id, pid)
    _gold(http, org, project, ["cat", "bird"] * 3)
    emails = [make_worker(db, org.org_id, password_hash=password_hash) for _ in range(3)]
    workers = [login(http, email) for email in emails]

    # Three workers work the project dry: two answer gold right, one always says "dog".
    _live(server, org, project, 8)
    # Round robin, so that every worker meets the gold (k = 3: each labels every live task).
    answers = [lambda e: e or "cat", lambda e: e or "cat", lambda e: "dog"]
    gold = [0, 0, 0]
    active = {0, 1, 2}
    while active:
        for i in sorted(active):
            got = _step(http, db, workers[i], project, answers[i])
            if got is None:
                active.discard(i)
            gold[i] += got == "gold"
    assert min(gold) >= 5, gold  # each answered (nearly) every gold item
    with db.unit_of_work(write=False) as s:
        answered = s.scalar(
            select(QualityAnswer.id)
            .where(QualityAnswer.project_id == pid, QualityAnswer.status == "submitted")
            .limit(1)
        )
    assert answered is not None
    assert _due(db, key)

    assert worker_models.fit_project(db, org.org_id, pid, datetime.now(UTC))
    with db.unit_of_work(write=False) as s:
        doc = worker_models.stored(s, pid)
    fitted = worker_models.parse(doc)
    assert doc is not None and fitted is not None
    assert fitted.calibrator is not None, "enough gold answered: the model gets a calibrator"
    assert doc["n_labels"] == 24 and doc["n_gold"] >= 15  # live labels and gold answers
    assert not _due(db, key)

    # Gold taught the fit who is wrong: the "dog" worker's cat row puts little on cat.
    sloppy_id = user_id(db, emails[2])
    cat = fitted.model.classes.tolist().index("cat")
    assert fitted.model.confusion(sloppy_id)[cat, cat] < 0.3

    # Completion uses the calibrated model: one honest label's confidence is the calibrated
    # one, not the raw posterior.
    (task_id,) = _live(server, org, project, 1)
    for i in range(3):  # every gold item is answered: only the live task is left
        assert _step(http, db, workers[i], project, answers[i]) == "live"
    task = http.get(f"/v1/task/{task_id}", auth=auth(org.live_key)).json()
    assert task["status"] == "completed" and task["response"] == {"category": "cat"}
    given = [(user_id(db, emails[i]), answers[i](None)) for i in range(3)]
    calibrated = decide(
        given,
        worker_model=fitted.model,
        max_labels=3,
        target_confidence=1.0,
        calibrator=fitted.calibrator,
    )
    assert task["confidence"] == pytest.approx(calibrated.confidence)
    assert calibrated.confidence != pytest.approx(calibrated.raw_confidence)

    # The label after the fit makes the project due again once the time rule allows.
    assert not _due(db, key)
    with db.unit_of_work(write=False) as s:
        due_later = key in worker_models.due(
            s, datetime.now(UTC) + timedelta(seconds=worker_models.REFRESH_SECONDS + 1)
        )
    assert due_later
