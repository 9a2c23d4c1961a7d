"""The pure rules of gold and qualification: the gold slots' share, the qualification's state,
and the settings' checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steelyard.errors import ValidationError
from steelyard.projects import workflow_settings
from steelyard.projects.workflow_settings import Qualification, QualitySettings, read_quality
from steelyard.workflow.qualification import qualification_state
from steelyard.workflow.quality_serving import gold_due


@given(
    rate=st.floats(min_value=0.01, max_value=0.5),
    phase=st.floats(min_value=0, max_value=0.999999),
    start=st.integers(0, 500),
    n=st.integers(1, 400),
)
def test_any_run_of_items_holds_the_rate_of_gold_to_within_one(
    rate: float, phase: float, start: int, n: int
) -> None:
    gold = sum(gold_due(rate, served, phase) for served in range(start, start + n))
    assert abs(gold - rate * n) < 1.0 + 1e-9


def test_no_gold_at_rate_zero_and_phases_differ() -> None:
    assert not any(gold_due(0.0, n, 0.5) for n in range(100))
    first = [next(n for n in range(100) if gold_due(0.1, n, p)) for p in (0.0, 0.35, 0.75)]
    assert len(set(first)) == 3


Q = Qualification(pass_mark=0.8, tasks=2, max_attempts=2)


@pytest.mark.parametrize(
    ("available", "attempts", "status", "answered", "left"),
    [
        (3, {}, "not_started", 0, 1),
        (3, {1: (1, 1.0)}, "in_progress", 1, 1),
        (3, {1: (2, 2.0)}, "passed", 2, 1),
        (3, {1: (2, 1.0)}, "failed", 2, 1),
        (3, {1: (2, 1.0), 2: (0, 0.0)}, "in_progress", 0, 0),
        (3, {1: (2, 1.0), 2: (2, 1.8)}, "passed", 2, 0),
        (3, {1: (2, 1.0), 2: (2, 1.0)}, "failed", 2, 0),
        # Fewer training tasks than asked: all of them; none: nothing to pass.
        (1, {1: (1, 1.0)}, "passed", 1, 1),
        (0, {}, "passed", 0, 1),
    ],
)
def test_qualification_state(
    available: int,
    attempts: dict[int, tuple[int, float]],
    status: str,
    answered: int,
    left: int,
) -> None:
    state = qualification_state(Q, available, attempts)
    assert (state.status, state.answered, state.attempts_left) == (status, answered, left)


def test_quality_settings_read_and_round_trip() -> None:
    params = {"gold_rate": 0.1, "qualification": {"pass_mark": 0.9}}
    settings = read_quality(params)
    assert settings == QualitySettings(0.1, Qualification(0.9, None, 1))
    assert QualitySettings.from_doc(settings.to_doc()) == settings
    assert read_quality({}) == workflow_settings.NO_QUALITY
    # Read alongside redundancy, which they leave alone.
    assert workflow_settings.read(params) == workflow_settings.DEFAULT


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"gold_rate": -0.1}, "params.gold_rate"),
        ({"gold_rate": float("nan")}, "params.gold_rate"),
        ({"gold_rate": True}, "params.gold_rate"),
        ({"qualification": {}}, "params.qualification.pass_mark"),
        ({"qualification": {"pass_mark": 0.5, "tasks": 1.5}}, "params.qualification.tasks"),
        (
            {"qualification": {"pass_mark": 0.5, "max_attempts": 0}},
            "params.qualification.max_attempts",
        ),
    ],
)
def test_bad_quality_settings_name_the_field(params: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        workflow_settings.read(params)
    assert err.value.field == field


def test_quality_doc_only_for_projects_that_had_the_settings() -> None:
    assert workflow_settings.quality_doc([{"pipeline": "standard_task"}]) is None
    had = [{"gold_rate": 0.2}, {}]
    assert workflow_settings.quality_doc(had) == {"gold_rate": 0.0, "qualification": None}
    # A pipeline change keeps them; they are not redundancy.
    kept = workflow_settings.superseded(
        {"gold_rate": 0.2, "consensus_attempts": 3}, {"pipeline": "standard_task"}
    )
    assert kept == {"gold_rate": 0.2}
