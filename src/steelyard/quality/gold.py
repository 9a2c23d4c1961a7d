"""A worker's quality on gold (evaluation tasks with a known answer), and when it is too low.

Accuracy. Each gold answer is a Bernoulli trial, right or wrong. With ``c`` right of ``n`` and
the Jeffreys prior ``Beta(1/2, 1/2)``, the posterior is ``Beta(1/2 + c, 1/2 + n - c)``; we
report the observed share ``c / n`` and the posterior's equal-tailed 95% interval (the Jeffreys
interval: its coverage stays close to nominal at small ``n`` and near 0 or 1, where the Wald
interval collapses; Brown, Cai & DasGupta 2001, *Interval estimation for a binomial
proportion*), with their fix at the boundaries (none right: the lower end is 0; all right: the
upper end is 1). It is ``quality.workers.beta_interval``, the interval the rest of the quality
core reports.

Pausing. ``falls_short`` is true only when at least ``min_gold`` answers are in and the upper
end of the 99% Jeffreys interval (``pause_bound``) is below the threshold: the posterior
probability that the worker's true accuracy is at or above the threshold is then under 0.5%.
A rule on the observed share or the posterior mean would pause a worker exactly at the threshold
about half the time on bad luck alone; this one puts the burden of proof on the platform.

Why 99% and not the 95% shown: the check runs after every gold answer, so a worker faces it
many times, and the chance of ever being paused adds up over the looks. Simulated at a threshold
of 0.7, ``min_gold`` 10, checked after each of 200 answers (2,000 workers per row):

    true accuracy                     0.70   0.65   0.60   0.50   0.40
    ever paused, 95% interval         19%    60%    93%    100%   100%
      median answers to the pause      -     53     43     16     10
    ever paused, 99% interval          5%    32%    79%    100%   100%
      median answers to the pause      -     90     77     28     14

(thresholds 0.5 and 0.9 give 6% at the threshold, too). So a worker at the threshold is paused
within 200 gold answers about one time in twenty, against one in five; a weak worker waits a
little longer to be caught (3 right of 10 is paused at 0.7; 5 of 10 is not; 12 of 30 is).

Confusion. For categorical answers, ``gold_confusion`` counts (expected, given) pairs.
``model_estimate`` reads the worker's row of a project's fitted worker model
(``adaptive.WorkerModel``: Dawid-Skene over all their labels, not gold): its confusion matrix
and the accuracy it implies under the class prior, ``sum_k prior_k * C[k, k]``.

Example:
    >>> acc = gold_accuracy(3, 10)
    >>> round(acc.high, 3), round(pause_bound(acc), 3)
    (0.606, 0.693)
    >>> falls_short(acc, min_accuracy=0.7, min_gold=10)
    True
    >>> falls_short(gold_accuracy(5, 10), min_accuracy=0.7, min_gold=10)
    False
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from steelyard.quality.adaptive import WorkerModel
from steelyard.quality.workers import beta_interval

LEVEL = 0.95
#: The interval whose upper end decides a pause (see the module).
PAUSE_LEVEL = 0.99
METHOD = "jeffreys"


@dataclass(frozen=True, slots=True)
class GoldAccuracy:
    """Right answers of ``answered``, with the share right and its Jeffreys interval (``None``
    when nothing was answered: the prior alone says nothing about a worker)."""

    answered: int
    correct: int
    accuracy: float | None
    low: float | None
    high: float | None
    level: float = LEVEL
    method: str = METHOD


def gold_accuracy(correct: int, answered: int, *, level: float = LEVEL) -> GoldAccuracy:
    if answered < 0 or not 0 <= correct <= answered:
        raise ValueError(f"need 0 <= correct <= answered, got {correct} of {answered}")
    if not 0.0 < level < 1.0:
        raise ValueError("level must be in (0, 1)")
    if answered == 0:
        return GoldAccuracy(0, 0, None, None, None, level)
    _, low, high = beta_interval([correct], [answered], level=level)
    # Brown, Cai & DasGupta's boundary fix: with none right (all right) the interval reaches
    # 0 (1), rather than excluding the observed share.
    lo = 0.0 if correct == 0 else float(low[0])
    hi = 1.0 if correct == answered else float(high[0])
    return GoldAccuracy(answered, correct, correct / answered, lo, hi, level)


def pause_bound(acc: GoldAccuracy) -> float | None:
    """The upper end of the ``PAUSE_LEVEL`` interval of ``acc``'s counts: the most favourable
    reading of the worker's record that a pause must rule out."""
    return gold_accuracy(acc.correct, acc.answered, level=PAUSE_LEVEL).high


def falls_short(acc: GoldAccuracy, *, min_accuracy: float, min_gold: int) -> bool:
    """Whether the worker is below ``min_accuracy`` with confidence (see the module)."""
    if acc.answered < min_gold:
        return False
    bound = pause_bound(acc)
    return bound is not None and bound < min_accuracy


@dataclass(frozen=True, slots=True)
class Confusion:
    """Counts of (expected, given) answers: ``counts[i][j]`` is how often the expected answer
    was ``classes[i]`` and the worker gave ``classes[j]``. Classes sorted, expected ones and
    given ones together."""

    classes: list[str]
    counts: list[list[int]]

    def errors(self) -> list[tuple[str, str, int]]:
        """The off-diagonal cells that are not zero: (expected, given, count), most first."""
        cells = [
            (self.classes[i], self.classes[j], n)
            for i, row in enumerate(self.counts)
            for j, n in enumerate(row)
            if i != j and n
        ]
        return sorted(cells, key=lambda cell: (-cell[2], cell[0], cell[1]))


def gold_confusion(pairs: Iterable[tuple[str, str]]) -> Confusion:
    """The confusion of (expected, given) answer pairs."""
    seen = Counter(pairs)
    classes = sorted({a for a, _ in seen} | {b for _, b in seen})
    index = {c: i for i, c in enumerate(classes)}
    counts = [[0] * len(classes) for _ in classes]
    for (expected, given), n in seen.items():
        counts[index[expected]][index[given]] += n
    return Confusion(classes, counts)


@dataclass(frozen=True, slots=True)
class ModelEstimate:
    """A worker as a fitted worker model sees them: the accuracy implied by their confusion
    matrix under the class prior, and the matrix (rows true classes, columns given). ``fitted``
    is false for a worker the fit did not see: the values are then the pooled default's."""

    classes: list[Any]
    accuracy: float
    confusion: list[list[float]]
    fitted: bool


def model_estimate(model: WorkerModel, worker: Any) -> ModelEstimate:
    matrix = np.asarray(model.confusion(worker), dtype=np.float64)
    accuracy = float(np.dot(model.priors, np.diag(matrix)))
    fitted = worker in set(model.worker_ids.tolist())
    return ModelEstimate(
        classes=model.classes.tolist(),
        accuracy=round(accuracy, 6),
        confusion=np.round(matrix, 6).tolist(),
        fitted=fitted,
    )
