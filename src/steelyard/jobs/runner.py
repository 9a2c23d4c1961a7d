"""The job runner: claims due jobs from the outbox and runs each with its kind's handler.

A job is claimed in a short write transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on
SQLite ``BEGIN IMMEDIATE`` serialises claimers), which marks it ``running`` with a lease
(``locked_until``) and counts the attempt. The handler then runs outside that transaction, so a
slow callback receiver never holds a database lock. A runner that dies mid-job simply lets the
lease lapse; the next claim picks the job up again (delivery is at least once).

The handler contract (``JobContext``, ``RetryLater``, ``GiveUp``, ``register_handler``) lives in
``steelyard.jobs.context`` so domain packages can use it; it is re-exported here.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

import httpx
from sqlalchemy import and_, event, or_, select
from sqlalchemy.orm import Session

from steelyard.callbacks.transport import checked_transport
from steelyard.callbacks.urls import TargetPolicy
from steelyard.clock import Clock
from steelyard.config import Settings
from steelyard.db.dialect import skip_locked
from steelyard.db.engine import Database
from steelyard.jobs.context import (
    ClaimedJob,
    GiveUp,
    Handler,
    JobContext,
    Outcome,
    RetryLater,
    register_handler,
    registered_handler,
    retry_delay,
    settle,
)
from steelyard.jobs.models import Job

__all__ = [
    "ClaimedJob",
    "GiveUp",
    "Handler",
    "JobContext",
    "JobRunner",
    "Outcome",
    "RetryLater",
    "register_handler",
    "retry_delay",
    "settle",
]

log = logging.getLogger("steelyard.jobs")


def _builtin_handlers() -> dict[str, Handler]:
    # Imported when a runner is built: importing the runner alone stays light.
    from steelyard.callbacks import service as callbacks
    from steelyard.jobs import outbox
    from steelyard.workflow import worker_models

    return {
        outbox.TASK_CALLBACK: callbacks.handle_task_callback,
        outbox.BATCH_CALLBACK: callbacks.handle_batch_callback,
        worker_models.FIT_JOB: worker_models.handle_fit,
    }


class JobRunner:
    """Claims and runs due jobs: in a background thread (``start``/``stop``), in the
    foreground for ``steelyard jobs`` (``run_forever``), or one round at a time in tests."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock,
        transport: httpx.BaseTransport | None = None,
        handlers: dict[str, Handler] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.transport = transport
        self._handlers: dict[str, Handler] = {**_builtin_handlers(), **(handlers or {})}
        self.concurrency = max(1, settings.job_concurrency)
        self.batch_size = self.concurrency * 4
        self._executor: ThreadPoolExecutor | None = None
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._signalled = False
        self._listening = False
        # Per runner: several runners (tests, embedded servers) may share one process.
        self._info_key = f"steelyard_job_enqueued_{id(self)}"
        #: Expired leases are reclaimed this often (monotonic seconds), so their slots free up.
        self.reap_seconds = max(1.0, min(30.0, settings.lease_seconds / 4))
        self._reaped_at = float("-inf")
        self._models_checked_at = float("-inf")

    def register_handler(self, kind: str, handler: Handler) -> None:
        """Run ``kind`` jobs with ``handler`` in this runner (wins over the process registry)."""
        self._handlers[kind] = handler

    def _handler_for(self, kind: str) -> Handler | None:
        if kind in self._handlers:
            return self._handlers[kind]
        return registered_handler(kind)

    # --- one round ---------------------------------------------------------------------

    def run_once(self, limit: int | None = None) -> int:
        """Claim up to ``limit`` due jobs, run them, and return how many ran."""
        self.reap_leases()
        self.refresh_worker_models()
        claimed = self.claim(limit or self.batch_size)
        if len(claimed) <= 1 or self.concurrency == 1:
            for job in claimed:
                self._execute(job)
        else:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.concurrency, thread_name_prefix="steelyard-job"
                )
            list(self._executor.map(self._execute, claimed))
        return len(claimed)

    def reap_leases(self, *, force: bool = False) -> int:
        """Expire the leases that ran out (``workflow.leases.reclaim_expired``, and quality
        leases by ``workflow.quality_answers.reclaim_expired``) and put reviews whose lease ran
        out back in the queue (``workflow.review.reclaim_expired``), at most once per
        ``reap_seconds`` unless ``force``; asks in a read transaction first, as ``claim`` does."""
        from steelyard.workflow import leases, quality_answers, review

        if not force and time.monotonic() - self._reaped_at < self.reap_seconds:
            return 0
        self._reaped_at = time.monotonic()
        now = self.clock.now()
        reclaimed = 0
        try:
            for kind in (leases, quality_answers, review):
                with self.db.unit_of_work(write=False) as session:
                    if not kind.anything_expired(session, now):
                        continue
                while True:
                    with self.db.unit_of_work() as session:
                        n = kind.reclaim_expired(session, now)
                    reclaimed += n
                    if n < leases.RECLAIM_BATCH:
                        break
            return reclaimed
        except Exception:
            log.exception("reclaiming expired leases failed; the next round tries again")
            return reclaimed

    def refresh_worker_models(self, *, force: bool = False) -> int:
        """Enqueue a refit for each project whose worker model is due
        (``workflow.worker_models.due``), at most once per ``CHECK_SECONDS`` unless ``force``;
        asks in a read transaction and writes only when something is due."""
        from steelyard.workflow import worker_models

        now_m = time.monotonic()
        if not force and now_m - self._models_checked_at < worker_models.CHECK_SECONDS:
            return 0
        self._models_checked_at = now_m
        now = self.clock.now()
        try:
            with self.db.unit_of_work(write=False) as session:
                due = worker_models.due(session, now)
            if not due:
                return 0
            with self.db.unit_of_work() as session:
                return worker_models.enqueue_due(session, due, now)
        except Exception:
            log.exception("checking worker models failed; the next round tries again")
            return 0

    def claim(self, limit: int) -> list[ClaimedJob]:
        now = self.clock.now()
        lease = timedelta(seconds=self.settings.job_lease_seconds)
        if not self._anything_due(now):
            return []
        with self.db.unit_of_work() as session:
            # Jobs whose runner died (lease lapsed) first: they are the oldest work.
            stale = (
                select(Job)
                .where(Job.status == "running", Job.locked_until < now)
                .order_by(Job.locked_until, Job.id)
                .limit(limit)
            )
            rows = list(session.scalars(skip_locked(session, stale)))
            if len(rows) < limit:
                due = (
                    select(Job)
                    .where(Job.status == "queued", Job.run_at <= now)
                    .order_by(Job.run_at, Job.id)
                    .limit(limit - len(rows))
                )
                rows.extend(session.scalars(skip_locked(session, due)))
            claimed = []
            for row in rows:
                row.status = "running"
                row.attempts += 1
                row.locked_until = now + lease
                row.updated_at = now
                claimed.append(
                    ClaimedJob(
                        id=row.id,
                        kind=row.kind,
                        payload=dict(row.payload or {}),
                        org_id=row.org_id,
                        attempt=row.attempts,
                        max_attempts=row.max_attempts,
                    )
                )
        return claimed

    def _anything_due(self, now: datetime) -> bool:
        """Whether a claim would find work, asked in a read transaction.

        The runner polls twice a second; on SQLite a claim is a write transaction, which would
        take the write lock from the requests each time even with nothing to do.
        """
        due = or_(
            and_(Job.status == "running", Job.locked_until < now),
            and_(Job.status == "queued", Job.run_at <= now),
        )
        with self.db.unit_of_work(write=False) as session:
            return session.scalar(select(Job.id).where(due).limit(1)) is not None

    def _execute(self, job: ClaimedJob) -> None:
        if self._stopping():
            # Shutting down: hand the job back now rather than let its lease run out.
            self._release(job)
            return
        ctx = JobContext(
            job,
            db=self.db,
            settings=self.settings,
            clock=self.clock,
            transport=self.transport,
            http=self._http_client(),
        )
        handler = self._handler_for(job.kind)
        try:
            if handler is None:
                # Perhaps a newer process registered this kind (rolling upgrade): retry later.
                raise RetryLater(f"no handler for job kind '{job.kind}' in this process")
            handler(ctx)
        except GiveUp as exc:
            ctx.give_up(str(exc) or "gave up")
        except RetryLater as exc:
            ctx.retry(str(exc) or "retry")
        except Exception as exc:
            log.exception("job %s (%s) attempt %s raised", job.id, job.kind, job.attempt)
            ctx.retry(f"{type(exc).__name__}: {exc}")
        if ctx.settled:
            return
        try:
            with self.db.unit_of_work() as session:
                settle(
                    session,
                    job,
                    ctx.outcome,
                    ctx.error,
                    now=self.clock.now(),
                    settings=self.settings,
                )
        except Exception:
            # The lease will lapse and the job will be retried; nothing is lost.
            log.exception("could not record the outcome of job %s", job.id)

    def _release(self, job: ClaimedJob) -> None:
        try:
            with self.db.unit_of_work() as session:
                row = session.get(Job, job.id, with_for_update=True)
                if row is not None and row.status == "running" and row.attempts == job.attempt:
                    row.status = "queued"
                    row.attempts -= 1
                    row.locked_until = None
                    row.updated_at = self.clock.now()
        except Exception:
            log.exception("could not hand back job %s; its lease will lapse", job.id)

    # --- background and foreground loops ---------------------------------------------

    def wake(self) -> None:
        """Run the next round now instead of at the end of the poll interval."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._listen(True)
        self._thread = threading.Thread(target=self._loop, name="steelyard-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling and wait for the job in hand (at most about one callback timeout)."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        busy = False
        if thread is not None:
            thread.join(self.settings.callback_timeout_seconds + 5 if timeout is None else timeout)
            busy = thread.is_alive()
            if busy:
                log.warning("job runner still busy at shutdown; its leases will lapse and retry")
        self._shutdown(wait=not busy)

    def run_forever(self) -> None:
        """The ``steelyard jobs`` loop: until SIGINT/SIGTERM, then finish the job in hand."""
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, self._on_signal)
        self._stop.clear()
        self._listen(True)
        try:
            self._loop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._shutdown()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only a plain flag: taking a lock here could deadlock with the interrupted code.
        if self._signalled:
            raise KeyboardInterrupt  # a second ^C means stop now
        self._signalled = True
        log.info("received signal %s; finishing the job in hand", signum)

    def _stopping(self) -> bool:
        return self._signalled or self._stop.is_set()

    def _loop(self) -> None:
        while not self._stopping():
            try:
                ran = self.run_once()
            except Exception:
                log.exception("job runner round failed")
                ran = 0
            if ran >= self.batch_size or self._stopping():
                continue  # more may be due right away
            self._wake.wait(self.settings.job_poll_seconds)
            self._wake.clear()

    def _http_client(self) -> httpx.Client:
        with self._http_lock:
            if self._http is None:
                self._http = httpx.Client(
                    transport=self.transport or checked_transport(TargetPolicy.of(self.settings)),
                    timeout=self.settings.callback_timeout_seconds,
                    follow_redirects=False,
                )
            return self._http

    def _shutdown(self, *, wait: bool = True) -> None:
        self._listen(False)
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
            self._executor = None
        if not wait:
            return  # a job is still sending; closing its client under it would only fail it
        with self._http_lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    # --- waking when a job is enqueued in this process --------------------------------

    def _listen(self, on: bool) -> None:
        if on == self._listening:
            return
        for name, fn in (("after_flush", self._after_flush), ("after_commit", self._after_commit)):
            (event.listen if on else event.remove)(Session, name, fn)
        self._listening = on

    def _ours(self, session: Session) -> bool:
        try:
            return session.get_bind().engine.pool is self.db.engine.pool
        except Exception:
            return False

    def _after_flush(self, session: Session, _context: Any) -> None:
        if any(isinstance(obj, Job) for obj in session.new) and self._ours(session):
            session.info[self._info_key] = True

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(self._info_key, False):
            self.wake()
