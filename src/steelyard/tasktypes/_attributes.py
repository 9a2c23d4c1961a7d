"""``annotation_attributes``: extra questions asked about every image annotation.

A definition is ``{type, description, choices | min/max/step, conditions}`` (``type``
defaults to ``category``, as in Scale). Answers come back per annotation under
``attributes: {name: value}``.

Conditions follow Scale's documented shape::

    "conditions": {"label_condition": {"label": "car" | ["car", "truck"]},
                   "attribute_conditions": [{"is_moving": "No"}, {"is_parked": "Yes"}]}

The label condition must hold (a parent choice matches its whole subtree), and, when
attribute conditions are given, at least one of those objects must match with all of its
keys. Scale's pages differ on whether the list is OR'd or AND'd; OR is the reading that lets
"ask when moving, or when parked" be written at all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from steelyard.tasktypes._common import (
    at,
    check_in_range,
    check_order,
    describe,
    expect_list,
    expect_number,
    expect_object,
    expect_str,
    fail,
    is_number,
    opt_bool,
    opt_number,
    opt_str,
    random_in_range,
    require,
    string_list,
)

ATTRIBUTE_TYPES = ("category", "number", "angle", "text", "linear_scale")
_Scalar = str | int | float | bool


@dataclass(frozen=True)
class AttributeDef:
    name: str
    type: str
    required: bool = True
    choices: tuple[str, ...] = ()
    allow_multiple: bool = False
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    labels: frozenset[str] | None = None
    attribute_conditions: tuple[dict[str, tuple[_Scalar, ...]], ...] = ()

    @cached_property
    def choice_set(self) -> frozenset[str]:
        # Looked up once per annotation: a tuple scan was quadratic in large responses.
        return frozenset(self.choices)

    def applies(self, label: str | None, ancestors: list[str], answers: dict[str, Any]) -> bool:
        """Whether this attribute is asked for an annotation with this label and answers."""
        if self.labels is not None and not self.labels.intersection([label, *ancestors]):
            return False
        if not self.attribute_conditions:
            return True
        return any(
            all(_matches(answers.get(name), wanted) for name, wanted in condition.items())
            for condition in self.attribute_conditions
        )


def _matches(answer: Any, wanted: tuple[_Scalar, ...]) -> bool:
    if isinstance(answer, list):
        return any(item in wanted for item in answer)
    return answer is not None and answer in wanted


def _condition_values(value: Any, path: str) -> tuple[_Scalar, ...]:
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(items):
        if not isinstance(item, str) and not is_number(item) and not isinstance(item, bool):
            where = at(path, i) if isinstance(value, list) else path
            fail(where, f"must be a string or a list of strings, got {describe(item)}")
    if not items:
        fail(path, "must not be empty")
    return tuple(items)


def _parse_conditions(
    raw: Any, path: str
) -> tuple[frozenset[str] | None, tuple[dict[str, tuple[_Scalar, ...]], ...]]:
    conditions = expect_object(raw, path)
    labels: frozenset[str] | None = None
    if conditions.get("label_condition") is not None:
        label_path = at(path, "label_condition")
        label_condition = expect_object(conditions["label_condition"], label_path)
        wanted = _condition_values(
            require(label_condition, "label", label_path), at(label_path, "label")
        )
        labels = frozenset(str(item) for item in wanted)
    attribute_conditions = []
    if conditions.get("attribute_conditions") is not None:
        list_path = at(path, "attribute_conditions")
        for i, item in enumerate(expect_list(conditions["attribute_conditions"], list_path)):
            condition = expect_object(item, at(list_path, i))
            attribute_conditions.append(
                {
                    name: _condition_values(v, at(at(list_path, i), name))
                    for name, v in condition.items()
                }
            )
    return labels, tuple(attribute_conditions)


def _parse_one(name: str, raw: Any, path: str) -> AttributeDef:
    defn = expect_object(raw, path)
    kind = defn.get("type", "category")
    if kind not in ATTRIBUTE_TYPES:
        fail(at(path, "type"), f"must be one of {', '.join(ATTRIBUTE_TYPES)}, got {describe(kind)}")
    opt_str(defn, "description", path)
    labels: frozenset[str] | None = None
    attribute_conditions: tuple[dict[str, tuple[_Scalar, ...]], ...] = ()
    if defn.get("conditions") is not None:
        labels, attribute_conditions = _parse_conditions(defn["conditions"], at(path, "conditions"))
    base = AttributeDef(
        name=name,
        type=kind,
        required=opt_bool(defn, "required", path, True),
        labels=labels,
        attribute_conditions=attribute_conditions,
    )
    if kind == "category":
        choices = string_list(
            require(defn, "choices", path, "a list of options"), at(path, "choices"), "choice"
        )
        allow_multiple = opt_bool(defn, "allow_multiple", path, False)
        return replace(base, choices=tuple(choices), allow_multiple=allow_multiple)
    if kind in ("number", "linear_scale"):
        if kind == "linear_scale":
            require(defn, "min", path, "the low end of the scale")
            require(defn, "max", path, "the high end of the scale")
        low, high = opt_number(defn, "min", path), opt_number(defn, "max", path)
        check_order(low, high, path, "min", "max")
        step = opt_number(defn, "step", path)
        if step is not None and step <= 0:
            fail(at(path, "step"), f"must be greater than 0, got {step:g}")
        # Scale documents numerical attributes as integer input with a default step of 1.
        return replace(base, minimum=low, maximum=high, step=step or 1.0)
    if kind == "angle":
        return replace(base, minimum=0.0, maximum=360.0)
    return base


def parse_attributes(
    raw: Any, known_labels: set[str] | None, path: str = "annotation_attributes"
) -> dict[str, AttributeDef]:
    """Every definition, with conditions checked against the labels and the other names.

    ``known_labels`` is None when the labels are not known yet (a project's defaults without
    geometries): label conditions are then checked when a task brings its labels."""
    defs = {
        name: _parse_one(name, value, at(path, name))
        for name, value in expect_object(raw, path).items()
    }
    for name, defn in defs.items():
        cond_path = at(at(path, name), "conditions")
        for label in sorted(defn.labels or ()):
            if known_labels is not None and label not in known_labels:
                fail(
                    at(at(cond_path, "label_condition"), "label"),
                    f"names {describe(label)}, which is not in any objects_to_annotate",
                )
        for i, condition in enumerate(defn.attribute_conditions):
            for other in condition:
                if other == name or other not in defs:
                    fail(
                        at(at(cond_path, "attribute_conditions"), i),
                        f"refers to {describe(other)}, which is not another annotation attribute",
                    )
    return defs


# -- answers -------------------------------------------------------------------------------


def _check_value(defn: AttributeDef, value: Any, path: str) -> None:
    if defn.type == "category":
        picked = value if defn.allow_multiple and isinstance(value, list) else [value]
        if defn.allow_multiple and not picked:
            fail(path, "must name at least one choice")
        for item in picked:
            if not isinstance(item, str) or item not in defn.choice_set:
                fail(path, f"must be one of {', '.join(defn.choices)}, got {describe(item)}")
    elif defn.type == "text":
        expect_str(value, path, non_empty=defn.required)
    else:
        check_in_range(expect_number(value, path), path, defn.minimum, defn.maximum, defn.step)


def check_attributes(
    defs: dict[str, AttributeDef], label: str | None, ancestors: list[str], raw: Any, path: str
) -> dict[str, Any]:
    answers = {} if raw is None else expect_object(raw, path)
    for name, value in answers.items():
        if name not in defs:
            known = ", ".join(defs) or "none are defined"
            fail(at(path, name), f"is not an annotation attribute of this task ({known})")
        if value is not None:
            _check_value(defs[name], value, at(path, name))
    for name, defn in defs.items():
        if defn.required and answers.get(name) is None and defn.applies(label, ancestors, answers):
            fail(at(path, name), f"is required for an annotation labelled {describe(label)}")
    return answers


def _random_value(defn: AttributeDef, rng: random.Random) -> Any:
    if defn.type == "category":
        if defn.allow_multiple:
            return rng.sample(list(defn.choices), rng.randint(1, len(defn.choices)))
        return rng.choice(defn.choices)
    if defn.type == "text":
        return rng.choice(["clear", "partly hidden", "blurred"])
    step = defn.step if defn.type != "angle" else None
    return random_in_range(rng, defn.minimum, defn.maximum, step)


def synthetic_attributes(
    defs: dict[str, AttributeDef], label: str, ancestors: list[str], rng: random.Random
) -> dict[str, Any]:
    """Answers for every attribute that applies once the others are answered.

    Attribute conditions depend on other answers, so answer in passes until nothing new
    applies: at the fixed point every applicable attribute has a value.
    """
    answers: dict[str, Any] = {}
    changed = True
    while changed:
        changed = False
        for name, defn in defs.items():
            if name not in answers and defn.applies(label, ancestors, answers):
                answers[name] = _random_value(defn, rng)
                changed = True
    return answers
