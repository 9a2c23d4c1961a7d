"""Callback delivery through the job runner, with httpx's mock transport as the receiver."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import scaleapi
from scaleapi.tasks import TaskType
from sqlalchemy import select

from steelyard import __version__
from steelyard.api.app import create_app
from steelyard.callbacks import service as callbacks
from steelyard.callbacks.models import CallbackDelivery
from steelyard.callbacks.transport import refused_at_connect
from steelyard.clock import FrozenClock
from steelyard.config import Settings, load_settings
from steelyard.db.engine import Database
from steelyard.jobs import outbox
from steelyard.jobs.context import ClaimedJob, JobContext
from steelyard.jobs.models import Job
from steelyard.jobs.runner import JobRunner
from steelyard.projects.models import Batch, Project
from steelyard.tasks.models import Task, TaskCount
from tests.callbacks.fakedns import FakeDns
from tests.jobs.helpers import NewOrg, create_org, serve

#: A public address: literal IPs are checked without DNS, and the mock transport never dials.
HOOK = "https://93.184.215.14/hooks/steelyard?token=abc"


class Receiver:
    """A mock callback receiver answering with the given status codes in turn (last repeats)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses) or [200]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses[min(len(self.requests) - 1, len(self.statuses) - 1)]
        return httpx.Response(status, text="ok" if status < 300 else "receiver error")

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def make_task(db: Database, org: NewOrg, clock: FrozenClock, *, callback_url: str = HOOK) -> str:
    """A completed task with a callback job queued, as the task service leaves it."""
    with db.unit_of_work() as session:
        project = Project(
            org_id=org.org_id, is_test=False, name="Cats", type="categorization", param_history=[]
        )
        session.add(project)
        session.flush()
        task = Task(
            org_id=org.org_id,
            is_test=False,
            project_id=project.id,
            type="categorization",
            status="completed",
            params={"categories": ["cat", "dog"]},
            response={"category": "cat"},
            callback_url=callback_url,
            metadata_={"k": "v"},
            created_at=clock.now(),
            updated_at=clock.now(),
            completed_at=clock.now(),
        )
        session.add(task)
        session.flush()
        outbox.enqueue(
            session,
            outbox.TASK_CALLBACK,
            {"task_id": task.task_id, "event": "completed"},
            org_id=org.org_id,
            now=clock.now(),
        )
        return task.task_id


def state(db: Database, task_id: str) -> tuple[bool | None, list[CallbackDelivery], list[Job]]:
    with db.unit_of_work(write=False) as session:
        task = session.scalar(select(Task).where(Task.task_id == task_id))
        assert task is not None
        deliveries = session.scalars(
            select(CallbackDelivery)
            .where(CallbackDelivery.task_id == task_id)
            .order_by(CallbackDelivery.attempt)
        ).all()
        jobs = session.scalars(select(Job).order_by(Job.id)).all()
        session.expunge_all()
        return task.callback_succeeded, list(deliveries), list(jobs)


Runner = Callable[..., JobRunner]


@pytest.fixture
def make_runner(fresh_db: Database, job_settings: Settings, clock: FrozenClock) -> Runner:
    def build(transport: httpx.BaseTransport | None = None, **overrides: Any) -> JobRunner:
        settings = job_settings.model_copy(update=overrides)
        return JobRunner(fresh_db, settings, clock=clock, transport=transport)

    return build


def test_delivers_the_task_with_scale_headers_and_a_valid_signature(
    fresh_db: Database, new_org: NewOrg, clock: FrozenClock, make_runner: Runner
) -> None:
    receiver = Receiver(200)
    task_id = make_task(fresh_db, new_org, clock)
    assert make_runner(receiver.transport).run_once() == 1

    [request] = receiver.requests
    assert request.method == "POST" and str(request.url) == HOOK
    assert request.headers["content-type"] == "application/json"
    assert request.headers["scale-callback-auth"] == new_org.callback_auth_key
    assert request.headers["user-agent"] == f"Steelyard/{__version__}"
    timestamp = request.headers["x-steelyard-timestamp"]
    assert int(timestamp) == int(clock.now().timestamp())
    expected = hmac.new(
        new_org.callback_auth_key.encode(),
        timestamp.encode() + b"." + request.content,
        hashlib.sha256,
    ).hexdigest()
    assert request.headers["x-steelyard-signature"] == f"sha256={expected}"
    assert callbacks.verify_signature(
        new_org.callback_auth_key,
        request.content,
        timestamp,
        request.headers["x-steelyard-signature"],
        now=clock.now(),
    )

    body = json.loads(request.content)
    assert body["task_id"] == task_id
    assert body["response"] == {"category": "cat"}
    assert body["task"]["task_id"] == task_id
    assert body["task"]["status"] == "completed"
    assert body["task"]["project"] == "Cats"
    assert body["task"]["metadata"] == {"k": "v"}

    succeeded, deliveries, jobs = state(fresh_db, task_id)
    assert succeeded is True
    [delivery] = deliveries
    assert (delivery.attempt, delivery.status_code, delivery.succeeded, delivery.error) == (
        1,
        200,
        True,
        None,
    )
    assert delivery.duration_ms is not None and delivery.url == HOOK
    assert [j.status for j in jobs] == ["done"]
    with fresh_db.unit_of_work(write=False) as session:
        listed = callbacks.deliveries_for_task(session, new_org.org_id, task_id)
        assert [d.id for d in listed] == [delivery.id]
        assert callbacks.deliveries_for_task(session, "someone-else", task_id) == []
        assert callbacks.delivery_to_json(listed[0])["status_code"] == 200


def test_a_tampered_body_or_stale_timestamp_fails_verification() -> None:
    now = FrozenClock().now()
    ts = str(int(now.timestamp()))
    signature = callbacks.sign_body("key", b'{"a":1}', int(ts))
    assert callbacks.verify_signature("key", b'{"a":1}', ts, signature, now=now)
    assert not callbacks.verify_signature("key", b'{"a":2}', ts, signature, now=now)
    assert not callbacks.verify_signature("other", b'{"a":1}', ts, signature, now=now)
    late = now + timedelta(minutes=10)
    assert not callbacks.verify_signature("key", b'{"a":1}', ts, signature, now=late)


def test_500_twice_then_200_retries_on_the_backoff_schedule(
    fresh_db: Database, new_org: NewOrg, clock: FrozenClock, make_runner: Runner
) -> None:
    receiver = Receiver(500, 500, 200)
    runner = make_runner(receiver.transport)
    task_id = make_task(fresh_db, new_org, clock)
    start = clock.now()

    assert runner.run_once() == 1
    clock.advance(59)
    assert runner.run_once() == 0, "retried before base·2⁰ = 60 s"
    clock.advance(1)
    assert runner.run_once() == 1
    clock.advance(119)
    assert runner.run_once() == 0, "retried before base·2¹ = 120 s"
    assert state(fresh_db, task_id)[0] is None, "not decided while retries remain"
    clock.advance(1)
    assert runner.run_once() == 1

    succeeded, deliveries, jobs = state(fresh_db, task_id)
    assert succeeded is True
    assert [(d.attempt, d.status_code, d.succeeded) for d in deliveries] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert [d.created_at - start for d in deliveries] == [
        timedelta(0),
        timedelta(seconds=60),
        timedelta(seconds=180),
    ]
    assert deliveries[0].error == "HTTP 500: receiver error"
    assert [j.status for j in jobs] == ["done"]
    assert len(receiver.requests) == 3


def test_twenty_failures_fail_the_job_and_the_task_callback(
    fresh_db: Database, new_org: NewOrg, clock: FrozenClock, make_runner: Runner
) -> None:
    receiver = Receiver(503)
    runner = make_runner(receiver.transport)
    task_id = make_task(fresh_db, new_org, clock)
    for _ in range(20):
        assert state(fresh_db, task_id)[0] is None
        assert runner.run_once() == 1
        clock.advance(6 * 3600)
    assert runner.run_once() == 0

    succeeded, deliveries, jobs = state(fresh_db, task_id)
    assert succeeded is False
    assert [d.attempt for d in deliveries] == list(range(1, 21))
    assert not any(d.succeeded for d in deliveries)
    assert [(j.status, j.attempts) for j in jobs] == [("failed", 20)]


def test_network_errors_and_redirects_count_as_failures(
    fresh_db: Database, new_org: NewOrg, clock: FrozenClock, make_runner: Runner
) -> None:
    answers: Iterator[httpx.Response | Exception] = iter(
        [httpx.ConnectError("connection refused"), httpx.Response(302)]
    )

    def flaky(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        answer.headers["location"] = "https://elsewhere.example/"
        return answer

    runner = make_runner(httpx.MockTransport(flaky))
    task_id = make_task(fresh_db, new_org, clock)
    runner.run_once()
    clock.advance(60)
    runner.run_once()
    _, deliveries, jobs = state(fresh_db, task_id)
    assert deliveries[0].error == "ConnectError: connection refused"
    assert deliveries[0].status_code is None
    assert deliveries[1].status_code == 302
    assert "redirects are not followed" in (deliveries[1].error or "")
    assert jobs[0].status == "queued"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://localhost/hook"]
)
def test_private_targets_are_refused_at_send_time(
    url: str, fresh_db: Database, new_org: NewOrg, clock: FrozenClock, make_runner: Runner
) -> None:
    receiver = Receiver(200)
    # Stored directly: the URL passed the check at creation, or DNS changed since.
    task_id = make_task(fresh_db, new_org, clock, callback_url=url)
    make_runner(receiver.transport).run_once()
    assert receiver.requests == []
    succeeded, [delivery], [job] = state(fresh_db, task_id)
    assert succeeded is False
    assert not delivery.succeeded and delivery.status_code is None
    assert (delivery.error or "").startswith("refused:")
    assert "private" in (delivery.error or "")
    assert (job.status, job.attempts) == ("failed", 1), "no point retrying"


def test_private_targets_are_allowed_when_configured(
    fresh_db: Database, new_org: NewOrg, clock: FrozenClock, make_runner: Runner
) -> None:
    receiver = Receiver(204)
    task_id = make_task(fresh_db, new_org, clock, callback_url="http://127.0.0.1:8080/hook")
    make_runner(receiver.transport, allow_private_callbacks=True).run_once()
    assert len(receiver.requests) == 1
    assert state(fresh_db, task_id)[0] is True


def test_two_runners_in_one_process_keep_their_own_rule(
    fresh_db: Database, new_org: NewOrg, clock: FrozenClock, make_runner: Runner
) -> None:
    """Building a runner that allows private targets used to allow them process-wide."""
    receiver = Receiver(204)
    strict = make_runner(receiver.transport)
    permissive = make_runner(receiver.transport, allow_private_callbacks=True)
    refused = make_task(fresh_db, new_org, clock, callback_url="http://127.0.0.1:8080/hook")
    strict.run_once()
    assert receiver.requests == []
    assert state(fresh_db, refused)[0] is False
    another = create_org(fresh_db)  # ``make_task`` makes a project of a fixed name
    delivered = make_task(fresh_db, another, clock, callback_url="http://127.0.0.1:8080/hook")
    permissive.run_once()
    assert len(receiver.requests) == 1
    assert state(fresh_db, delivered)[0] is True


def test_email_without_smtp_is_a_recorded_failure_without_retries(
    fresh_db: Database, new_org: NewOrg, clock: FrozenClock, make_runner: Runner
) -> None:
    task_id = make_task(fresh_db, new_org, clock, callback_url="ops@customer.example")
    make_runner(Receiver().transport).run_once()
    succeeded, [delivery], [job] = state(fresh_db, task_id)
    assert succeeded is False
    assert delivery.error == "email callbacks need STEELYARD_SMTP_URL"
    assert job.status == "failed"


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: every command succeeds; DATA is kept."""

    def handle(self) -> None:
        server: Any = self.server
        self.wfile.write(b"220 test ESMTP\r\n")
        lines: list[bytes] = []
        in_data = False
        while line := self.rfile.readline():
            if in_data:
                if line.rstrip(b"\r\n") == b".":
                    in_data = False
                    server.messages.append(b"".join(lines))
                    lines = []
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(line[1:] if line.startswith(b"..") else line)
                continue
            command = line[:4].upper()
            if command == b"DATA":
                in_data = True
                self.wfile.write(b"354 go ahead\r\n")
            elif command == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[bytes]]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    messages: list[bytes] = []
    server.messages = messages  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], messages
    server.shutdown()
    server.server_close()


def test_email_callbacks_go_through_smtp(
    fresh_db: Database,
    new_org: NewOrg,
    clock: FrozenClock,
    make_runner: Runner,
    smtp_server: tuple[int, list[bytes]],
) -> None:
    port, messages = smtp_server
    task_id = make_task(fresh_db, new_org, clock, callback_url="ops@customer.example")
    runner = make_runner(smtp_url=f"smtp://127.0.0.1:{port}", smtp_from="labels@steelyard.test")
    runner.run_once()
    succeeded, [delivery], [job] = state(fresh_db, task_id)
    assert (succeeded, delivery.succeeded, job.status) == (True, True, "done")
    [raw] = messages
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["To"] == "ops@customer.example"
    assert message["From"] == "labels@steelyard.test"
    assert task_id in message["Subject"]
    body = message.get_body()
    assert body is not None
    content = body.get_content().strip()
    assert json.loads(content)["task_id"] == task_id
    assert callbacks.verify_signature(
        new_org.callback_auth_key,
        content.encode(),
        message["X-Steelyard-Timestamp"],
        message["X-Steelyard-Signature"],
        now=clock.now(),
    )
    assert new_org.callback_auth_key not in raw.decode(), "the auth key stays out of mail"


def test_batch_callback_posts_the_batch_and_its_counts(
    fresh_db: Database, new_org: NewOrg, clock: FrozenClock, make_runner: Runner
) -> None:
    with fresh_db.unit_of_work() as session:
        project = Project(org_id=new_org.org_id, is_test=False, name="Dogs", type="categorization")
        session.add(project)
        session.flush()
        batch = Batch(
            org_id=new_org.org_id,
            is_test=False,
            project_id=project.id,
            name="week-1",
            status="completed",
            callback=HOOK,
            metadata_={"owner": "me"},
            created_at=clock.now(),
            completed_at=clock.now(),
        )
        session.add(batch)
        session.flush()
        for status, n in (("completed", 3), ("canceled", 1)):
            session.add(
                TaskCount(
                    org_id=new_org.org_id,
                    is_test=False,
                    project_id=project.id,
                    batch_id=batch.id,
                    type="categorization",
                    status=status,
                    n=n,
                )
            )
        outbox.enqueue(
            session,
            outbox.BATCH_CALLBACK,
            {"batch_id": batch.id},
            org_id=new_org.org_id,
            now=clock.now(),
        )
        batch_id = batch.id

    receiver = Receiver(200)
    make_runner(receiver.transport).run_once()
    [request] = receiver.requests
    assert request.headers["scale-callback-auth"] == new_org.callback_auth_key
    body = json.loads(request.content)
    assert body["id"] == batch_id
    assert (body["name"], body["status"], body["project"]) == ("week-1", "completed", "Dogs")
    assert body["metadata"] == {"owner": "me"}
    assert body["completed_at"] is not None
    assert (body["pending"], body["completed"], body["error"], body["canceled"]) == (0, 3, 0, 1)
    with fresh_db.unit_of_work(write=False) as session:
        [delivery] = session.scalars(select(CallbackDelivery)).all()
        assert (delivery.batch_id, delivery.task_id, delivery.succeeded) == (batch_id, None, True)


def test_a_task_without_callback_url_finishes_quietly(
    fresh_db: Database, new_org: NewOrg, clock: FrozenClock, make_runner: Runner
) -> None:
    task_id = make_task(fresh_db, new_org, clock)
    with fresh_db.unit_of_work() as session:
        task = session.scalar(select(Task).where(Task.task_id == task_id))
        assert task is not None
        task.callback_url = None
    receiver = Receiver(200)
    make_runner(receiver.transport).run_once()
    _, deliveries, [job] = state(fresh_db, task_id)
    assert (receiver.requests, deliveries, job.status) == ([], [], "done")


def test_an_echoed_auth_key_is_redacted_from_the_record(
    fresh_db: Database, new_org: NewOrg, clock: FrozenClock, make_runner: Runner
) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=f"bad key {request.headers['scale-callback-auth']}")

    task_id = make_task(fresh_db, new_org, clock)
    make_runner(httpx.MockTransport(echo)).run_once()
    _, [delivery], [job] = state(fresh_db, task_id)
    assert delivery.error == "HTTP 400: bad key [redacted]"
    assert new_org.callback_auth_key not in (job.last_error or "")


def test_end_to_end_the_app_runs_the_callback_of_a_task_created_by_the_client(
    tmp_path: Path,
) -> None:
    """``create_app`` wiring: the runner starts with the app, wakes on the task's commit and
    sends through the app's outgoing-HTTP seam."""
    received: list[httpx.Request] = []
    arrived = threading.Event()

    def hook(request: httpx.Request) -> httpx.Response:
        received.append(request)
        arrived.set()
        return httpx.Response(200)

    # A long poll: only the wake-up on commit can deliver within the wait below.
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'e2e.db'}",
        allow_private_callbacks=False,
        job_poll_seconds=30.0,
    )
    app = create_app(settings, http_transport=httpx.MockTransport(hook))
    with serve(app) as live:
        org = create_org(app.state.db)
        client = scaleapi.ScaleClient(org.test_key, api_instance_url=f"{live.url}/v1")
        client.create_project("p", TaskType.ImageAnnotation, params={"instruction": "Box"})
        task = client.create_task(
            TaskType.ImageAnnotation,
            project="p",
            attachment="https://example.com/car.jpg",
            geometries={"box": {"objects_to_annotate": ["car"]}},
            callback_url=HOOK,
        )
        assert arrived.wait(10), "no callback arrived"
        [request] = received
        assert json.loads(request.content)["task_id"] == task.id
        assert request.headers["scale-callback-auth"] == org.callback_auth_key
        deadline = time.time() + 10
        while client.get_task(task.id).as_dict().get("callback_succeeded") is not True:
            assert time.time() < deadline, "callback_succeeded never became true"
            time.sleep(0.05)


def test_a_handler_run_without_a_runner_dials_through_the_check(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock, dns: FakeDns
) -> None:
    """``JobContext.http_client`` without the runner's client used httpx's own transport, which
    dials whatever a name resolves to at connect time."""
    dns.answers["rebinds.example.com"] = "127.0.0.1"
    job = ClaimedJob(id=1, kind="k", payload={}, org_id=None, attempt=1, max_attempts=1)
    ctx = JobContext(job, db=fresh_db, settings=job_settings, clock=clock, transport=None)
    with ctx.http_client(timeout=2) as client, pytest.raises(httpx.ConnectError) as err:
        client.post("http://rebinds.example.com:9/hook", content=b"{}")
    assert refused_at_connect(err.value)
