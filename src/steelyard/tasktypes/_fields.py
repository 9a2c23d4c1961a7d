"""Form fields (Scale's text-collection ``fields``), shared by textcollection and comparison.

Each field has ``type``, ``field_id`` (unique in the whole form; the answer's key),
``title``, and optionally ``description``, ``hint``, ``required`` (default false),
``min_responses_required``/``max_responses_required`` (default 1/1; when the maximum is above
1 the answer is a list of responses) and ``conditions``. Types:

- ``text``: ``min_characters``, ``max_characters`` → a string
- ``number``: ``min``, ``max``, ``step`` (Scale's "linear scale") → a number
- ``datetime`` → an ISO-8601 date or date-time string
- ``boolean`` → true/false
- ``category`` (and ``select``): ``choices: [{label, value, hint?, subchoices?}]`` (plain
  strings accepted as shorthand), ``min_choices``/``max_choices`` (default 1/1) → the list of
  chosen leaf ``value``s; a choice with subchoices is navigation only, as in Scale
- ``field_set``: ``fields`` (nested fields) → a list of objects keyed by the child field ids

``conditions`` (Scale's beta conditional fields) is a list of alternatives; the field is shown
when any matches. An alternative is an object whose keys are other field ids *at the same
level* and whose values are the wanted answer (a value, a list of values, or
``{"choices": [...]}``); all keys must match. ``{"not": <alternative>}`` negates and a nested
list is another OR. Answers to hidden fields are accepted but never required.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from steelyard.tasktypes._common import (
    at,
    check_in_range,
    check_order,
    check_unique,
    describe,
    expect_list,
    expect_number,
    expect_object,
    expect_str,
    fail,
    is_number,
    opt_int,
    opt_number,
    opt_str,
    random_in_range,
    require,
)

FIELD_TYPES = ("text", "number", "datetime", "boolean", "category", "select", "field_set")
_TYPE_ALIASES = {"fieldset": "field_set"}
_MAX_RESPONSES = 100  # Scale's documented upper bound
_WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")

Answers = dict[str, Any]
Predicate = Callable[[Answers], bool]


@dataclass(frozen=True)
class Field:
    field_id: str
    type: str
    required: bool = False
    min_responses: int = 1
    max_responses: int = 1
    shown: Predicate | None = None
    min_characters: int | None = None
    max_characters: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    values: tuple[Any, ...] = ()
    min_choices: int = 1
    max_choices: int = 1
    children: tuple[Field, ...] = ()

    @cached_property
    def value_keys(self) -> frozenset[tuple[bool, Any]]:
        """``values`` by ``_value_key``: one lookup per chosen value, where a scan of every
        value per choice was quadratic in a large choice list."""
        return frozenset(_value_key(v) for v in self.values)

    @property
    def multiple(self) -> bool:
        return self.max_responses > 1 or self.type == "field_set"

    def is_shown(self, answers: Answers) -> bool:
        return self.shown is None or self.shown(answers)


# -- params --------------------------------------------------------------------------------


def _wanted(value: Any, path: str) -> tuple[Any, ...]:
    if isinstance(value, dict):
        value = require(value, "choices", path, "the answers that show this field")
    items = value if isinstance(value, list) else [value]
    if not items:
        fail(path, "must not be empty")
    for i, item in enumerate(items):
        if not (isinstance(item, str | bool) or is_number(item)):
            fail(
                at(path, i) if isinstance(value, list) else path,
                f"must be a value, got {describe(item)}",
            )
    return tuple(items)


def _answer_matches(answer: Any, wanted: tuple[Any, ...]) -> bool:
    if answer is None:
        return False
    flat = answer if isinstance(answer, list) else [answer]
    flat = [x for item in flat for x in (item if isinstance(item, list) else [item])]
    return any(item in wanted for item in flat)


def _condition(raw: Any, path: str, refs: dict[str, str]) -> Predicate:
    """Parse one condition node; ``refs`` collects field id → path of each reference."""
    if isinstance(raw, list):
        if not raw:
            fail(path, "must not be empty")
        alternatives = [_condition(item, at(path, i), refs) for i, item in enumerate(raw)]
        return lambda answers: any(p(answers) for p in alternatives)
    node = expect_object(raw, path)
    if not node:
        fail(path, "must name at least one field")
    parts: list[Predicate] = []
    for key, value in node.items():
        if key == "not":
            parts.append(_negate(_condition(value, at(path, key), refs)))
        else:
            refs[key] = at(path, key)
            parts.append(_answered(key, _wanted(value, at(path, key))))
    return lambda answers: all(p(answers) for p in parts)


def _negate(inner: Predicate) -> Predicate:
    return lambda answers: not inner(answers)


def _answered(field_id: str, wanted: tuple[Any, ...]) -> Predicate:
    return lambda answers: _answer_matches(answers.get(field_id), wanted)


def _category_values(raw: Any, path: str, leaves: list[Any]) -> None:
    for i, item in enumerate(expect_list(raw, path, non_empty=True)):
        item_path = at(path, i)
        if isinstance(item, str):
            leaves.append(expect_str(item, item_path))
            continue
        choice = expect_object(item, item_path)
        expect_str(require(choice, "label", item_path), at(item_path, "label"))
        opt_str(choice, "hint", item_path)
        value = require(choice, "value", item_path, "a string, number or boolean")
        if not (isinstance(value, str | bool) or is_number(value)):
            fail(
                at(item_path, "value"),
                f"must be a string, number or boolean, got {describe(value)}",
            )
        if choice.get("subchoices"):
            _category_values(choice["subchoices"], at(item_path, "subchoices"), leaves)
        else:
            leaves.append(value)


def _parse_field(raw: Any, path: str, ids: dict[str, str]) -> tuple[Field, dict[str, str]]:
    spec = expect_object(raw, path)
    kind = expect_str(
        require(spec, "type", path, f"one of {', '.join(FIELD_TYPES)}"), at(path, "type")
    )
    kind = _TYPE_ALIASES.get(kind.lower(), kind.lower())
    if kind not in FIELD_TYPES:
        fail(
            at(path, "type"),
            f"must be one of {', '.join(FIELD_TYPES)}, got {describe(spec['type'])}",
        )
    field_id = expect_str(
        require(spec, "field_id", path, "the key of the answer"), at(path, "field_id")
    )
    if field_id in ids:
        fail(
            at(path, "field_id"),
            f"repeats {describe(field_id)} (first at {ids[field_id]}); field ids must be unique",
        )
    ids[field_id] = path
    expect_str(require(spec, "title", path, "the question shown to the labeler"), at(path, "title"))
    opt_str(spec, "description", path)
    opt_str(spec, "hint", path)
    low = opt_int(spec, "min_responses_required", path, minimum=1) or 1
    high = opt_int(spec, "max_responses_required", path, minimum=1) or 1
    if high > _MAX_RESPONSES:
        fail(at(path, "max_responses_required"), f"must be at most {_MAX_RESPONSES}, got {high}")
    check_order(low, high, path, "min_responses_required", "max_responses_required")
    refs: dict[str, str] = {}
    shown = None
    if spec.get("conditions") is not None:
        shown = _condition(
            expect_list(spec["conditions"], at(path, "conditions")), at(path, "conditions"), refs
        )
    required = spec.get("required")
    if required is not None and not isinstance(required, bool | int):
        fail(at(path, "required"), f"must be true or false, got {describe(required)}")
    field = Field(field_id, kind, bool(required), low, high, shown)

    if kind == "text":
        least = opt_int(spec, "min_characters", path, minimum=0)
        most = opt_int(spec, "max_characters", path, minimum=1)
        check_order(least, most, path, "min_characters", "max_characters")
        field = replace(field, min_characters=least, max_characters=most)
    elif kind == "number":
        minimum, maximum = opt_number(spec, "min", path), opt_number(spec, "max", path)
        check_order(minimum, maximum, path, "min", "max")
        step = opt_number(spec, "step", path)
        if step is not None and step <= 0:
            fail(at(path, "step"), f"must be greater than 0, got {step:g}")
        field = replace(field, minimum=minimum, maximum=maximum, step=step)
    elif kind in ("category", "select"):
        values: list[Any] = []
        _category_values(
            require(spec, "choices", path, "a list of {label, value}"), at(path, "choices"), values
        )
        check_unique(values, at(path, "choices"), "choice value")
        # Scale spells these min_choices/max_choices; its Rapid docs say min_choice/max_choice.
        least = opt_int(spec, "min_choices", path, minimum=0)
        least = least if least is not None else opt_int(spec, "min_choice", path, minimum=0)
        most = opt_int(spec, "max_choices", path, minimum=1)
        most = most if most is not None else opt_int(spec, "max_choice", path, minimum=1)
        least, most = (1 if least is None else least), (1 if most is None else most)
        check_order(least, most, path, "min_choices", "max_choices")
        if least > len(values):
            fail(
                at(path, "min_choices"),
                f"({least}) is more than the {len(values)} selectable choices",
            )
        field = replace(field, values=tuple(values), min_choices=least, max_choices=most)
    elif kind == "field_set":
        children = parse_fields(
            require(spec, "fields", path, "the nested fields"), at(path, "fields"), ids
        )
        field = replace(field, children=children)
    return field, refs


def parse_fields(
    raw: Any, path: str = "fields", ids: dict[str, str] | None = None
) -> tuple[Field, ...]:
    """A list of fields; ``ids`` (field id → path) spans nested field sets."""
    ids = {} if ids is None else ids
    parsed = [
        _parse_field(item, at(path, i), ids)
        for i, item in enumerate(expect_list(raw, path, non_empty=True))
    ]
    level = {field.field_id for field, _ in parsed}
    for field, refs in parsed:
        for ref, ref_path in refs.items():
            if ref == field.field_id or ref not in level:
                fail(ref_path, f"must name another field at the same level, got {describe(ref)}")
    return tuple(field for field, _ in parsed)


# -- answers -------------------------------------------------------------------------------


def _is_blank(value: Any) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def _value_key(value: Any) -> tuple[bool, Any]:
    """Equal keys for equal choice values (JSON scalars), where true is not 1: booleans
    compare only with booleans."""
    return (isinstance(value, bool), value)


def _check_one(field: Field, value: Any, path: str) -> Any:
    if field.type == "text":
        text = expect_str(value, path, non_empty=False)
        if field.min_characters is not None and len(text) < field.min_characters:
            fail(path, f"must have at least {field.min_characters} characters, got {len(text)}")
        if field.max_characters is not None and len(text) > field.max_characters:
            fail(path, f"must have at most {field.max_characters} characters, got {len(text)}")
        return text
    if field.type == "number":
        check_in_range(expect_number(value, path), path, field.minimum, field.maximum, field.step)
        return value
    if field.type == "datetime":
        try:
            datetime.fromisoformat(expect_str(value, path))
        except ValueError:
            fail(path, f"must be an ISO-8601 date or date-time, got {describe(value)}")
        return value
    if field.type == "boolean":
        if not isinstance(value, bool):
            fail(path, f"must be true or false, got {describe(value)}")
        return value
    if field.type == "field_set":
        return check_answers(field.children, value, path)
    chosen = value if isinstance(value, list) else [value]  # a lone value means one choice
    if not field.min_choices <= len(chosen) <= field.max_choices:
        fail(
            path,
            f"must pick {field.min_choices} to {field.max_choices} choices, got {len(chosen)}",
        )
    for i, item in enumerate(chosen):
        if not isinstance(item, str | int | float) or _value_key(item) not in field.value_keys:
            shown = ", ".join(describe(v) for v in field.values[:10])
            fail(
                at(path, i) if isinstance(value, list) else path,
                f"must be one of {shown}, got {describe(item)}",
            )
    check_unique(chosen, path, "choice")
    return chosen


def _check_field(field: Field, value: Any, path: str) -> Any:
    if not field.multiple or (
        field.type == "field_set" and isinstance(value, dict) and field.max_responses == 1
    ):
        return _check_one(field, value, path)
    responses = expect_list(value, path)
    if not field.min_responses <= len(responses) <= field.max_responses:
        fail(
            path,
            f"must hold {field.min_responses} to {field.max_responses} responses, "
            f"got {len(responses)}",
        )
    return [_check_one(field, item, at(path, i)) for i, item in enumerate(responses)]


def check_answers(fields: tuple[Field, ...], raw: Any, path: str = "annotations") -> Answers:
    """Answers keyed by field id; required fields that are shown must be answered."""
    answers = dict(expect_object(raw, path))
    known = {field.field_id: field for field in fields}
    for key in answers:
        if key not in known:
            fail(at(path, key), f"is not a field of this task ({', '.join(known)})")
    for field in fields:
        value = answers.get(field.field_id)
        if _is_blank(value):
            if field.required and field.is_shown(answers):
                fail(at(path, field.field_id), "is required")
            continue
        answers[field.field_id] = _check_field(field, value, at(path, field.field_id))
    return answers


# -- synthetic -----------------------------------------------------------------------------


def _fake_one(field: Field, rng: random.Random) -> Any:
    if field.type == "text":
        least = max(field.min_characters or 0, 1)
        most = field.max_characters if field.max_characters is not None else least + 40
        words = " ".join(rng.choice(_WORDS) for _ in range(most // 2 + 2))
        text = words[: rng.randint(least, most)]
        # A trailing space would make the answer look padded; swap it for a letter instead
        # of stripping, which could fall below min_characters.
        return text[:-1] + "s" if text.endswith(" ") else text
    if field.type == "number":
        return random_in_range(rng, field.minimum, field.maximum, field.step)
    if field.type == "datetime":
        moment = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(
            seconds=rng.randint(0, 5 * 365 * 86400)
        )
        return moment.isoformat().replace("+00:00", "Z")
    if field.type == "boolean":
        return rng.random() < 0.5
    if field.type == "field_set":
        return fake_answers(field.children, rng)
    count = rng.randint(
        max(field.min_choices, 1), max(1, min(field.max_choices, len(field.values)))
    )
    return rng.sample(list(field.values), count)


def fake_answers(fields: tuple[Field, ...], rng: random.Random) -> Answers:
    """Answers ``check_answers`` accepts. Conditions depend on other answers, so decide in
    passes until nothing new is shown; optional fields are sometimes left out."""
    answers: Answers = {}
    decided: set[str] = set()
    changed = True
    while changed:
        changed = False
        for field in fields:
            if field.field_id in decided or not field.is_shown(answers):
                continue
            decided.add(field.field_id)
            changed = True
            if field.required or rng.random() < 0.7:
                if field.multiple:
                    most = min(field.max_responses, field.min_responses + 2)
                    count = rng.randint(field.min_responses, most)
                    answers[field.field_id] = [_fake_one(field, rng) for _ in range(count)]
                else:
                    answers[field.field_id] = _fake_one(field, rng)
    return answers


def field_ids(fields: tuple[Field, ...]) -> set[str]:
    """Every field id in the form, nested ones included (attachments' ``forms`` name them)."""
    return {f.field_id for f in fields} | {i for f in fields for i in field_ids(f.children)}
