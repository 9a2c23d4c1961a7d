"""All task SQL for listing: one organization-scoped base statement, keyset pages, counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased
from sqlalchemy.orm.util import identity_key

from steelyard import pagination
from steelyard.accounts.schemas import Actor
from steelyard.errors import ValidationError
from steelyard.projects.models import Batch, Project
from steelyard.tasks.models import TASK_STATUSES, Task, TaskCount, TaskRow, TaskTag

REVIEW_STATUSES = ("pending", "accepted", "fixed", "commented", "rejected")
#: A tag filter matches tasks carrying every tag given. A task carries at most
#: ``tasks.service.MAX_TAGS`` (100) tags, so a filter naming more could never match: refused.
MAX_FILTER_TAGS = 100


def readable(actor: Actor) -> Select[Task]:
    """Every task query starts here: the caller's organization and environment only."""
    return select(Task).where(Task.org_id == actor.org_id, Task.is_test == actor.is_test)


@dataclass
class TaskFilters:
    project_id: str | None = None
    batch_id: str | None = None
    status: str | None = None
    type: str | None = None
    review_statuses: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    unique_ids: list[str] = field(default_factory=list)
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    completed_after: datetime | None = None
    completed_before: datetime | None = None

    def validate(self) -> None:
        """Refuse what no task could match, naming the parameter; drop repeated tags."""
        self.tags = list(dict.fromkeys(self.tags))
        if len(self.tags) > MAX_FILTER_TAGS:
            raise ValidationError(
                f"tags: at most {MAX_FILTER_TAGS} different tags per listing (a task carries "
                f"at most {MAX_FILTER_TAGS}); got {len(self.tags)}.",
                field="tags",
            )
        if self.status is not None and self.status not in TASK_STATUSES:
            raise ValidationError(
                f"status must be one of {', '.join(TASK_STATUSES)}.", field="status"
            )
        for value in self.review_statuses:
            if value not in REVIEW_STATUSES:
                raise ValidationError(
                    f"customer_review_status must be among {', '.join(REVIEW_STATUSES)}.",
                    field="customer_review_status",
                )

    @property
    def countable_from_counters(self) -> bool:
        """Only project/batch/status/type filters: ``task_counts`` answers the total."""
        return not (
            self.review_statuses
            or self.tags
            or self.unique_ids
            or self.created_after
            or self.created_before
            or self.updated_after
            or self.updated_before
            or self.completed_after
            or self.completed_before
        )


def _apply(
    stmt: Select[Any], f: TaskFilters, actor: Actor
) -> tuple[Select[Any], InstrumentedAttribute[int]]:
    """``stmt`` narrowed to the filters, and the column its pages are keyed and ordered on.

    With tags, the first tag is a join driven from the tag index ``(org_id, tag, task_seq)``,
    whose rows come in ``task_seq`` order: a rare tag is then found without reading every task
    of the project (as a correlated EXISTS did). Pages are keyed on that ``task_seq``. The other
    tags are one correlated count over the task's own tag rows (its primary key), not an EXISTS
    per tag: PostgreSQL's planning time grew steeply with the number of semi-joins (11 s for
    100 tags) and SQLite refuses expressions nested about a thousand deep.
    """
    key: InstrumentedAttribute[int] = Task.seq
    if f.project_id is not None:
        stmt = stmt.where(Task.project_id == f.project_id)
    if f.batch_id is not None:
        stmt = stmt.where(Task.batch_id == f.batch_id)
    if f.status is not None:
        stmt = stmt.where(Task.status == f.status)
    if f.type is not None:
        stmt = stmt.where(Task.type == f.type)
    if f.review_statuses:
        stmt = stmt.where(Task.customer_review_status.in_(f.review_statuses))
    if f.tags:
        first, *others = f.tags
        tagged = aliased(TaskTag, name="tagged")
        stmt = stmt.join(
            tagged,
            and_(tagged.task_seq == Task.seq, tagged.org_id == actor.org_id, tagged.tag == first),
        )
        key = tagged.task_seq
        if others:
            held = (
                select(func.count())
                .where(
                    TaskTag.task_seq == Task.seq,
                    TaskTag.org_id == actor.org_id,
                    TaskTag.tag.in_(others),
                )
                .scalar_subquery()
            )
            stmt = stmt.where(held == len(others))
    if f.unique_ids:
        stmt = stmt.where(Task.unique_id.in_(f.unique_ids))
    if f.created_after is not None:
        stmt = stmt.where(Task.created_at >= f.created_after)
    if f.created_before is not None:
        stmt = stmt.where(Task.created_at <= f.created_before)
    if f.updated_after is not None:
        stmt = stmt.where(Task.updated_at >= f.updated_after)
    if f.updated_before is not None:
        stmt = stmt.where(Task.updated_at <= f.updated_before)
    if f.completed_after is not None:
        stmt = stmt.where(Task.completed_at >= f.completed_after)
    if f.completed_before is not None:
        stmt = stmt.where(Task.completed_at <= f.completed_before)
    return stmt, key


@dataclass(frozen=True)
class TaskPage:
    tasks: list[TaskRow]
    next_token: str | None


#: Task's columns in TaskRow's field order (a test keeps the two in step).
_ROW_COLUMNS = [attr.columns[0] for attr in sa_inspect(Task).column_attrs]


def page_statement(actor: Actor, f: TaskFilters, *, after: int | None, limit: int) -> Select[Any]:
    """The statement for one page: rows after ``after`` in key order, ``limit`` of them."""
    stmt, key = _apply(readable(actor), f, actor)
    if after is not None:
        stmt = stmt.where(key > after)
    return stmt.with_only_columns(*_ROW_COLUMNS).order_by(key).limit(limit)


def page(
    session: Session,
    actor: Actor,
    f: TaskFilters,
    *,
    limit: int,
    token: str | None,
    total: int | None = None,
) -> TaskPage:
    """One page in key order, read as plain rows: a page is only serialized, and building
    a hundred ORM objects cost as much as the query. ``total`` rides in the next token when
    the filters are ones ``count`` has to count row by row."""
    after = pagination.decode_keyset(token)[0] if token else None
    stmt = page_statement(actor, f, after=after, limit=limit + 1)
    rows = [TaskRow(*row) for row in session.connection().execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1].seq if rows else None
    carried = None if f.countable_from_counters else total
    next_token = pagination.encode_keyset(last, carried) if more and last is not None else None
    return TaskPage(rows, next_token)


def count(session: Session, actor: Actor, f: TaskFilters, *, token: str | None = None) -> int:
    """The listing's total: from the status counters when they can answer, else counted (once
    per listing: later pages' tokens carry the first page's count)."""
    if token and not f.countable_from_counters:
        carried = pagination.decode_keyset(token)[1]
        if carried is not None:
            return carried
    if f.countable_from_counters:
        stmt = select(func.coalesce(func.sum(TaskCount.n), 0)).where(
            TaskCount.org_id == actor.org_id, TaskCount.is_test == actor.is_test
        )
        if f.project_id is not None:
            stmt = stmt.where(TaskCount.project_id == f.project_id)
        if f.batch_id is not None:
            stmt = stmt.where(TaskCount.batch_id == f.batch_id)
        if f.status is not None:
            stmt = stmt.where(TaskCount.status == f.status)
        if f.type is not None:
            stmt = stmt.where(TaskCount.type == f.type)
        return int(session.scalar(stmt) or 0)
    sub, _key = _apply(
        select(Task.seq).where(Task.org_id == actor.org_id, Task.is_test == actor.is_test), f, actor
    )
    return int(session.scalar(select(func.count()).select_from(sub.subquery())) or 0)


def names_for(
    session: Session, tasks: Sequence[Task | TaskRow]
) -> tuple[dict[str, str], dict[str, str]]:
    """Project and batch names for a page of tasks, in two indexed lookups.

    Projects and batches this session already loaded (a create just resolved them) are taken
    from the identity map without a query.
    """
    project_ids = {t.project_id for t in tasks if t.project_id}
    batch_ids = {t.batch_id for t in tasks if t.batch_id}
    projects: dict[str, str] = {}
    batches: dict[str, str] = {}
    for pid in list(project_ids):
        loaded = session.identity_map.get(identity_key(Project, pid))
        if loaded is not None:
            projects[pid] = loaded.name
            project_ids.discard(pid)
    for bid in list(batch_ids):
        batch = session.identity_map.get(identity_key(Batch, bid))
        if batch is not None:
            batches[bid] = batch.name
            batch_ids.discard(bid)
    if project_ids:
        rows = session.execute(select(Project.id, Project.name).where(Project.id.in_(project_ids)))
        projects.update({r[0]: r[1] for r in rows})
    if batch_ids:
        rows = session.execute(select(Batch.id, Batch.name).where(Batch.id.in_(batch_ids)))
        batches.update({r[0]: r[1] for r in rows})
    return projects, batches


def batch_counts(session: Session, batch: Batch) -> dict[str, int]:
    """How many of a batch's tasks are in each status, from the ``task_counts`` rows."""
    rows = session.execute(
        select(TaskCount.status, func.sum(TaskCount.n))
        .where(
            TaskCount.org_id == batch.org_id,
            TaskCount.is_test == batch.is_test,
            TaskCount.project_id == batch.project_id,
            TaskCount.batch_id == batch.id,
        )
        .group_by(TaskCount.status)
    )
    counts = {"pending": 0, "completed": 0, "error": 0, "canceled": 0}
    for status, n in rows:
        counts[status] = int(n or 0)
    return counts
