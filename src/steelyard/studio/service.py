"""Studio: assign teammates to projects, group them per project, order pending batches.

Everything is scoped to the caller's organization and environment (a ``test_`` key sees the
test projects and batches only). Teams belong to the organization, so the same teammates are
assignable in both environments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from steelyard.accounts.models import Membership, User
from steelyard.accounts.schemas import Actor
from steelyard.errors import Duplicate, NotFound, ValidationError
from steelyard.projects import service as projects
from steelyard.projects.models import Batch, Project
from steelyard.studio.models import BatchGroup, ProjectGroup, ProjectGroupMember, StudioAssignment
from steelyard.validation import json_object, require_str

#: Every batch Studio lists has this type (the only one Scale's client knows).
BATCH_TYPE = "Production"


# --- input checks ----------------------------------------------------------------------------


def _strings(value: Any, field: str, *, lower: bool = False) -> list[str]:
    """A list of non-empty strings (positions kept, so errors name the caller's index)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"{field} must be a list of strings.", field=field)
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ValidationError(f"{field}.{i} must be a non-empty string.", field=f"{field}.{i}")
        out.append(item.strip().lower() if lower else item)
    return out


def _teammates(session: Session, org_id: str, emails: list[str], field: str) -> list[User]:
    """The users behind ``emails``, each of whom must be a member of the organization."""
    if not emails:
        return []
    rows = session.scalars(
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id, User.email.in_(emails))
    )
    by_email = {u.email: u for u in rows}
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
    rows = session.scalars(
        select(Project).where(
            Project.org_id == actor.org_id,
            Project.is_test == actor.is_test,
            Project.name.in_(names),
        )
    )
    by_name = {p.name: p for p in rows}
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
) -> tuple[list[User], list[Project]]:
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
    rows = session.execute(
        select(StudioAssignment.user_id, StudioAssignment.project_id).where(
            StudioAssignment.org_id == actor.org_id,
            StudioAssignment.user_id.in_(user_ids),
            StudioAssignment.project_id.in_(project_ids),
        )
    )
    existing = {(user_id, project_id) for user_id, project_id in rows}
    for user_id in user_ids:
        for project_id in project_ids:
            if (user_id, project_id) in existing:
                continue
            try:  # a concurrent add of the same pair is not an error
                with session.begin_nested():
                    session.add(
                        StudioAssignment(
                            org_id=actor.org_id, user_id=user_id, project_id=project_id
                        )
                    )
                    session.flush()
            except IntegrityError:
                pass
    return list_assignments(session, actor)


def remove_assignments(session: Session, actor: Actor, body: Any) -> dict[str, list[str]]:
    users, chosen = _assignment_input(session, actor, body)
    session.execute(
        delete(StudioAssignment).where(
            StudioAssignment.org_id == actor.org_id,
            StudioAssignment.user_id.in_([u.id for u in users]),
            StudioAssignment.project_id.in_([p.id for p in chosen]),
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
    if groups:
        rows = session.execute(
            select(ProjectGroupMember.group_id, User.id, User.email)
            .join(User, User.id == ProjectGroupMember.user_id)
            .where(ProjectGroupMember.group_id.in_(list(members)))
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
    session.add_all(
        ProjectGroupMember(group_id=group.id, user_id=uid)
        for uid in dict.fromkeys(u.id for u in users)
    )
    session.flush()
    return _group_views(session, [group])[0]


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
    if remove:
        removing = select(User.id).where(User.email.in_(remove))
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
    session.add_all(
        ProjectGroupMember(group_id=group.id, user_id=uid)
        for uid in dict.fromkeys(u.id for u in adding)
        if uid not in present
    )
    session.flush()
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


def _pending(session: Session, actor: Actor) -> list[Batch]:
    """Studio batches not yet completed, in Studio order: prioritized first, then by creation."""
    rows = session.scalars(
        _studio_batches(actor).where(
            Batch.status.notin_(("completed", "canceled")),
            Batch.archived.is_(False),
        )
    )
    return sorted(
        rows,
        key=lambda b: (b.priority is None, b.priority or 0, b.created_at, b.id),
    )


def _batch_views(session: Session, batches: list[Batch]) -> list[StudioBatchView]:
    ids = [b.id for b in batches]
    groups: dict[str, list[str]] = {i: [] for i in ids}
    names: dict[str, str] = {}
    if ids:
        rows = session.execute(
            select(BatchGroup.batch_id, ProjectGroup.name)
            .join(ProjectGroup, ProjectGroup.id == BatchGroup.group_id)
            .where(BatchGroup.batch_id.in_(ids))
            .order_by(ProjectGroup.name)
        )
        for batch_id, name in rows:
            groups[batch_id].append(name)
        project_ids = {b.project_id for b in batches}
        names = {
            pid: pname
            for pid, pname in session.execute(
                select(Project.id, Project.name).where(Project.id.in_(project_ids))
            )
        }
    views = []
    for b in batches:
        counts = projects.batch_counts(session, b)
        views.append(
            StudioBatchView(
                id=b.id,
                name=b.name,
                project_id=b.project_id,
                project_name=names[b.project_id],
                priority=b.priority,
                # canceled tasks will never be worked on, so they are not part of the total
                total=counts["pending"] + counts["completed"] + counts["error"],
                completed=counts["completed"],
                groups=groups[b.id],
            )
        )
    return views


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
        for g in session.scalars(
            select(ProjectGroup).where(
                ProjectGroup.project_id == batch.project_id, ProjectGroup.name.in_(names)
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
    pending = {b.name: b for b in _pending(session, actor)}
    order: list[Batch] = []
    for i, item in enumerate(items):
        field = f"batches.{i}.name"
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise ValidationError(f"{field} must be a batch name.", field=field)
        if name not in pending:
            raise NotFound(f"{field}: no pending batch named '{name}'.", field=field)
        if pending[name] in order:
            raise ValidationError(f"{field}: batch '{name}' is listed twice.", field=field)
        order.append(pending[name])
    rank = {b.id: i for i, b in enumerate(order, start=1)}
    for batch in pending.values():
        batch.priority = rank.get(batch.id)
    session.flush()
    return list_batches(session, actor)


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
