"""The job runner refreshes projects' worker models in the background: it enqueues one fit job
per due project (none while one is open) and the job stores the fitted model."""

from __future__ import annotations

from sqlalchemy import select

from steelyard.clock import FrozenClock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.jobs.models import Job
from steelyard.jobs.runner import JobRunner
from steelyard.workflow import worker_models
from tests.workflow import worker_model_helpers as h


def test_runner_fits_a_due_project_once(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    db = fresh_db
    setup = h.project(db, {"pipeline": "consensus_task", "consensus_attempts": 2}, clock.now())
    truth = {h.task(db, setup, clock.now()): h.CATEGORIES[i % 3] for i in range(6)}
    good, spam = h.worker(db, setup), h.worker(db, setup)
    runner = JobRunner(db, job_settings, clock=clock)
    assert runner.refresh_worker_models(force=True) == 0  # no labels yet
    for _ in truth:
        h.label(db, good, setup, truth.__getitem__, clock.now())
        h.label(db, spam, setup, "dog", clock.now())
    assert runner.refresh_worker_models() == 0  # checked a moment ago: not again yet
    assert runner.refresh_worker_models(force=True) == 1
    assert runner.refresh_worker_models(force=True) == 0  # one open job per project
    assert runner.run_once() == 1
    with db.unit_of_work(write=False) as s:
        job = s.scalars(select(Job).where(Job.kind == worker_models.FIT_JOB)).one()
        assert (job.status, job.org_id, job.payload) == (
            "done",
            setup.org_id,
            {"project_id": setup.project_id},
        )
        doc = worker_models.stored(s, setup.project_id)
    fitted = worker_models.parse(doc)
    assert fitted is not None and fitted.n_labels == 12
    assert set(fitted.model.worker_ids.tolist()) == {good.user_id, spam.user_id}
    assert runner.refresh_worker_models(force=True) == 0  # fitted: not due


def test_a_fit_job_without_its_project_gives_up(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    from steelyard.jobs import outbox

    with fresh_db.unit_of_work() as s:
        outbox.enqueue(s, worker_models.FIT_JOB, {}, org_id=None, now=clock.now())
    runner = JobRunner(fresh_db, job_settings, clock=clock)
    assert runner.run_once() == 1
    with fresh_db.unit_of_work(write=False) as s:
        status = s.scalar(select(Job.status).where(Job.kind == worker_models.FIT_JOB))
    assert status == "failed"
