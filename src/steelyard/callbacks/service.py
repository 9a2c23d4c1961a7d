"""Callback delivery: the task and batch callback job handlers, and the delivery log.

Every attempt is one ``CallbackDelivery`` row. A request carries, besides Scale's
``scale-callback-auth`` header (the organization's callback key, for receivers written against
Scale), an HMAC signature a receiver can verify without trusting the transport::

    X-Steelyard-Timestamp: <unix seconds>
    X-Steelyard-Signature: sha256=<hex HMAC-SHA256(callback_auth_key, "<timestamp>." + raw body)>

The handlers read in one short transaction, send with no transaction open (a slow receiver must
not hold a database lock), then record the attempt and settle the job in a second transaction.
"""

from __future__ import annotations

import hmac
import json
import logging
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from steelyard import __version__
from steelyard.accounts import security
from steelyard.accounts.models import Organization
from steelyard.callbacks import email
from steelyard.callbacks.models import CallbackDelivery
from steelyard.callbacks.transport import refused_at_connect
from steelyard.callbacks.urls import TargetPolicy, check_url, is_email
from steelyard.errors import ValidationError
from steelyard.jobs.context import JobContext
from steelyard.projects.models import Batch, Project
from steelyard.tasks.models import Task
from steelyard.tasks.repository import batch_counts
from steelyard.tasks.serialize import task_to_scale
from steelyard.timefmt import iso

log = logging.getLogger("steelyard.callbacks")

USER_AGENT = f"Steelyard/{__version__}"
TIMESTAMP_HEADER = "X-Steelyard-Timestamp"
SIGNATURE_HEADER = "X-Steelyard-Signature"
AUTH_HEADER = "scale-callback-auth"
NO_SMTP = "email callbacks need STEELYARD_SMTP_URL"
#: How much of a failing receiver's answer is kept in the delivery log.
_ERROR_BODY_CHARS = 500


@dataclass(frozen=True)
class Outgoing:
    """One callback ready to send (built in a read transaction, sent outside any)."""

    org_id: str
    url: str
    field: str
    body: bytes
    auth_key: str
    subject: str
    task_id: str | None = None
    batch_id: str | None = None


@dataclass(frozen=True)
class Attempt:
    succeeded: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: float | None = None
    #: Retrying cannot help (refused target, no SMTP server configured).
    permanent: bool = False


def sign_body(auth_key: str, body: bytes, timestamp: int) -> str:
    return "sha256=" + security.sign(auth_key, f"{timestamp}.".encode() + body)


def verify_signature(
    auth_key: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    now: datetime,
    tolerance_seconds: float = 300,
) -> bool:
    """What a receiver does: recompute the signature and refuse stale timestamps (replays)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - sent) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign_body(auth_key, body, sent), signature)


def request_headers(out: Outgoing, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        AUTH_HEADER: out.auth_key,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign_body(out.auth_key, out.body, timestamp),
    }


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- handlers ---------------------------------------------------------------------------------


def handle_task_callback(ctx: JobContext) -> None:
    """Job ``task_callback`` (payload ``{"task_id", "event"}``, and for a completion the
    completion as it happened, ``tasks.service.completion_callback``): POST the task to its
    callback."""
    task_id = str(ctx.job.payload.get("task_id", ""))
    completion = ctx.job.payload.get("completion")
    with ctx.db.unit_of_work(write=False) as session:
        out = _prepare_task(
            session, task_id, ctx.job.org_id, completion if isinstance(completion, dict) else None
        )
    if out is None:
        return  # the task or its callback_url is gone: nothing to deliver
    attempt = _deliver(ctx, out)
    with ctx.unit_of_work() as session:
        _record(session, ctx, out, attempt)
        task = session.scalar(select(Task).where(Task.task_id == task_id))
        if task is not None:
            if attempt.succeeded:
                task.callback_succeeded = True
            elif attempt.permanent or ctx.job.is_last_attempt:
                task.callback_succeeded = False


def handle_batch_callback(ctx: JobContext) -> None:
    """Job ``batch_callback`` (payload ``{"batch_id"}``): POST the batch and its task counts."""
    batch_id = str(ctx.job.payload.get("batch_id", ""))
    with ctx.db.unit_of_work(write=False) as session:
        out = _prepare_batch(session, batch_id, ctx.job.org_id)
    if out is None:
        return
    attempt = _deliver(ctx, out)
    with ctx.unit_of_work() as session:
        _record(session, ctx, out, attempt)


def _prepare_task(
    session: Session, task_id: str, org_id: str | None, completion: dict[str, Any] | None = None
) -> Outgoing | None:
    task = session.scalar(select(Task).where(Task.task_id == task_id))
    if task is None or not task.callback_url or (org_id is not None and task.org_id != org_id):
        return None
    project_name = (
        session.scalar(select(Project.name).where(Project.id == task.project_id))
        if task.project_id
        else None
    )
    batch_name = (
        session.scalar(select(Batch.name).where(Batch.id == task.batch_id))
        if task.batch_id
        else None
    )
    doc = task_to_scale(task, project_name=project_name, batch_name=batch_name)
    response = task.response
    status = task.status
    if completion is not None:
        # The completion this callback reports, even if the task was sent back since.
        status = str(completion.get("status", status))
        response = completion.get("response")
        doc["status"] = status
        doc["response"] = response
        doc["completed_at"] = completion.get("completed_at")
        if completion.get("confidence") is not None:
            doc["confidence"] = completion["confidence"]
        else:
            doc.pop("confidence", None)
    body = _encode({"task": doc, "response": response, "task_id": task.task_id})
    return Outgoing(
        org_id=task.org_id,
        url=task.callback_url,
        field="callback_url",
        body=body,
        auth_key=_auth_key(session, task.org_id),
        subject=f"Steelyard task {task.task_id} is {status}",
        task_id=task.task_id,
    )


def batch_payload(session: Session, batch: Batch) -> dict[str, Any]:
    """The batch object (as ``GET batches/{name}`` shows it) plus its task counts by status,
    flat like ``GET batches/{name}/status``."""
    project_name = session.scalar(select(Project.name).where(Project.id == batch.project_id))
    return {
        "id": batch.id,
        "name": batch.name,
        "project": project_name,
        "status": batch.status,
        "created_at": iso(batch.created_at),
        "completed_at": iso(batch.completed_at) if batch.completed_at else None,
        "metadata": batch.metadata_ or {},
        "callback": batch.callback or "",
        "calibration_batch": batch.calibration_batch,
        "self_label_batch": batch.self_label_batch,
        **batch_counts(session, batch),
    }


def _prepare_batch(session: Session, batch_id: str, org_id: str | None) -> Outgoing | None:
    batch = session.get(Batch, batch_id)
    if batch is None or not batch.callback or (org_id is not None and batch.org_id != org_id):
        return None
    return Outgoing(
        org_id=batch.org_id,
        url=batch.callback,
        field="callback",
        body=_encode(batch_payload(session, batch)),
        auth_key=_auth_key(session, batch.org_id),
        subject=f"Steelyard batch {batch.name} is {batch.status}",
        batch_id=batch.id,
    )


def _auth_key(session: Session, org_id: str) -> str:
    key = session.scalar(select(Organization.callback_auth_key).where(Organization.id == org_id))
    return key or ""


# --- sending ----------------------------------------------------------------------------------


def _deliver(ctx: JobContext, out: Outgoing) -> Attempt:
    if is_email(out.url):
        return _deliver_email(ctx, out)
    try:
        # Again at send time (no transaction is open here, so it may wait on DNS): the name
        # may point somewhere it did not when the URL was given, or had no answer then.
        check_url(out.url, field=out.field, policy=TargetPolicy.of(ctx.settings), resolve=True)
    except ValidationError as exc:
        return Attempt(succeeded=False, error=f"refused: {exc.message}", permanent=True)
    timestamp = int(ctx.clock.now().timestamp())
    timeout = ctx.settings.callback_timeout_seconds
    started = time.monotonic()
    try:
        with (
            ctx.http_client(timeout=timeout) as client,
            client.stream(
                "POST",
                out.url,
                content=out.body,
                headers=request_headers(out, timestamp),
                timeout=timeout,
            ) as resp,
        ):
            status = resp.status_code
            if 200 <= status < 300:
                return Attempt(succeeded=True, status_code=status, duration_ms=_ms(started))
            # Read only the start of the answer: a hostile receiver could stream forever.
            snippet = b""
            for chunk in resp.iter_bytes():
                snippet += chunk
                if len(snippet) >= _ERROR_BODY_CHARS:
                    break
        text = snippet[:_ERROR_BODY_CHARS].decode("utf-8", "replace").strip()
        if out.auth_key:
            # An echoing receiver must not get the key into our logs and delivery records.
            text = text.replace(out.auth_key, "[redacted]")
        reason = "redirects are not followed" if 300 <= status < 400 else text
        error = f"HTTP {status}" + (f": {reason}" if reason else "")
        return Attempt(succeeded=False, status_code=status, error=error, duration_ms=_ms(started))
    except Exception as exc:
        if refused_at_connect(exc):
            # The name now resolves to an address we do not call: retrying cannot help.
            return Attempt(
                succeeded=False,
                error=f"refused: {_describe(exc)}",
                duration_ms=_ms(started),
                permanent=True,
            )
        # Network errors, timeouts, TLS failures, bad URLs: all retryable.
        return Attempt(succeeded=False, error=_describe(exc), duration_ms=_ms(started))


def _deliver_email(ctx: JobContext, out: Outgoing) -> Attempt:
    settings = ctx.settings
    if not settings.smtp_url:
        return Attempt(succeeded=False, error=NO_SMTP, permanent=True)
    timestamp = int(ctx.clock.now().timestamp())
    # The signature travels as mail headers; the auth key itself does not (mail is stored and
    # forwarded in places we do not control).
    headers = {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign_body(out.auth_key, out.body, timestamp),
    }
    started = time.monotonic()
    try:
        email.send_email(
            settings.smtp_url,
            sender=settings.smtp_from,
            to=out.url,
            subject=out.subject,
            body=out.body,
            headers=headers,
            timeout=settings.callback_timeout_seconds,
        )
    except smtplib.SMTPRecipientsRefused as exc:
        return Attempt(
            succeeded=False, error=_describe(exc), duration_ms=_ms(started), permanent=True
        )
    except ValidationError as exc:  # a malformed STEELYARD_SMTP_URL
        return Attempt(succeeded=False, error=exc.message, duration_ms=_ms(started), permanent=True)
    except (smtplib.SMTPException, OSError) as exc:
        return Attempt(succeeded=False, error=_describe(exc), duration_ms=_ms(started))
    return Attempt(succeeded=True, duration_ms=_ms(started))


def _record(session: Session, ctx: JobContext, out: Outgoing, attempt: Attempt) -> None:
    session.add(
        CallbackDelivery(
            org_id=out.org_id,
            job_id=ctx.job.id,
            task_id=out.task_id,
            batch_id=out.batch_id,
            url=out.url[:2000],
            attempt=ctx.job.attempt,
            status_code=attempt.status_code,
            succeeded=attempt.succeeded,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
            created_at=ctx.clock.now(),
        )
    )
    if attempt.succeeded:
        return
    error = attempt.error or "failed"
    # The log line names the host only: paths and query strings may carry the customer's tokens.
    log.info(
        "callback to %s for %s failed (attempt %s): %s",
        _host(out.url),
        out.task_id or out.batch_id,
        ctx.job.attempt,
        error,
    )
    if attempt.permanent:
        ctx.give_up(error)
    else:
        ctx.retry(error)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _host(url: str) -> str:
    return url.split("@")[-1] if is_email(url) else (urlsplit(url).hostname or "?")


# --- queries ----------------------------------------------------------------------------------


def deliveries_for_task(session: Session, org_id: str, task_id: str) -> list[CallbackDelivery]:
    """Every attempt to deliver ``task_id``'s callbacks, oldest first (organization-scoped)."""
    stmt = (
        select(CallbackDelivery)
        .where(CallbackDelivery.org_id == org_id, CallbackDelivery.task_id == task_id)
        .order_by(CallbackDelivery.created_at, CallbackDelivery.job_id, CallbackDelivery.attempt)
    )
    return list(session.scalars(stmt))


def delivery_to_json(delivery: CallbackDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "task_id": delivery.task_id,
        "batch_id": delivery.batch_id,
        "url": delivery.url,
        "attempt": delivery.attempt,
        "succeeded": delivery.succeeded,
        "status_code": delivery.status_code,
        "error": delivery.error,
        "duration_ms": delivery.duration_ms,
        "created_at": iso(delivery.created_at),
    }
