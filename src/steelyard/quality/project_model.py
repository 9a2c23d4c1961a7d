"""A project's worker model for categorical tasks: fitted from its stored labels, kept as JSON.

The workflow engine fits one per project in the background (never per request) and reads it at
completion time. The fit is Dawid-Skene (the quality core's default for categorization) with
each worker's rows shrunk towards the pooled matrix (``WorkerModel.from_estimator`` with the
training labels), so a worker seen on two tasks is not trusted like one seen on two hundred.
The pooled matrix is the default for workers the fit has not seen.

The stored form is plain JSON (lists of floats) so that it fits a JSON column; ``loads`` gives
back a ``WorkerModel`` and, when the project has one, its gold-fitted ``Calibrator``.

Example:
    >>> table = {"task": [1, 1, 2, 2, 3, 3], "worker": ["a", "b"] * 3,
    ...          "label": ["x", "x", "y", "y", "x", "y"]}
    >>> model = fit_worker_model(table)
    >>> doc = dumps(model)
    >>> back, cal = loads(doc)
    >>> back.classes.tolist(), cal is None, back.confusions.shape
    (['x', 'y'], True, (2, 2, 2))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from steelyard.quality.adaptive import WorkerModel
from steelyard.quality.calibration import Calibrator
from steelyard.quality.dawid_skene import DawidSkene

#: Bumped when the stored form changes; an unknown version reads as "no model".
FORMAT = 1


def fit_worker_model(
    table: Mapping[str, Sequence[Any]], *, n_iter: int = 100
) -> WorkerModel | None:
    """Dawid-Skene on ``table`` (columns ``task``, ``worker``, ``label``), shrunk per worker;
    ``None`` when there is nothing to learn from (no labels, or a single class)."""
    labels = list(table["label"])
    if not labels or len(set(labels)) < 2:
        return None
    estimator = DawidSkene(n_iter=n_iter).fit(table)
    return WorkerModel.from_estimator(estimator, labels=table)


def dumps(model: WorkerModel, calibrator: Calibrator | None = None) -> dict[str, Any]:
    """The JSON form of ``model`` (and ``calibrator``), rounded to 6 digits: compact, and far
    finer than the estimate's own error."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "classes": [_plain(c) for c in model.classes.tolist()],
        "priors": np.round(model.priors, 6).tolist(),
        "workers": [_plain(w) for w in model.worker_ids.tolist()],
        "confusions": np.round(model.confusions, 6).tolist(),
        "default": np.round(model.default_confusion, 6).tolist(),
    }
    if calibrator is not None:
        doc["calibrator"] = {
            "prior_mean": list(calibrator.prior_mean),
            "prior_sd": list(calibrator.prior_sd),
            "credibility": calibrator.credibility,
            "params": list(calibrator.params),
            "covariance": list(calibrator.covariance),
            "n_fit": calibrator.n_fit,
        }
    return doc


def loads(doc: Mapping[str, Any]) -> tuple[WorkerModel, Calibrator | None]:
    """``dumps``' inverse; raises ``ValueError`` on a document it cannot read."""
    if doc.get("format") != FORMAT:
        raise ValueError(f"unknown worker model format {doc.get('format')!r}")
    k = len(doc["classes"])
    confusions = np.asarray(doc["confusions"], dtype=np.float64).reshape(-1, k, k)
    model = WorkerModel.from_confusions(
        np.asarray(doc["classes"], dtype=object),
        doc["priors"],
        confusions,
        np.asarray(doc["workers"], dtype=object),
        default_confusion=doc["default"],
    )
    stored = doc.get("calibrator")
    calibrator = None
    if stored is not None:
        calibrator = Calibrator(
            prior_mean=_triple(stored["prior_mean"]),
            prior_sd=_triple(stored["prior_sd"]),
            credibility=stored["credibility"],
            params=_triple(stored["params"]),
            covariance=tuple(float(v) for v in stored["covariance"]),
            n_fit=float(stored["n_fit"]),
        )
    return model, calibrator


def _triple(values: Sequence[Any]) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return a, b, c


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
