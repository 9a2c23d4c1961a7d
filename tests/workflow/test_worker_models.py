"""Per-project worker models in the workflow: the completion glue, the fit from stored labels,
when a project is due for a refit, and a completion that follows the fitted model."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from steelyard.accounts.schemas import Actor
from steelyard.clock import FrozenClock
from steelyard.db.engine import Database
from steelyard.projects.models import Project
from steelyard.quality import project_model
from steelyard.quality.adaptive import WorkerModel, decide
from steelyard.quality.calibration import Calibrator
from steelyard.tasks.models import QualityTask, Task
from steelyard.timefmt import iso
from steelyard.workflow import worker_models
from steelyard.workflow.aggregation import aggregate
from steelyard.workflow.models import Label, QualityAnswer
from steelyard.workflow.worker_models import ProjectModel, categorical_outcome
from tests.workflow import worker_model_helpers as h

CLASSES = ["cat", "dog", "bird"]


def _model(calibrator: Calibrator | None = None) -> ProjectModel:
    model = WorkerModel.one_coin(
        CLASSES, [1 / 3] * 3, {"good": 0.97, "bad": 0.4}, default_skill=0.7
    )
    return ProjectModel(model, calibrator, 100, "2026-11-30T00:00:00.000Z")


def _cat(c: str) -> dict[str, str]:
    return {"category": c}


# --- the glue --------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["good-first", "bad-first"])
def test_the_reliable_worker_wins_a_disagreement(order: str) -> None:
    labels = [("good", _cat("cat")), ("bad", _cat("dog"))]
    if order == "bad-first":
        labels.reverse()
    out = categorical_outcome(_model(), labels, target_confidence=None, max_labels=2)
    assert out is not None and out.response == _cat("cat") and out.more is None
    expected = decide(
        [(w, r["category"]) for w, r in labels], worker_model=_model().model, max_labels=2
    )
    assert out.confidence == pytest.approx(expected.confidence)
    # The default vote (everyone 0.7) calls it a tie; the model does not.
    assert out.confidence > aggregate("categorization", {"categories": CLASSES}, labels).confidence


@pytest.mark.parametrize(
    "labels",
    [
        [("good", {"category": "fish"})],  # never seen by the fit
        [("good", {"category": ["cat", "dog"]})],  # several categories
        [("good", {"category": "cat", "note": "x"})],  # more than a category
    ],
    ids=["unseen", "multiple", "extra-keys"],
)
def test_labels_the_model_cannot_read_fall_back(
    labels: list[tuple[str, dict[str, object]]],
) -> None:
    assert categorical_outcome(_model(), labels, target_confidence=0.9, max_labels=3) is None


def test_adaptive_verdicts() -> None:
    one = categorical_outcome(
        _model(), [("good", _cat("cat"))], target_confidence=0.9, max_labels=3
    )
    assert one is not None and one.more is False and one.confidence > 0.9
    pair = [("bad", _cat("dog")), ("new", _cat("cat"))]
    split = categorical_outcome(_model(), pair, target_confidence=0.9, max_labels=3)
    assert split is not None and split.more is True
    at_max = categorical_outcome(_model(), pair, target_confidence=0.9, max_labels=2)
    assert at_max is not None and at_max.more is False


def test_a_calibrator_makes_the_target_a_promise() -> None:
    # A plateau-ish map: the raw 0.97 of one good label is promised as much less.
    cautious = Calibrator(prior_mean=(0.5, 0.5, 0.0), credibility=None)
    raw = categorical_outcome(
        _model(), [("good", _cat("cat"))], target_confidence=0.9, max_labels=3
    )
    cal = categorical_outcome(
        _model(cautious), [("good", _cat("cat"))], target_confidence=0.9, max_labels=3
    )
    assert raw is not None and cal is not None
    assert raw.more is False and cal.more is True
    assert cal.confidence < raw.confidence


def test_parse_is_cached_per_fit_and_ignores_bad_documents() -> None:
    from steelyard.quality.project_model import dumps

    doc = {"project_id": "p1", "model": dumps(_model().model), "n_labels": 7, "fitted_at": "t"}
    first = worker_models.parse(doc)
    assert first is not None and first.n_labels == 7
    assert worker_models.parse(dict(doc)) is first
    assert worker_models.parse({**doc, "fitted_at": "t2", "model": {"format": 0}}) is None
    assert worker_models.parse(None) is None


# --- fitted from stored labels (SQLite and PostgreSQL) ---------------------------------------


def _history(
    db: Database, clock: FrozenClock, n_tasks: int
) -> tuple[h.Setup, dict[str, Actor], dict[int, str]]:
    """A k=3 project where two reliable workers and a spammer (always "dog") labeled
    ``n_tasks`` tasks whose truth cycles through the categories."""
    setup = h.project(db, {"pipeline": "consensus_task", "consensus_attempts": 3}, clock.now())
    truth = {h.task(db, setup, clock.now()): CLASSES[i % 3] for i in range(n_tasks)}
    crowd = {"r1": h.worker(db, setup), "r2": h.worker(db, setup), "spam": h.worker(db, setup)}
    for _ in range(n_tasks):
        for name, who in crowd.items():
            h.label(db, who, setup, "dog" if name == "spam" else truth.__getitem__, clock.now())
    return setup, crowd, truth


def _stored(db: Database, setup: h.Setup) -> dict[str, object] | None:
    with db.unit_of_work(write=False) as s:
        return worker_models.stored(s, setup.project_id)


def test_a_fitted_model_decides_a_disagreement_against_the_majority(db: Database) -> None:
    clock = FrozenClock()
    setup, crowd, _ = _history(db, clock, 12)
    with db.unit_of_work(write=False) as s:
        assert (setup.org_id, setup.project_id) in worker_models.due(s, clock.now())
    assert worker_models.fit_project(db, setup.org_id, setup.project_id, clock.now())
    doc = _stored(db, setup)
    assert doc is not None and doc["n_labels"] == 36
    fitted = worker_models.parse(doc)
    assert fitted is not None
    r1, spam = crowd["r1"].user_id, crowd["spam"].user_id
    assert fitted.model.confusion(r1)[0, 0] > 0.8 > fitted.model.confusion(spam)[0, 0]
    with db.unit_of_work(write=False) as s:
        assert (setup.org_id, setup.project_id) not in worker_models.due(s, clock.now())

    # r1 says cat; the spammer and a newcomer say dog: the majority says dog, the model cat.
    seq = h.task(db, setup, clock.now())
    newcomer = h.worker(db, setup)
    answers = [(crowd["r1"], "cat"), (crowd["spam"], "dog"), (newcomer, "dog")]
    for who, category in answers:
        got, completed = h.label(db, who, setup, category, clock.now())
        assert got == seq
    assert completed
    with db.unit_of_work(write=False) as s:
        response, confidence = s.execute(
            select(Task.response, Task.confidence).where(Task.seq == seq)
        ).one()
    expected = decide(
        [(who.user_id, c) for who, c in answers], worker_model=fitted.model, max_labels=3
    )
    assert response == {"category": "cat"} and expected.label == "cat"
    assert confidence == pytest.approx(expected.confidence)
    default = aggregate(
        "categorization",
        {"categories": CLASSES},
        [(str(who.user_id), {"category": c}) for who, c in answers],
    )
    assert default.response == {"category": "dog"}


def test_refresh_is_due_after_new_labels_or_time(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FrozenClock()
    setup, crowd, _ = _history(db, clock, 4)  # 12 labels: above MIN_LABELS
    key = (setup.org_id, setup.project_id)
    worker_models.fit_project(db, setup.org_id, setup.project_id, clock.now())

    def due() -> bool:
        with db.unit_of_work(write=False) as s:
            return key in worker_models.due(s, clock.now())

    assert not due()
    clock.advance(worker_models.REFRESH_SECONDS + 1)
    assert not due()  # time alone: nothing new to learn
    h.task(db, setup, clock.now())
    h.label(db, crowd["r1"], setup, "cat", clock.now())
    assert due()  # a new label and the time is up
    worker_models.fit_project(db, setup.org_id, setup.project_id, clock.now())
    assert not due()
    monkeypatch.setattr(worker_models, "REFRESH_LABELS", 2)
    # New is newer than the fit's newest label (the watermark): a real clock moves between.
    clock.advance(1)
    h.label(db, crowd["r2"], setup, "cat", clock.now())
    assert not due()
    h.label(db, crowd["spam"], setup, "dog", clock.now())
    assert due()  # enough new labels, however soon
    with db.unit_of_work(write=False) as s:
        settings = s.scalar(select(Project.settings).where(Project.id == setup.project_id))
    assert settings is not None and settings["worker_model"]["n_labels"] == 13


def test_gold_gives_the_stored_model_a_calibrator(db: Database) -> None:
    clock = FrozenClock()
    setup, _, truth = _history(db, clock, 6)
    worker_models.fit_project(db, setup.org_id, setup.project_id, clock.now())
    plain = worker_models.parse(_stored(db, setup))
    assert plain is not None and plain.calibrator is None
    clock.advance(1)
    worker_models.fit_project(db, setup.org_id, setup.project_id, clock.now(), gold=truth)
    calibrated = worker_models.parse(_stored(db, setup))
    assert calibrated is not None and calibrated.calibrator is not None
    assert calibrated.calibrator.n_fit > 0


def test_served_gold_gives_the_stored_model_a_calibrator(db: Database) -> None:
    """The job's fit reads the project's hidden gold as served (evaluation answers): with
    enough items answered the model gets a calibrator, and gold counts as labels for the fit
    but not in ``n_labels`` (which compares with the live labels to decide a refit)."""
    clock = FrozenClock()
    setup, crowd, _ = _history(db, clock, 6)
    now = clock.now()
    with db.unit_of_work() as s:
        for i in range(6):
            right = CLASSES[i % 3]
            item = QualityTask(
                org_id=setup.org_id,
                is_test=False,
                kind="evaluation",
                type="categorization",
                project_id=setup.project_id,
                params={"attachment": f"g{i}", "categories": CLASSES},
                expected_response={"category": right},
            )
            s.add(item)
            s.flush()
            for name, who in crowd.items():
                given = "dog" if name == "spam" else right
                s.add(
                    QualityAnswer(
                        org_id=setup.org_id,
                        project_id=setup.project_id,
                        quality_task_id=item.id,
                        user_id=who.user_id,
                        kind="evaluation",
                        attempt=1,
                        status="submitted",
                        started_at=now - timedelta(seconds=5),
                        expires_at=now + timedelta(minutes=5),
                        submitted_at=now,
                        active_seconds=5.0,
                        response={"category": given},
                        score=1.0 if given == right else 0.0,
                        correct=given == right,
                    )
                )
    worker_models.fit_project(db, setup.org_id, setup.project_id, now)
    doc = _stored(db, setup)
    assert doc is not None and doc["n_labels"] == 18
    fitted = worker_models.parse(doc)
    # Six items are below the minimum to fit a calibrator on: the cautious prior map.
    assert fitted is not None and fitted.calibrator is not None


def test_superseded_labels_are_not_fitted(db: Database) -> None:
    """Labels an audit or a review rejected are never aggregated again (DESIGN.md): the fit
    and the count that decides a refit leave them out, as the agreement report does."""
    clock = FrozenClock()
    setup, _, truth = _history(db, clock, 5)
    first = min(truth)
    with db.unit_of_work() as s:
        s.execute(update(Label).where(Label.task_seq == first).values(superseded=True))
    worker_models.fit_project(db, setup.org_id, setup.project_id, clock.now())
    doc = _stored(db, setup)
    assert doc is not None and doc["n_labels"] == 12
    with db.unit_of_work(write=False) as s:
        table, n, _newest = worker_models._table(s, setup.org_id, setup.project_id)
    assert n == 12 and first not in table["task"]


def _gold_answer(
    db: Database, setup: h.Setup, who: Actor, given: str, expected: str, now: datetime
) -> None:
    """A submitted answer to a new evaluation item of the project, stored as the gold submit
    stores it."""
    with db.unit_of_work() as s:
        item = QualityTask(
            org_id=setup.org_id,
            is_test=False,
            kind="evaluation",
            type="categorization",
            project_id=setup.project_id,
            params={"categories": CLASSES},
            expected_response={"category": expected},
        )
        s.add(item)
        s.flush()
        s.add(
            QualityAnswer(
                org_id=setup.org_id,
                project_id=setup.project_id,
                quality_task_id=item.id,
                user_id=who.user_id,
                kind="evaluation",
                status="submitted",
                started_at=now,
                expires_at=now + timedelta(minutes=5),
                submitted_at=now,
                response={"category": given},
                score=float(given == expected),
                correct=given == expected,
            )
        )


def test_gold_answers_count_for_the_refresh_and_enter_the_fit(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FrozenClock()
    setup, crowd, _ = _history(db, clock, 4)
    key = (setup.org_id, setup.project_id)

    def due() -> bool:
        with db.unit_of_work(write=False) as s:
            return key in worker_models.due(s, clock.now())

    worker_models.fit_project(db, setup.org_id, setup.project_id, clock.now())
    assert not due()
    monkeypatch.setattr(worker_models, "REFRESH_LABELS", 2)
    clock.advance(1)
    _gold_answer(db, setup, crowd["spam"], "dog", "cat", clock.now())
    assert not due()
    _gold_answer(db, setup, crowd["spam"], "dog", "bird", clock.now())
    assert due()  # two gold answers since the fit, and no live label
    worker_models.fit_project(db, setup.org_id, setup.project_id, clock.now())
    assert not due()
    doc = _stored(db, setup)
    assert doc is not None and (doc["n_labels"], doc["n_gold"]) == (12, 2)
    assert doc["watermark"] == iso(clock.now())  # the newest thing it read
    # Served gold, too little to fit on: the cautious prior map, not the raw posterior.
    fitted = worker_models.parse(doc)
    assert fitted is not None and fitted.calibrator is not None
    assert fitted.calibrator.n_fit == 0
    assert fitted.calibrator.params == pytest.approx(project_model.DEFAULT_PRIOR.params)


def test_a_project_with_nothing_to_fit_keeps_a_watermark(db: Database) -> None:
    clock = FrozenClock()
    setup = h.project(db, {"pipeline": "consensus_task", "consensus_attempts": 3}, clock.now())
    who = [h.worker(db, setup) for _ in range(3)]
    h.task(db, setup, clock.now())
    key = (setup.org_id, setup.project_id)
    for w in who:
        h.label(db, w, setup, "cat", clock.now())  # one class: nothing to learn

    def due() -> bool:
        with db.unit_of_work(write=False) as s:
            return key in worker_models.due(s, clock.now())

    assert due()  # something new and no document yet: the fit records what it saw
    assert not worker_models.fit_project(db, setup.org_id, setup.project_id, clock.now())
    doc = _stored(db, setup)
    assert doc is not None and "model" not in doc and doc["n_labels"] == 3
    assert worker_models.parse(doc) is None
    assert not due()
    clock.advance(worker_models.REFRESH_SECONDS + 1)
    h.task(db, setup, clock.now())
    h.label(db, who[0], setup, "dog", clock.now())
    assert not due()  # 4 labels in all: below MIN_LABELS, nothing worth a fit
