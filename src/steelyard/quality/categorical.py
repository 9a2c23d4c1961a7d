"""Registry of the categorical truth-inference methods.

>>> from steelyard.quality.categorical import make
>>> model = make("default")            # Steelyard's recommended estimator
>>> sorted(METHODS)
['bayes_ds', 'default', 'ds', 'glad', 'mace', 'mv', 'onecoin', 'select', 'wawa']

Every method follows the contract of :mod:`steelyard.quality._base` (``fit(labels, gold=None)``,
``labels_``, ``probas_``, ``skills_``...).
"""

from __future__ import annotations

from typing import Any

from ._base import CategoricalAggregator
from .bayes_ds import BayesianDawidSkene
from .dawid_skene import DawidSkene
from .glad import GLAD
from .mace import MACE
from .majority_vote import MajorityVote
from .one_coin import OneCoinDawidSkene
from .selection import HeldOutSelection
from .wawa import Wawa

__all__ = [
    "DEFAULT",
    "GLAD",
    "MACE",
    "METHODS",
    "BayesianDawidSkene",
    "CategoricalAggregator",
    "DawidSkene",
    "HeldOutSelection",
    "MajorityVote",
    "OneCoinDawidSkene",
    "Wawa",
    "make",
]

DEFAULT: type[CategoricalAggregator] = HeldOutSelection
"""The estimator behind ``"default"``: Bayesian Dawid-Skene with its prior strength chosen on
the data by held-out labels (chosen by leave-one-dataset-out measurement; see
``HeldOutSelection``)."""

METHODS: dict[str, type[CategoricalAggregator]] = {
    "mv": MajorityVote,
    "wawa": Wawa,
    "ds": DawidSkene,
    "onecoin": OneCoinDawidSkene,
    "glad": GLAD,
    "mace": MACE,
    "bayes_ds": BayesianDawidSkene,
    "select": HeldOutSelection,
    "default": DEFAULT,
}


def make(name: str, **params: Any) -> CategoricalAggregator:
    """A new estimator of the method called ``name`` with ``params`` (its ``__init__`` args).

    Raises ``ValueError`` naming the valid methods when ``name`` is unknown.
    """
    try:
        cls = METHODS[name]
    except KeyError:
        valid = ", ".join(sorted(METHODS))
        raise ValueError(f"unknown aggregation method {name!r}; choose one of: {valid}") from None
    return cls(**params)
