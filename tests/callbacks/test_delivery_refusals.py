"""A callback refused at connect (its name now points at a non-public address) fails for good
on the first attempt: recorded, ``callback_succeeded`` false, no 20 retries."""

from __future__ import annotations

from sqlalchemy import select

from steelyard.callbacks.models import CallbackDelivery
from steelyard.clock import FrozenClock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.jobs import outbox
from steelyard.jobs.models import Job
from steelyard.jobs.runner import JobRunner
from steelyard.projects.models import Batch, Project
from tests.callbacks.fakedns import FakeDns
from tests.callbacks.test_delivery import make_task, state
from tests.jobs.helpers import NewOrg

#: Public when the delivery checks it, the metadata service when the transport dials it.
REBINDS = ["93.184.216.34", "100.100.100.200"]


def test_a_task_callback_refused_at_connect_is_not_retried(
    fresh_db: Database, new_org: NewOrg, clock: FrozenClock, job_settings: Settings, dns: FakeDns
) -> None:
    dns.answers["rebind.example.com"] = list(REBINDS)
    task_id = make_task(fresh_db, new_org, clock, callback_url="https://rebind.example.com/hook")
    # No mock transport: the runner's own checked transport does the connecting.
    JobRunner(fresh_db, job_settings, clock=clock).run_once()
    assert dns.calls == ["rebind.example.com", "rebind.example.com"], "checked, then dialled"
    succeeded, [delivery], [job] = state(fresh_db, task_id)
    assert succeeded is False
    assert not delivery.succeeded and delivery.status_code is None
    assert (delivery.error or "").startswith("refused:"), delivery.error
    assert "not public" in (delivery.error or "")
    assert (job.status, job.attempts) == ("failed", 1), "no point retrying"


def test_a_batch_callback_refused_at_connect_is_not_retried(
    fresh_db: Database, new_org: NewOrg, clock: FrozenClock, job_settings: Settings, dns: FakeDns
) -> None:
    dns.answers["rebind.example.com"] = list(REBINDS)
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
            callback="https://rebind.example.com/batch",
            created_at=clock.now(),
            completed_at=clock.now(),
        )
        session.add(batch)
        session.flush()
        outbox.enqueue(
            session,
            outbox.BATCH_CALLBACK,
            {"batch_id": batch.id},
            org_id=new_org.org_id,
            now=clock.now(),
        )
    JobRunner(fresh_db, job_settings, clock=clock).run_once()
    with fresh_db.unit_of_work(write=False) as session:
        [delivery] = session.scalars(select(CallbackDelivery)).all()
        [job] = session.scalars(select(Job)).all()
        assert (delivery.succeeded, (delivery.error or "")[:8]) == (False, "refused:")
        assert (job.status, job.attempts) == ("failed", 1)
