"""``textcollection``: a form (``fields``) answered about some ``attachments``.

Params: ``attachments`` (required, non-empty) ``[{type, content, forms?}]`` where ``type`` is
one of text, image, pdf, video, website, audio; ``content`` is the text itself for ``text``
and a URL otherwise; ``forms`` lists field ids whose visibility shows the attachment.
``fields`` (required, non-empty): the form, see ``_fields``.

Response: ``{"annotations": {field_id: answer}}``.
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
    expect_object,
    expect_params,
    expect_response,
    expect_str,
    fail,
    require,
)
from steelyard.tasktypes._fields import Field, check_answers, fake_answers, field_ids, parse_fields
from steelyard.tasktypes.base import TaskTypeSpec
from steelyard.tasktypes.registry import register


def check_attachment_objects(raw: Any, path: str, form_ids: set[str] | None) -> None:
    """``[{type, content, forms?}]``: Scale's TextCollectionAttachment list. ``form_ids`` is
    None when the fields are not known yet (a project's defaults without ``fields``)."""
    for i, item in enumerate(expect_list(raw, path, non_empty=True)):
        item_path = at(path, i)
        attachment = expect_object(item, item_path)
        kind = check_attachment_type(
            require(attachment, "type", item_path, f"one of {', '.join(ATTACHMENT_TYPES)}"),
            at(item_path, "type"),
            ATTACHMENT_TYPES,
        )
        check_content(kind, require(attachment, "content", item_path), at(item_path, "content"))
        if attachment.get("forms") is not None:
            forms_path = at(item_path, "forms")
            for j, ref in enumerate(expect_list(attachment["forms"], forms_path)):
                ref = expect_str(ref, at(forms_path, j))
                if form_ids is not None and ref not in form_ids:
                    fail(
                        at(forms_path, j),
                        f"names {describe(ref)}, which is not a field id of this task",
                    )


def _fields(params: dict[str, Any]) -> tuple[Field, ...]:
    return parse_fields(require(params, "fields", "", "a list of form fields"))


class TextCollection(TaskTypeSpec):
    name = "textcollection"
    scorer = "fields"
    aggregator = "text"
    worker_params = ("attachments", "fields", "context_attachments")

    def validate_defaults(
        self, params: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        out = expect_params(params)
        fields = _fields(out) if out.get("fields") is not None else None
        if out.get("attachments") is not None:
            ids = field_ids(fields) if fields is not None else None
            check_attachment_objects(out["attachments"], "attachments", ids)
        return out

    def validate_params(
        self, params: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        out = expect_params(params)
        attachments = require(out, "attachments", "", "a list of {type, content}")
        fields = _fields(out)
        check_attachment_objects(attachments, "attachments", field_ids(fields))
        return out

    def validate_response(self, params: dict[str, Any], response: Any) -> dict[str, Any]:
        fields = _fields(params)
        out = expect_response(response)
        out["annotations"] = check_answers(
            fields, require(out, "annotations", "", "an object keyed by field_id")
        )
        return out

    def synthetic_response(self, params: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        return {"annotations": fake_answers(_fields(params), rng)}


register(TextCollection())
