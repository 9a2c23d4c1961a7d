"""Studio calls with many names: a few statements per thousand names, never one per batch or
per pair, no list scan per name, and a bound on the names one call may carry (each call is one
write transaction)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, insert, select

from steelyard.accounts import service as accounts
from steelyard.accounts.models import Membership, User
from steelyard.accounts.schemas import Actor
from steelyard.db.base import new_id
from steelyard.db.engine import Database
from steelyard.errors import ValidationError
from steelyard.projects import service as projects
from steelyard.projects.models import Batch
from steelyard.studio import service as studio
from steelyard.studio.models import StudioAssignment
from tests.api.helpers import auth, scale_error
from tests.conftest import Org
from tests.db.statements import statements

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _studio(db: Database, batches: int, members: int = 0, project_count: int = 1) -> Actor:
    """An organization with Studio projects p0..., ``batches`` pending batches in p0 and
    ``members`` teammates, made in bulk."""
    with db.unit_of_work() as s:
        org = accounts.create_organization(s, f"studio-{uuid.uuid4().hex[:10]}").org.id
        actor = Actor(org_id=org, is_test=False, kind="api_key", role="admin")
        ids = [
            projects.create_project(
                s, actor, {"name": f"p{i}", "type": "categorization", "studio": True}, NOW
            ).id
            for i in range(project_count)
        ]
        if batches:
            s.execute(insert(Batch), [_batch(org, ids[0], i) for i in range(batches)])
        users = [{"id": new_id(), "email": f"m{i}-{org}@example.com"} for i in range(members)]
        if users:
            s.execute(insert(User), users)
            s.execute(
                insert(Membership),
                [
                    {"id": new_id(), "org_id": org, "user_id": u["id"], "role": "annotator"}
                    for u in users
                ],
            )
    return actor


def _batch(org: str, project_id: str, i: int) -> dict[str, object]:
    return {
        "id": new_id(),
        "org_id": org,
        "is_test": False,
        "project_id": project_id,
        "name": f"b{i}",
        "status": "in_progress",
        "metadata_": {},
        "created_at": NOW + timedelta(microseconds=i),
        "updated_at": NOW,
    }


def _emails(actor: Actor, n: int) -> list[str]:
    return [f"m{i}-{actor.org_id}@example.com" for i in range(n)]


def _priorities(db: Database, actor: Actor, names: list[str]) -> tuple[list[str], int]:
    with statements(db) as seen, db.unit_of_work() as s:
        views = studio.set_priorities(s, actor, {"batches": [{"name": n} for n in names]})
    return [v.name for v in views], len(seen)


def test_priorities_take_the_same_statements_for_10_or_1500_batches(db: Database) -> None:
    few, many = _studio(db, 10), _studio(db, 1500)
    few_order, few_statements = _priorities(db, few, [f"b{i}" for i in reversed(range(10))])
    names = [f"b{i}" for i in reversed(range(1500))]
    many_order, many_statements = _priorities(db, many, names)
    assert few_order == [f"b{i}" for i in reversed(range(10))]
    assert many_order == names
    # One more IN chunk of counts and groups per thousand batches, and one more update chunk.
    assert many_statements <= few_statements + 3
    with db.unit_of_work(write=False) as s:
        rows = s.execute(select(Batch.name, Batch.priority).where(Batch.org_id == many.org_id))
        ranks = {batch: priority for batch, priority in rows}
    assert ranks["b1499"] == 1 and ranks["b0"] == 1500


def test_a_batch_listed_twice_is_refused(db: Database) -> None:
    actor = _studio(db, 3)
    with pytest.raises(ValidationError) as info, db.unit_of_work() as s:
        studio.set_priorities(
            s, actor, {"batches": [{"name": "b0"}, {"name": "b1"}, {"name": "b0"}]}
        )
    assert info.value.field == "batches.2.name"


def test_assignments_are_added_in_bulk_and_again_without_error(db: Database) -> None:
    actor = _studio(db, 0, members=300, project_count=2)
    body = {"emails": _emails(actor, 300), "projects": ["p0", "p1"]}
    with statements(db) as first, db.unit_of_work() as s:
        studio.add_assignments(s, actor, body)
    with statements(db) as again, db.unit_of_work() as s:
        listed = studio.add_assignments(s, actor, body)
    assert len(first) == len(again) < 12  # not one statement (and savepoint) per pair
    assert len(listed) == 300 and all(v == ["p0", "p1"] for v in listed.values())
    with db.unit_of_work(write=False) as s:
        stored = s.scalar(
            select(func.count())
            .select_from(StudioAssignment)
            .where(StudioAssignment.org_id == actor.org_id)
        )
    assert stored == 600


def test_assignment_pairs_are_bounded(db: Database) -> None:
    actor = _studio(db, 0, members=studio.MAX_NAMES, project_count=101)
    body = {"emails": _emails(actor, studio.MAX_NAMES), "projects": [f"p{i}" for i in range(101)]}
    with pytest.raises(ValidationError) as info, db.unit_of_work() as s:
        studio.add_assignments(s, actor, body)
    assert info.value.field == "emails" and "100,000" in info.value.message


@pytest.mark.parametrize(
    ("method", "path", "key", "limit"),
    [
        ("POST", "/v1/studio/assignments/add", "emails", studio.MAX_NAMES),
        ("POST", "/v1/studio/assignments/remove", "projects", studio.MAX_NAMES),
        ("POST", "/v1/studio/projects/p/groups", "emails", studio.MAX_NAMES),
        ("PUT", "/v1/studio/projects/p/groups/g", "add_emails", studio.MAX_NAMES),
        ("PUT", "/v1/studio/batches/b", "groups", studio.MAX_NAMES),
        ("POST", "/v1/studio/batches/set_priorities", "batches", studio.MAX_BATCHES),
    ],
)
def test_names_per_call_are_bounded(
    http: httpx.Client, org: Org, method: str, path: str, key: str, limit: int
) -> None:
    items: list[object] = (
        [{"name": f"b{i}"} for i in range(limit + 1)]
        if key == "batches"
        else [f"n{i}@example.com" for i in range(limit + 1)]
    )
    body = {"name": "g", "emails": ["x@example.com"], "projects": ["p"], key: items}
    r = http.request(method, path, json=body, auth=auth(org.live_key))
    message = scale_error(r, 400, key, f"{limit:,}")
    assert "at most" in message
