"""Studio: assign teammates to projects, group them per project, order pending batches.

Everything is scoped to the caller's organization and environment (a ``test_`` key sees the
test projects and batches only). Teams belong to the organization, so the same teammates are
assignable in both environments.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from steelyard.accounts.models import Membership, User
from steelyard.accounts.schemas import Actor
from steelyard.db.base import new_id, utcnow
from steelyard.errors import Duplicate, NotFound, ValidationError
from steelyard.projects import service as projects
from steelyard.projects.models import Batch, Project
from steelyard.studio.models import BatchGroup, ProjectGroup, ProjectGroupMember, StudioAssignment
from steelyard.tasks.models import TaskCount
from steelyard.validation import json_object, require_str

T = TypeVar("T")

#: Every batch Studio lists has this type (the only one Scale's client knows).
BATCH_TYPE = "Production"
#: Names per ``IN (...)``: SQLite takes at most 32,766 bound values in a statement.
_CHUNK = 1000
#: Names (emails, projects, groups) per call, and batches per priorities call: each call is
#: one write transaction, and a 10 MiB body could name some 300,000 (40,000 emails took 5 s
#: even once every step was one statement per thousand).
MAX_NAMES = 1000
MAX_BATCHES = 10_000
#: Teammate-project pairs one ``assignments/add`` may create.
MAX_PAIRS = 100_000


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


# --- input checks ----------------------------------------------------------------------------


def _at_most(values: list[Any], limit: int, field: str) -> None:
    if len(values) > limit:
        raise ValidationError(
            f"{field} may list at most {limit:,} per call, got {len(values):,}; "
            "send them in several calls.",
            field=field,
        )


def _strings(value: Any, field: str, *, lower: bool = False) -> list[str]:
    """A list of non-empty strings (positions kept, so errors name the caller's index)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"{field} must be a list of strings.", field=field)
    _at_most(value, MAX_NAMES, field)
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ValidationError(f"{field}.{i} must be a non-empty string.", field=f"{field}.{i}")
        out.append(item.strip().lower() if lower else item)
    return out


def _teammates(session: Session, org_id: str, emails: list[str], field: str) -> list[Worker]:
    """The users behind ``emails``, each of whom must be a member of the organization."""
    if not emails:
        return []
    by_email = {
        email: Worker(user_id, email)
        for chunk in _chunks(list(dict.fromkeys(emails)))
        for user_id, email in session.execute(
            select(User.id, User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org_id, User.email.in_(chunk))
        )
    }
    for i, email in enumerate(emails):
        if email not in by_email:
            raise ValidationError(
                f"{field}.{i}: {email} is not a teammate of this organization; invite it first.",
                field=f"{field}.{i}",
            )
    return [by_email[e] for e in emails]


def _projects_named(session: Session, actor: Actor, names: list[str], field: str) -> list[Project]:
    if not names:
        return []
    by_name = {
        p.name: p
        for chunk in _chunks(list(dict.fromkeys(names)))
        for p in session.scalars(
            select(Project).where(
                Project.org_id == actor.org_id,
                Project.is_test == actor.is_test,
                Project.name.in_(chunk),
            )
        )
    }
    for i, name in enumerate(names):
        if name not in by_name:
            raise NotFound(f"{field}.{i}: no project named '{name}'.", field=f"{field}.{i}")
    return [by_name[n] for n in names]


# --- assignments -----------------------------------------------------------------------------


def list_assignments(session: Session, actor: Actor) -> dict[str, list[str]]:
    """``{email: [project names]}`` for every teammate with at least one assignment."""
    rows = session.execute(
        select(User.email, Project.name)
        .select_from(StudioAssignment)
        .join(User, User.id == StudioAssignment.user_id)
        .join(Project, Project.id == StudioAssignment.project_id)
        .where(StudioAssignment.org_id == actor.org_id, Project.is_test == actor.is_test)
        .order_by(User.email, Project.name)
    )
    out: dict[str, list[str]] = {}
    for email, project in rows:
        out.setdefault(email, []).append(project)
    return out


def _assignment_input(
    session: Session, actor: Actor, body: Any
) -> tuple[list[Worker], list[Project]]:
    doc = json_object(body)
    emails = _strings(doc.get("emails"), "emails", lower=True)
    names = _strings(doc.get("projects"), "projects")
    if not emails:
        raise ValidationError("emails must be a non-empty list of emails.", field="emails")
    if not names:
        raise ValidationError("projects must be a non-empty list of names.", field="projects")
    return (
        _teammates(session, actor.org_id, emails, "emails"),
        _projects_named(session, actor, names, "projects"),
    )


def add_assignments(session: Session, actor: Actor, body: Any) -> dict[str, list[str]]:
    users, chosen = _assignment_input(session, actor, body)
    user_ids = list(dict.fromkeys(u.id for u in users))
    project_ids = list(dict.fromkeys(p.id for p in chosen))
    if len(user_ids) * len(project_ids) > MAX_PAIRS:
        raise ValidationError(
            f"emails times projects may make at most {MAX_PAIRS:,} assignments per call; "
            "send them in several calls.",
            field="emails",
        )
    now = utcnow()
    rows = [
        {"id": new_id(), "org_id": actor.org_id, "user_id": u, "project_id": p, "created_at": now}
        for u in user_ids
        for p in project_ids
    ]
    # One statement per chunk; a pair already there (or added concurrently) is left as it is.
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(StudioAssignment).on_conflict_do_nothing(
        index_elements=["org_id", "user_id", "project_id"]
    )
    for chunk in _chunks(rows):
        session.execute(statement, list(chunk))
    return list_assignments(session, actor)


def remove_assignments(session: Session, actor: Actor, body: Any) -> dict[str, list[str]]:
    users, chosen = _assignment_input(session, actor, body)
    project_ids = list(dict.fromkeys(p.id for p in chosen))
    for user_chunk in _chunks(list(dict.fromkeys(u.id for u in users))):
        for project_chunk in _chunks(project_ids):
            session.execute(
                delete(StudioAssignment).where(
                    StudioAssignment.org_id == actor.org_id,
                    StudioAssignment.user_id.in_(user_chunk),
                    StudioAssignment.project_id.in_(project_chunk),
                )
            )
    return list_assignments(session, actor)


# --- project groups --------------------------------------------------------------------------


@dataclass(frozen=True)
class Worker:
    id: str
    email: str


@dataclass(frozen=True)
class GroupView:
    id: str
    name: str
    is_singleton: bool
    workers: list[Worker]


def _group_views(session: Session, groups: list[ProjectGroup]) -> list[GroupView]:
    members: dict[str, list[Worker]] = {g.id: [] for g in groups}
    for chunk in _chunks(list(members)):
        rows = session.execute(
            select(ProjectGroupMember.group_id, User.id, User.email)
            .join(User, User.id == ProjectGroupMember.user_id)
            .where(ProjectGroupMember.group_id.in_(chunk))
            .order_by(User.email)
        )
        for group_id, user_id, email in rows:
            members[group_id].append(Worker(user_id, email))
    return [GroupView(g.id, g.name, g.is_singleton, members[g.id]) for g in groups]


def list_groups(session: Session, actor: Actor, project_name: str) -> list[GroupView]:
    project = projects.get_project(session, actor, project_name)
    groups = session.scalars(
        select(ProjectGroup)
        .where(ProjectGroup.project_id == project.id)
        .order_by(ProjectGroup.created_at, ProjectGroup.name)
    )
    return _group_views(session, list(groups))


def create_group(session: Session, actor: Actor, project_name: str, body: Any) -> GroupView:
    doc = json_object(body)
    name = require_str(doc, "name", max_length=300)
    emails = _strings(doc.get("emails"), "emails", lower=True)
    project = projects.get_project(session, actor, project_name)
    users = _teammates(session, actor.org_id, emails, "emails")
    duplicate = Duplicate(
        f"Project '{project.name}' already has a group named '{name}'.", field="name"
    )
    if session.scalar(
        select(ProjectGroup.id).where(
            ProjectGroup.project_id == project.id, ProjectGroup.name == name
        )
    ):
        raise duplicate
    group = ProjectGroup(org_id=actor.org_id, project_id=project.id, name=name, is_singleton=False)
    try:
        with session.begin_nested():
            session.add(group)
            session.flush()
    except IntegrityError:
        raise duplicate from None
    _add_members(session, group.id, [u.id for u in users])
    return _group_views(session, [group])[0]


_ADD_MEMBER = insert(ProjectGroupMember)


def _add_members(session: Session, group_id: str, user_ids: list[str]) -> None:
    rows = [{"group_id": group_id, "user_id": uid} for uid in dict.fromkeys(user_ids)]
    for chunk in _chunks(rows):
        session.execute(_ADD_MEMBER, list(chunk))


def update_group(
    session: Session, actor: Actor, project_name: str, group_name: str, body: Any
) -> GroupView:
    """Add ``add_emails`` (teammates) and drop ``remove_emails`` (absent ones are ignored)."""
    doc = json_object(body)
    add = _strings(doc.get("add_emails"), "add_emails", lower=True)
    remove = _strings(doc.get("remove_emails"), "remove_emails", lower=True)
    project = projects.get_project(session, actor, project_name)
    group = session.scalar(
        select(ProjectGroup).where(
            ProjectGroup.project_id == project.id, ProjectGroup.name == group_name
        )
    )
    if group is None:
        raise NotFound(
            f"Project '{project.name}' has no group named '{group_name}'.", field="group"
        )
    adding = _teammates(session, actor.org_id, add, "add_emails")
    for chunk in _chunks(list(dict.fromkeys(remove))):
        removing = select(User.id).where(User.email.in_(chunk))
        session.execute(
            delete(ProjectGroupMember).where(
                ProjectGroupMember.group_id == group.id, ProjectGroupMember.user_id.in_(removing)
            )
        )
    present = set(
        session.scalars(
            select(ProjectGroupMember.user_id).where(ProjectGroupMember.group_id == group.id)
        )
    )
    _add_members(session, group.id, [u.id for u in adding if u.id not in present])
    return _group_views(session, [group])[0]


# --- studio batches --------------------------------------------------------------------------


@dataclass(frozen=True)
class StudioBatchView:
    id: str
    name: str
    project_id: str
    project_name: str
    priority: int | None
    total: int
    completed: int
    groups: list[str]


def _studio_batches(actor: Actor) -> Select[Batch]:
    """The batches of Studio projects (created with ``studio=True``): the only ones Studio
    lists, orders and assigns."""
    return (
        projects.readable_batches(actor)
        .join(Project, Project.id == Batch.project_id)
        .where(Project.org_id == actor.org_id, Project.studio.is_(True))
    )


@dataclass(frozen=True, slots=True)
class _BatchRow:
    """What Studio shows of a batch, read as a plain row: thousands of pending batches are
    read on every priorities call."""

    id: str
    name: str
    project_id: str
    priority: int | None
    created_at: datetime
    org_id: str
    is_test: bool


_ROW_COLUMNS = (
    Batch.id,
    Batch.name,
    Batch.project_id,
    Batch.priority,
    Batch.created_at,
    Batch.org_id,
    Batch.is_test,
)


def _pending(session: Session, actor: Actor) -> list[_BatchRow]:
    """Studio batches not yet completed, in Studio order: prioritized first, then by creation."""
    rows = session.execute(
        _studio_batches(actor)
        .with_only_columns(*_ROW_COLUMNS)
        .where(
            Batch.status.notin_(("completed", "canceled")),
            Batch.archived.is_(False),
        )
    )
    return sorted(
        (_BatchRow(*row) for row in rows),
        key=lambda b: (b.priority is None, b.priority or 0, b.created_at, b.id),
    )


def _batch_views(session: Session, batches: Sequence[Batch | _BatchRow]) -> list[StudioBatchView]:
    ids = [b.id for b in batches]
    groups: dict[str, list[str]] = {i: [] for i in ids}
    counts: dict[str, dict[str, int]] = {
        i: {"pending": 0, "completed": 0, "error": 0, "canceled": 0} for i in ids
    }
    # A few statements for any number of batches (one count per batch made 40,000 round trips).
    for chunk in _chunks(ids):
        rows = session.execute(
            select(BatchGroup.batch_id, ProjectGroup.name)
            .join(ProjectGroup, ProjectGroup.id == BatchGroup.group_id)
            .where(BatchGroup.batch_id.in_(chunk))
            .order_by(ProjectGroup.name)
        )
        for batch_id, name in rows:
            groups[batch_id].append(name)
        for batch_id, status, n in session.execute(
            select(TaskCount.batch_id, TaskCount.status, func.sum(TaskCount.n))
            .where(*_counts_scope(batches[0]), TaskCount.batch_id.in_(chunk))
            .group_by(TaskCount.batch_id, TaskCount.status)
        ):
            counts[batch_id][status] = int(n or 0)
    project_ids = list({b.project_id for b in batches})
    names = {
        pid: pname
        for chunk in _chunks(project_ids)
        for pid, pname in session.execute(
            select(Project.id, Project.name).where(Project.id.in_(chunk))
        )
    }
    views = []
    for b in batches:
        count = counts[b.id]
        views.append(
            StudioBatchView(
                id=b.id,
                name=b.name,
                project_id=b.project_id,
                project_name=names[b.project_id],
                priority=b.priority,
                # canceled tasks will never be worked on, so they are not part of the total
                total=count["pending"] + count["completed"] + count["error"],
                completed=count["completed"],
                groups=groups[b.id],
            )
        )
    return views


def _counts_scope(batch: Batch | _BatchRow) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """Task counts of the batches' organization and environment (all of one call's batches
    share them)."""
    return TaskCount.org_id == batch.org_id, TaskCount.is_test == batch.is_test


def list_batches(session: Session, actor: Actor) -> list[StudioBatchView]:
    return _batch_views(session, _pending(session, actor))


def assign_groups(session: Session, actor: Actor, batch_name: str, body: Any) -> StudioBatchView:
    """Replace the batch's groups by ``groups`` (names of groups of the batch's project)."""
    doc = json_object(body)
    if "groups" not in doc:
        raise ValidationError("'groups' is required.", field="groups")
    names = _strings(doc.get("groups"), "groups")
    batch = session.scalar(
        _studio_batches(actor).where(Batch.name == batch_name).with_for_update(of=Batch)
    )
    if batch is None:
        raise NotFound(f"No Studio batch named '{batch_name}'.", field="batch")
    found = {
        g.name: g
        for chunk in _chunks(list(dict.fromkeys(names)))
        for g in session.scalars(
            select(ProjectGroup).where(
                ProjectGroup.project_id == batch.project_id, ProjectGroup.name.in_(chunk)
            )
        )
    }
    for i, name in enumerate(names):
        if name not in found:
            raise NotFound(
                f"groups.{i}: the batch's project has no group named '{name}'.", field=f"groups.{i}"
            )
    session.execute(delete(BatchGroup).where(BatchGroup.batch_id == batch.id))
    session.add_all(
        BatchGroup(batch_id=batch.id, group_id=gid)
        for gid in dict.fromkeys(found[n].id for n in names)
    )
    session.flush()
    return _batch_views(session, [batch])[0]


def set_priorities(session: Session, actor: Actor, body: Any) -> list[StudioBatchView]:
    """``batches: [{"name"}, ...]`` in priority order; pending batches left out lose theirs."""
    items = json_object(body).get("batches")
    if not isinstance(items, list):
        raise ValidationError("batches must be a list of {name} objects.", field="batches")
    _at_most(items, MAX_BATCHES, "batches")
    pending = {b.name: b for b in _pending(session, actor)}
    # Ranks by batch id, insertion-ordered: a set-like lookup per name (a scan of the list so
    # far per name was quadratic: 10,000 batches took seconds).
    rank: dict[str, int] = {}
    for i, item in enumerate(items):
        field = f"batches.{i}.name"
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise ValidationError(f"{field} must be a batch name.", field=field)
        if name not in pending:
            raise NotFound(f"{field}: no pending batch named '{name}'.", field=field)
        if pending[name].id in rank:
            raise ValidationError(f"{field}: batch '{name}' is listed twice.", field=field)
        rank[pending[name].id] = len(rank) + 1
    changes = [
        {"_id": b.id, "priority": rank.get(b.id)}
        for b in pending.values()
        if b.priority != rank.get(b.id)
    ]
    for chunk in _chunks(changes):
        session.connection().execute(_SET_PRIORITY, list(chunk))
    return list_batches(session, actor)


_SET_PRIORITY = (
    update(Batch).where(Batch.id == bindparam("_id")).values(priority=bindparam("priority"))
)


def reset_priorities(session: Session, actor: Actor) -> list[StudioBatchView]:
    """Clear every priority: Studio falls back to creation order."""
    session.execute(
        update(Batch)
        .where(
            Batch.org_id == actor.org_id,
            Batch.is_test == actor.is_test,
            Batch.priority.is_not(None),
        )
        .values(priority=None)
        .execution_options(synchronize_session="fetch")
    )
    return list_batches(session, actor)
