"""The labeling path workers drive, in three modules:

* ``leases``: ``next_assignment`` (k workers per task, counted by compare-and-set), heartbeat,
  release, skip, and the reaper's ``reclaim_expired``;
* ``completion``: a submit checked before its write (``submit_target``, ``check_submission``),
  stored (``submit``), and the task completed with its aggregate;
* ``aggregation``: labels → response and confidence, by the task type's ``aggregator``.

This module is what the edges import.
"""

from __future__ import annotations

from steelyard.workflow.completion import (
    Submission,
    SubmitTarget,
    Submitted,
    check_submission,
    submit,
    submit_target,
)
from steelyard.workflow.leases import (
    CANDIDATES,
    WORKER_ROLES,
    Lease,
    anything_expired,
    give_back,
    heartbeat,
    next_assignment,
    reclaim_expired,
)

__all__ = [
    "CANDIDATES",
    "WORKER_ROLES",
    "Lease",
    "Submission",
    "SubmitTarget",
    "Submitted",
    "anything_expired",
    "check_submission",
    "give_back",
    "heartbeat",
    "next_assignment",
    "reclaim_expired",
    "submit",
    "submit_target",
]
