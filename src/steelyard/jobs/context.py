"""The job handler contract: what a handler receives and how it reports its outcome.

Kept apart from the runner so that domain packages can write and register handlers (callbacks,
aggregation, exports) without importing the runner, which is an edge like the API.

Handlers are ``fn(ctx: JobContext) -> None``. Returning means done; ``RetryLater`` (or any other
exception) retries after an exponential backoff until ``max_attempts``; ``GiveUp`` fails the job
at once. A handler that writes its result should do so in ``ctx.unit_of_work()``: that
transaction also settles the job, so the result and the job's new state commit together. Never
open it inside another write unit of work (on SQLite both take the process's write lock).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx
from sqlalchemy.orm import Session

from steelyard.callbacks.transport import checked_transport
from steelyard.callbacks.urls import TargetPolicy
from steelyard.clock import Clock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.jobs.models import Job

log = logging.getLogger("steelyard.jobs")

Outcome = Literal["done", "retry", "failed"]
Handler = Callable[["JobContext"], None]

#: ``last_error`` keeps the start of long messages (a receiver's error page, a traceback).
_MAX_ERROR_CHARS = 2000


class RetryLater(Exception):
    """This attempt failed; try again after the backoff (the job fails after its last attempt)."""


class GiveUp(Exception):
    """The job can never succeed (bad target, missing configuration): fail it now."""


@dataclass(frozen=True)
class ClaimedJob:
    """A snapshot of a claimed job row; ``attempt`` is 1 on the first try."""

    id: int
    kind: str
    payload: dict[str, Any]
    org_id: str | None
    attempt: int
    max_attempts: int

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


_registry: dict[str, Handler] = {}
_registry_lock = threading.Lock()


def register_handler(kind: str, handler: Handler) -> None:
    """Make every runner in this process run ``kind`` jobs with ``handler``."""
    with _registry_lock:
        _registry[kind] = handler


def registered_handler(kind: str) -> Handler | None:
    with _registry_lock:
        return _registry.get(kind)


def retry_delay(settings: Settings, attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt``: base·2^(attempt-1), capped."""
    exponent = min(max(attempt - 1, 0), 40)
    base = float(settings.callback_retry_base_seconds)
    return min(base * float(2**exponent), settings.callback_retry_max_delay_seconds)


def settle(
    session: Session,
    job: ClaimedJob,
    outcome: Outcome,
    error: str | None,
    *,
    now: datetime,
    settings: Settings,
) -> bool:
    """Record the attempt's outcome on the job row. False when the job is no longer ours
    (our lease lapsed and another runner reclaimed it), in which case the row is left alone."""
    row = session.get(Job, job.id, with_for_update=True)
    if row is None or row.status != "running" or row.attempts != job.attempt:
        log.warning(
            "job %s attempt %s finished after its lease was taken over", job.id, job.attempt
        )
        return False
    row.updated_at = now
    row.locked_until = None
    row.last_error = error[:_MAX_ERROR_CHARS] if error else None
    if outcome == "done":
        row.status = "done"
    elif outcome == "failed" or job.is_last_attempt:
        row.status = "failed"
        log.warning(
            "job %s (%s) failed after %s attempt(s): %s", job.id, job.kind, job.attempt, error
        )
    else:
        row.status = "queued"
        row.run_at = now + timedelta(seconds=retry_delay(settings, job.attempt))
    session.flush()
    return True


class JobContext:
    """What a handler gets: its job, the database, settings, clock and outgoing-HTTP seam."""

    def __init__(
        self,
        job: ClaimedJob,
        *,
        db: Database,
        settings: Settings,
        clock: Clock,
        transport: httpx.BaseTransport | None,
        http: httpx.Client | None = None,
    ) -> None:
        self.job = job
        self.db = db
        self.settings = settings
        self.clock = clock
        self.transport = transport
        self.outcome: Outcome = "done"
        self.error: str | None = None
        self.settled = False
        self._http = http

    @contextmanager
    def http_client(self, *, timeout: float) -> Iterator[httpx.Client]:
        """An HTTP client that never follows redirects: the runner's pooled one (so repeated
        callbacks to one receiver reuse connections) or, without a runner, a fresh one that
        checks each address it dials by these settings' ``TargetPolicy``, as the runner's does.
        Pass ``timeout`` on each request too; a shared client has no timeout of its own."""
        if self._http is not None:
            yield self._http
            return
        transport = self.transport or checked_transport(TargetPolicy.of(self.settings))
        with httpx.Client(transport=transport, timeout=timeout, follow_redirects=False) as client:
            yield client

    def retry(self, error: str) -> None:
        """Mark this attempt failed but retryable; applied when ``unit_of_work`` commits."""
        self.outcome, self.error = "retry", error

    def give_up(self, error: str) -> None:
        """Mark the job failed for good; applied when ``unit_of_work`` commits."""
        self.outcome, self.error = "failed", error

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A write transaction that also settles the job with the outcome set so far."""
        with self.db.unit_of_work() as session:
            yield session
            settle(
                session,
                self.job,
                self.outcome,
                self.error,
                now=self.clock.now(),
                settings=self.settings,
            )
        self.settled = True
