"""Tasks on the wire: Scale's v1 shape (what the API returns and what callbacks carry) for the
customer, and the labeler's view for workers."""

from __future__ import annotations

from typing import Any, Protocol

from steelyard.tasks.models import QualityTask, Task, TaskRow
from steelyard.tasktypes import registry
from steelyard.timefmt import iso


def task_to_scale(
    task: Task | TaskRow,
    *,
    project_name: str | None,
    batch_name: str | None,
    limited: bool = False,
    attachment_url: str | None = None,
) -> dict[str, Any]:
    if limited:
        # what the client's docstring promises for limited_response=true
        return {
            "task_id": task.task_id,
            "status": task.status,
            "metadata": task.metadata_ or {},
            "project": project_name,
            "otherVersion": None,
        }
    doc: dict[str, Any] = {
        "task_id": task.task_id,
        "type": task.type,
        "status": task.status,
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
        "instruction": task.instruction or "",
        "params": task.params or {},
        "callback_url": task.callback_url,
        "callback_succeeded": task.callback_succeeded,
        "metadata": task.metadata_ or {},
        "tags": list(task.tags or []),
        "is_test": task.is_test,
        "priority": task.priority,
        "audits": list(task.audits or []),
        "customer_review_comments": list(task.customer_review_comments or []),
        "prior_responses": list(task.prior_responses or []),
    }
    if project_name is not None:
        doc["project"] = project_name
    if batch_name is not None:
        doc["batch"] = batch_name
    if task.unique_id is not None:
        doc["unique_id"] = task.unique_id
    if task.response is not None:
        doc["response"] = task.response
    if task.confidence is not None:
        doc["confidence"] = task.confidence
    if task.completed_at is not None:
        doc["completed_at"] = iso(task.completed_at)
    if task.customer_review_status is not None:
        doc["customer_review_status"] = task.customer_review_status
    if task.error:
        doc["error"] = task.error
    if attachment_url is not None:
        doc["attachment_url"] = attachment_url
    return doc


class WorkerTask(Protocol):
    """What the labeler's view reads of a task: a ``Task``, or a row of just these columns
    (``workflow.leases.LeasedTask``)."""

    @property
    def task_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def instruction(self) -> str | None: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def rework(self) -> dict[str, Any] | None: ...


def task_for_worker(task: WorkerTask, *, project_name: str | None) -> dict[str, Any]:
    """A task as a labeler sees it: what to label and how, from an allow-list.

    Every worker-facing route shows a task through this function only. The customer's own
    fields (``callback_url``, ``unique_id``, ``metadata``, ``tags``, batch, audits, callback
    state, priority...) never reach a worker, and of the params only the keys the task type
    names in ``worker_params`` do (a customer may keep anything else in the params). A task
    sent back by an audit or review rejection adds ``rework`` with the comment.
    """
    doc = _worker_view(task.task_id, task.type, task.instruction, task.params or {}, project_name)
    rework = _rework(task)
    if rework is not None:
        doc["rework"] = rework
    return doc


def quality_task_for_worker(
    task: QualityTask, *, task_id: str, instruction: str | None, project_name: str | None
) -> dict[str, Any]:
    """An evaluation or training task as a labeler sees it: exactly the keys and allow-list of
    ``task_for_worker`` (gold must not stand out), under the ``task_id`` the worker is shown."""
    return _worker_view(task_id, task.type, instruction, task.params or {}, project_name)


def _worker_view(
    task_id: str,
    type_name: str,
    instruction: str | None,
    params: dict[str, Any],
    project_name: str | None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "task_id": task_id,
        "type": type_name,
        "instruction": instruction or "",
        "params": {k: params[k] for k in registry.get(type_name).worker_params if k in params},
    }
    if project_name is not None:
        # The worker chooses its queue by project name (``/api/work/next?project=``).
        doc["project"] = project_name
    return doc


def _rework(task: WorkerTask) -> dict[str, Any] | None:
    """A task sent back (``workflow.rework``) by a customer's audit rejection or a reviewer's:
    the comment, which is what the next labeler needs; not who rejected it, nor the answer."""
    if task.status != "pending" or not task.rework:
        return None
    return dict(task.rework)
