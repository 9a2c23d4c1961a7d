"""Imports every table so the metadata (and Alembic) sees the whole schema."""

from steelyard.accounts.auth_epoch import AuthEpoch
from steelyard.accounts.models import ApiKey, LoginSession, Membership, Organization, User
from steelyard.callbacks.models import CallbackDelivery
from steelyard.db.base import Base
from steelyard.files.models import StoredFile
from steelyard.idempotency.models import IdempotencyRecord
from steelyard.jobs.models import Job
from steelyard.pay.models import PayEntry, PayOrgSettings, PayPeriod, PayPosting
from steelyard.projects.models import Batch, Project
from steelyard.ratelimit.models import RateLimitBucket
from steelyard.studio.models import BatchGroup, ProjectGroup, ProjectGroupMember, StudioAssignment
from steelyard.tasks.models import QualityTask, Task, TaskCount, TaskTag
from steelyard.workflow.models import Assignment, Label, QualityAnswer, WorkerPause

__all__ = [
    "ApiKey",
    "Assignment",
    "AuthEpoch",
    "Base",
    "Batch",
    "BatchGroup",
    "CallbackDelivery",
    "IdempotencyRecord",
    "Job",
    "Label",
    "LoginSession",
    "Membership",
    "Organization",
    "PayEntry",
    "PayOrgSettings",
    "PayPeriod",
    "PayPosting",
    "Project",
    "ProjectGroup",
    "ProjectGroupMember",
    "QualityAnswer",
    "QualityTask",
    "RateLimitBucket",
    "StoredFile",
    "StudioAssignment",
    "Task",
    "TaskCount",
    "TaskTag",
    "User",
    "WorkerPause",
]
