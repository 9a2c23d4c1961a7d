"""``projects.params``: the checks made before a write and the version compared inside it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.db.engine import Database
from steelyard.projects import params
from steelyard.projects import service as projects
from steelyard.projects.params import DefaultsCache, ParamsChanged, ProjectDefaults
from steelyard.tasks import create
from steelyard.tasks.models import Task

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _actor(db: Database) -> Actor:
    with db.unit_of_work() as s:
        org = accounts.create_organization(s, f"params-{uuid.uuid4().hex[:10]}").org
        actor = Actor(org_id=org.id, is_test=False, kind="api_key", role="admin")
        body = {"name": "p", "type": "categorization", "params": {"categories": ["a", "b"]}}
        projects.create_project(s, actor, body, NOW)
    return actor


def _update(db: Database, actor: Actor, body: dict[str, object]) -> params.ParamsUpdate:
    with db.unit_of_work(write=False) as s:
        return params.read_params_update(projects.get_project(s, actor, "p"), body, NOW)


def test_the_version_is_read_in_sql(db: Database) -> None:
    actor = _actor(db)
    with db.unit_of_work() as s:
        projects.set_params(s, actor, _update(db, actor, {"categories": ["c", "d"]}), NOW)
    with db.unit_of_work(write=False) as s:
        ref = projects.project_ref(s, actor, name="p")
        defaults = projects.project_defaults(s, actor, project_id=ref.id)
    assert ref.version == defaults.version == 1
    assert defaults.params == {"categories": ["c", "d"]}


def test_set_params_checked_against_an_old_version_writes_nothing(db: Database) -> None:
    actor = _actor(db)
    first = _update(db, actor, {"categories": ["c", "d"]})
    late = _update(db, actor, {"categories": ["e", "f"]})  # read at the same version
    with db.unit_of_work() as s:
        stored = projects.set_params(s, actor, first, NOW)
    assert stored.params == {"categories": ["c", "d"]} and stored.param_history[-1]["version"] == 1
    with pytest.raises(ParamsChanged), db.unit_of_work() as s:
        projects.set_params(s, actor, late, NOW)
    with db.unit_of_work(write=False) as s:
        project = projects.get_project(s, actor, "p")
    assert [v["version"] for v in project.param_history] == [0, 1]
    assert project.params == {"categories": ["c", "d"]}


def test_a_task_checked_against_old_params_is_not_stored(db: Database) -> None:
    actor = _actor(db)
    new = create.read_new_task("categorization", {"project": "p", "attachment": "t"})
    with db.unit_of_work(write=False) as s:
        checked = create.check_new_task(new, create.task_defaults(s, actor, new), is_test=False)
    assert checked.params["categories"] == ["a", "b"]
    with db.unit_of_work() as s:
        projects.set_params(s, actor, _update(db, actor, {"categories": ["c"]}), NOW)
    with pytest.raises(ParamsChanged), db.unit_of_work() as s:
        create.insert_task(s, actor, new, checked, NOW)
    with db.unit_of_work(write=False) as s:
        count = s.scalar(select(func.count()).select_from(Task).where(Task.org_id == actor.org_id))
    assert count == 0


def test_retried_tries_again_only_while_params_change() -> None:
    calls: list[int] = []

    def changes_twice() -> str:
        calls.append(1)
        if len(calls) < params.ATTEMPTS:
            raise ParamsChanged()
        return "stored"

    assert params.retried(changes_twice) == "stored" and len(calls) == params.ATTEMPTS
    calls.clear()

    def always() -> str:
        calls.append(1)
        raise ParamsChanged()

    with pytest.raises(ParamsChanged):
        params.retried(always)
    assert len(calls) == params.ATTEMPTS


def _defaults(project_id: str, weight: int) -> ProjectDefaults:
    return ProjectDefaults(project_id, project_id, "categorization", 0, {}, weight)


def test_the_defaults_cache_is_bounded_by_entries_and_bytes() -> None:
    cache = DefaultsCache(max_entries=3, max_bytes=100, max_entry_bytes=60)
    for i in range(4):
        cache.put(("org", False, f"p{i}", None), _defaults(f"p{i}", 10))
    assert cache.get(("org", False, "p0", None)) is None  # the oldest went first
    assert cache.get(("org", False, "p3", None)) is not None
    cache.put(("org", False, "big", None), _defaults("big", 61))  # heavier than an entry may be
    assert cache.get(("org", False, "big", None)) is None
    cache.put(("org", False, "p4", None), _defaults("p4", 60))
    cache.put(("org", False, "p5", None), _defaults("p5", 35))
    assert cache.get(("org", False, "p4", None)) is not None  # 60 + 35 fit in 100
    assert cache.get(("org", False, "p3", None)) is None
    cache.forget(("org", False, "p4", None))
    assert cache.get(("org", False, "p4", None)) is None
