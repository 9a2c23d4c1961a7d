"""The agreement report's statistics: the quality core's, on a matrix built to stay small.

``compute`` arranges a question's answers as (rating slot x task) rather than (worker x task);
the statistics it reports must be exactly those of the core on the plain long table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steelyard.quality import agreement
from steelyard.workflow.agreement_report import (
    MULTIPLE_NOTE,
    Answers,
    LabelSample,
    compute,
)


def _sample(rows: list[tuple[int, str, Any]], question: str = "category") -> LabelSample:
    """A sample of one question from (task, worker, answer) rows; list answers are picks."""
    answers = Answers()
    for task, worker, value in rows:
        picks = value if isinstance(value, list) else [value]
        answers.tasks.append(task)
        answers.workers.append(worker)
        answers.values.append("\x1f".join(sorted(picks)))
        answers.multiple = answers.multiple or len(picks) != 1
    return LabelSample("p", "categorization", None, labels=len(rows), questions={question: answers})


def _close(got: float | None, want: float) -> bool:
    return (got is None and math.isnan(want)) or (got is not None and math.isclose(got, want))


# Up to 12 tasks, each labeled by a distinct subset of 6 workers, with up to 4 answers.
_task_rows = st.lists(
    st.tuples(
        st.lists(st.sampled_from("abcdef"), min_size=1, max_size=6, unique=True),
        st.lists(st.sampled_from("wxyz"), min_size=6, max_size=6),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(_task_rows, st.randoms(use_true_random=False))
def test_statistics_equal_the_cores_on_the_long_table(tasks: list[Any], rnd: Any) -> None:
    rows = [
        (t * 7 % 13, worker, values[i])  # task ids not in order of first appearance
        for t, (workers, values) in enumerate(tasks)
        for i, worker in enumerate(workers)
    ]
    rnd.shuffle(rows)  # a task's answers need not arrive together
    long = {
        "task": [r[0] for r in rows],
        "worker": [r[1] for r in rows],
        "label": [r[2] for r in rows],
    }
    (q,) = compute(_sample(rows)).questions
    assert q.labels == len(rows) and q.tasks == len(tasks)
    assert q.tasks_with_two_or_more == sum(len(w) >= 2 for w, _ in tasks)
    assert q.workers == len(set(long["worker"]))
    if q.tasks_with_two_or_more == 0:
        assert q.percent_agreement is q.krippendorff_alpha is q.fleiss_kappa is None
        return
    assert _close(q.percent_agreement, agreement.percent_agreement(long))
    assert _close(q.krippendorff_alpha, agreement.krippendorff_alpha(long, "nominal"))
    assert _close(q.fleiss_kappa, agreement.fleiss_kappa(long))


def test_two_workers_get_cohens_kappa() -> None:
    a, b = ["y", "y", "n", "n"], ["y", "n", "n", "n"]
    rows = [(t, "ann", v) for t, v in enumerate(a)] + [(t, "bob", v) for t, v in enumerate(b)]
    rows.append((9, "ann", "y"))  # a task only one of them labeled is left out of kappa
    (q,) = compute(_sample(rows)).questions
    assert q.cohen_kappa == pytest.approx(0.5)  # the core's documented example
    assert q.workers == 2 and q.tasks == 5 and q.tasks_with_two_or_more == 4
    # Three workers: Cohen's kappa is not the statistic; the note says which are.
    (q3,) = compute(_sample([*rows, (0, "cat", "y")])).questions
    assert q3.cohen_kappa is None
    assert any("Cohen's kappa compares two workers; 3" in n for n in q3.notes), q3.notes


def test_perfect_and_degenerate_agreement() -> None:
    perfect = [(t, w, "yn"[t % 2]) for t in range(4) for w in ("a", "b", "c")]
    (q,) = compute(_sample(perfect)).questions
    assert q.percent_agreement == 1.0
    assert q.krippendorff_alpha == pytest.approx(1.0) and q.fleiss_kappa == pytest.approx(1.0)
    same = [(t, w, "y") for t in range(3) for w in ("a", "b")]
    (q,) = compute(_sample(same)).questions
    assert q.percent_agreement == 1.0
    assert q.krippendorff_alpha is None and q.fleiss_kappa is None and q.cohen_kappa is None
    assert any("alpha is undefined" in n for n in q.notes), q.notes


def test_several_picks_compare_as_whole_sets() -> None:
    rows = [
        (0, "a", ["x", "y"]),
        (0, "b", ["y", "x"]),  # the same set in another order: agreement
        (1, "a", ["x"]),
        (1, "b", ["x", "y"]),  # overlapping but different: disagreement
    ]
    (q,) = compute(_sample(rows)).questions
    assert q.percent_agreement == 0.5
    assert MULTIPLE_NOTE in q.notes


def test_ratings_beyond_the_limit_are_left_out_and_said_so() -> None:
    rows = [(0, f"w{i}", "y" if i < 3 else "n") for i in range(6)] + [
        (1, "w0", "n"),
        (1, "w1", "n"),
    ]
    (q,) = compute(_sample(rows), max_ratings=3).questions
    # Task 0 keeps its first three answers (all "y"), task 1 both of its own.
    assert q.percent_agreement == 1.0
    assert any("beyond the 3th" in n for n in q.notes), q.notes
    (full,) = compute(_sample(rows)).questions
    assert full.percent_agreement is not None and full.percent_agreement < 1.0
    assert not any("beyond" in n for n in full.notes)


def test_each_question_is_reported_apart_and_the_reason_passes_through() -> None:
    sample = _sample([(0, "a", "x"), (0, "b", "x")], "taxonomies.color")
    sample.questions.update(_sample([(0, "a", "s"), (0, "b", "t")], "taxonomies.size").questions)
    report = compute(sample, cap=10)
    assert [q.question for q in report.questions] == ["taxonomies.color", "taxonomies.size"]
    assert [q.percent_agreement for q in report.questions] == [1.0, 0.0]
    assert report.computed and report.cap == 10
    skipped = compute(LabelSample("p", "imageannotation", "not categorical"))
    assert not skipped.computed and skipped.reason == "not categorical"
    assert skipped.questions == []


def test_matrix_stays_small_for_many_workers() -> None:
    """5,000 workers over 2,500 tasks, two answers each: the slot matrix is 2 x 2,500 where one
    row per worker would be 5,000 x 2,500."""
    rng = np.random.default_rng(0)
    rows = [(t, f"w{2 * t + i}", str(rng.integers(3))) for t in range(2_500) for i in range(2)]
    (q,) = compute(_sample(rows)).questions
    assert q.workers == 5_000 and q.tasks_with_two_or_more == 2_500
    assert q.krippendorff_alpha is not None and -1.0 <= q.krippendorff_alpha <= 1.0
