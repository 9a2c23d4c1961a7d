"""``comparison``: which of several attachments is better (RLHF-style preference).

Params: ``attachments`` (required, at least 2): strings, or ``{type, content}`` objects;
``attachment_type`` (default ``text``) types the plain strings; text is the content itself,
other types are URLs. ``choices`` (unique strings, e.g. ``["A", "B", "tie"]``) and/or
``fields`` (a form, as in textcollection). With neither, ``choices`` defaults to one letter
per attachment (``A``, ``B``, ...), so the task still asks something.

Response: ``{"choice": <one of choices>}`` when there are choices, plus
``{"annotations": {field_id: answer}}`` when there are fields.
"""

from __future__ import annotations

import random
from typing import Any

from steelyard.tasktypes._common import (
    ATTACHMENT_TYPES,
    at,
    check_attachment_type,
    check_content,
    describe,
    expect_list,
    expect_params,
    expect_response,
    fail,
    require,
    string_list,
)
from steelyard.tasktypes._fields import Field, check_answers, fake_answers, parse_fields
from steelyard.tasktypes.base import TaskTypeSpec
from steelyard.tasktypes.registry import register


def default_choices(count: int) -> list[str]:
    """``A``, ``B``, ... one per attachment (numbers past ``Z``, which no UI key reaches)."""
    return [chr(ord("A") + i) if i < 26 else str(i + 1) for i in range(count)]


def _check_attachments(params: dict[str, Any], kind: str) -> int:
    items = expect_list(
        require(params, "attachments", "", "a list of at least 2 items"), "attachments"
    )
    if len(items) < 2:
        fail("attachments", f"must hold at least 2 items to compare, got {len(items)}")
    for i, item in enumerate(items):
        path = at("attachments", i)
        if isinstance(item, dict):
            item_kind = kind
            if item.get("type") is not None:
                item_kind = check_attachment_type(item["type"], at(path, "type"), ATTACHMENT_TYPES)
            check_content(item_kind, require(item, "content", path), at(path, "content"))
        elif isinstance(item, str):
            check_content(kind, item, path)
        else:
            fail(path, f"must be a string or an object {{type, content}}, got {describe(item)}")
    return len(items)


def _parse(params: dict[str, Any]) -> tuple[list[str] | None, tuple[Field, ...] | None]:
    choices = None
    if params.get("choices") is not None:
        choices = string_list(params["choices"], "choices", "choice")
        if len(choices) < 2:
            fail("choices", f"must offer at least 2 options, got {len(choices)}")
    fields = parse_fields(params["fields"]) if params.get("fields") is not None else None
    return choices, fields


class Comparison(TaskTypeSpec):
    name = "comparison"
    scorer = "preference"
    aggregator = "ranking"
    worker_params = ("attachments", "attachment_type", "choices", "fields", "context_attachments")

    def validate_defaults(
        self, params: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        out = expect_params(params)
        kind = "text"
        if out.get("attachment_type") is not None:
            kind = check_attachment_type(
                out["attachment_type"], "attachment_type", ATTACHMENT_TYPES
            )
        if out.get("attachments") is not None:
            _check_attachments(out, kind)
        _parse(out)
        return out

    def validate_params(
        self, params: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        out = expect_params(params)
        kind = "text"
        if out.get("attachment_type") is not None:
            kind = check_attachment_type(
                out["attachment_type"], "attachment_type", ATTACHMENT_TYPES
            )
        count = _check_attachments(out, kind)
        choices, fields = _parse(out)
        if out.get("attachment_type") is None:
            out["attachment_type"] = "text"
        if choices is None and fields is None:
            out["choices"] = default_choices(count)
        return out

    def validate_response(self, params: dict[str, Any], response: Any) -> dict[str, Any]:
        choices, fields = _parse(params)
        out = expect_response(response)
        if choices is not None:
            choice = require(out, "choice", "", f"one of {', '.join(choices)}")
            if choice not in choices:
                fail("choice", f"must be one of {', '.join(choices)}, got {describe(choice)}")
        if fields is not None:
            raw = require(out, "annotations", "", "an object keyed by field_id")
            out["annotations"] = check_answers(fields, raw)
        return out

    def synthetic_response(self, params: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        choices, fields = _parse(params)
        response: dict[str, Any] = {}
        if choices is not None:
            response["choice"] = rng.choice(choices)
        if fields is not None:
            response["annotations"] = fake_answers(fields, rng)
        return response


register(Comparison())
