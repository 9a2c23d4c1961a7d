"""``namedentityrecognition``: mark labelled spans of a text.

Params: ``text`` (the non-empty text), or else ``attachment`` holding the text with
``attachment_type`` ``text`` (the default); ``labels``: a non-empty list of labels, each a
string or Scale's NERLabel ``{name, description?, children?}`` where ``children`` is a list of
labels in the same form (nested labels: ``{"name": "ORG", "children": [{"name": "COMPANY"}]}``).
``{name, parent}`` (``parent`` naming another label) is accepted too. Names are unique across
the whole tree, and a span may carry any of them, a parent as well as a child (the general
label when no child fits). ``allow_overlap`` (default false).

Project params are defaults; ``text`` and ``attachment`` are two ways to give the text, so a
task giving either replaces the project's text.

Response: ``{"annotations": [{start, end, label, text}]}``: character offsets into the text
with ``0 <= start < end <= len(text)`` and ``text == text[start:end]`` (filled in when
missing). Without ``allow_overlap`` no two spans may share a character.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from steelyard.tasktypes._common import (
    at,
    check_attachment_type,
    describe,
    expect_int,
    expect_list,
    expect_object,
    expect_params,
    expect_response,
    expect_str,
    fail,
    opt_bool,
    opt_str,
    require,
)
from steelyard.tasktypes.base import TaskTypeSpec
from steelyard.tasktypes.registry import register


@dataclass(frozen=True)
class _Config:
    text: str
    labels: tuple[str, ...]
    allow_overlap: bool

    @cached_property
    def label_set(self) -> frozenset[str]:
        # One lookup per span: a tuple scan was quadratic in large responses.
        return frozenset(self.labels)


#: The keys that give the text; a task giving either replaces the project's.
_TEXT_KEYS = ("text", "attachment", "attachment_type")


def _text(params: dict[str, Any], *, partial: bool = False) -> str:
    if params.get("text") is not None:
        return expect_str(params["text"], "text")
    if params.get("attachment_type") is not None:
        check_attachment_type(params["attachment_type"], "attachment_type", ("text",))
    if params.get("attachment") is None:
        if partial:
            return ""
        fail("text", "is required: the text to annotate (or give it as attachment)")
    return expect_str(params["attachment"], "attachment")


def _labels(raw: Any) -> tuple[str, ...]:
    """Every label name of the tree, parents before their children."""
    names: list[str] = []
    paths: list[str] = []
    parents: dict[int, tuple[str, str]] = {}

    def walk(items: list[Any], items_path: str) -> None:
        for i, item in enumerate(items):
            path = at(items_path, i)
            if isinstance(item, str):
                names.append(expect_str(item, path))
                paths.append(path)
                continue
            label = expect_object(item, path)
            names.append(
                expect_str(require(label, "name", path, "the label's name"), at(path, "name"))
            )
            paths.append(path)
            opt_str(label, "description", path)
            parent = opt_str(label, "parent", path)
            if parent is not None:
                parents[len(names) - 1] = (parent, at(path, "parent"))
            if label.get("children") is not None:
                children_path = at(path, "children")
                walk(expect_list(label["children"], children_path, non_empty=True), children_path)

    walk(expect_list(raw, "labels", non_empty=True), "labels")
    seen: set[str] = set()
    for name, path in zip(names, paths, strict=True):
        if name in seen:
            fail(path, f"repeats the label {describe(name)}; labels must be unique")
        seen.add(name)
    for i, (parent, path) in parents.items():
        if parent == names[i] or parent not in seen:
            fail(path, f"must name another label, got {describe(parent)}")
    return tuple(names)


def _parse(params: dict[str, Any], *, partial: bool = False) -> _Config:
    """The task's configuration; ``partial`` (a project's defaults) lets keys be left out."""
    text = _text(params, partial=partial)
    labels: tuple[str, ...] = ()
    if not partial or params.get("labels") is not None:
        labels = _labels(require(params, "labels", "", "a list of entity labels"))
    return _Config(text, labels, opt_bool(params, "allow_overlap", "", False))


def _shown(labels: tuple[str, ...]) -> str:
    return ", ".join(labels[:20]) + (", ..." if len(labels) > 20 else "")


class NamedEntityRecognition(TaskTypeSpec):
    name = "namedentityrecognition"
    scorer = "spans"
    aggregator = "spans"
    worker_params = (
        "text",
        "attachment",
        "attachment_type",
        "labels",
        "allow_overlap",
        "context_attachments",
    )

    def merge_params(
        self, defaults: dict[str, Any], own: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        if any(own.get(key) is not None for key in _TEXT_KEYS):
            defaults = {k: v for k, v in defaults.items() if k not in _TEXT_KEYS}
        return {**defaults, **own}

    def validate_defaults(
        self, params: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        out = expect_params(params)
        _parse(out, partial=True)
        return out

    def validate_params(
        self, params: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        out = expect_params(params)
        _parse(out)
        if out.get("text") is None and out.get("attachment_type") is None:
            out["attachment_type"] = "text"
        if out.get("allow_overlap") is None:
            out["allow_overlap"] = False
        return out

    def validate_response(self, params: dict[str, Any], response: Any) -> dict[str, Any]:
        config = _parse(params)
        out = expect_response(response)
        raw = require(out, "annotations", "", "a list of spans (it may be empty)")
        spans: list[tuple[int, int, int]] = []
        annotations = []
        for i, item in enumerate(expect_list(raw, "annotations")):
            path = at("annotations", i)
            span = expect_object(item, path)
            start = expect_int(require(span, "start", path), at(path, "start"))
            end = expect_int(require(span, "end", path), at(path, "end"))
            if not 0 <= start < len(config.text):
                fail(
                    at(path, "start"), f"must be between 0 and {len(config.text) - 1}, got {start}"
                )
            if not start < end <= len(config.text):
                fail(
                    at(path, "end"),
                    f"must be after start ({start}) and at most {len(config.text)}, got {end}",
                )
            label = require(span, "label", path, f"one of {_shown(config.labels)}")
            if not isinstance(label, str) or label not in config.label_set:
                fail(
                    at(path, "label"),
                    f"must be one of {_shown(config.labels)}, got {describe(label)}",
                )
            covered = config.text[start:end]
            if span.get("text") is None:
                span["text"] = covered
            elif span["text"] != covered:
                fail(
                    at(path, "text"),
                    f"must equal the text at {start}:{end} ({describe(covered)}), "
                    f"got {describe(span['text'])}",
                )
            spans.append((start, end, i))
            annotations.append(span)
        if not config.allow_overlap:
            ordered = sorted(spans)
            for (_, prev_end, prev_i), (start, _, i) in itertools.pairwise(ordered):
                if start < prev_end:
                    fail(
                        at("annotations", i),
                        f"overlaps annotations.{prev_i}; this task does not allow overlaps",
                    )
        out["annotations"] = annotations
        return out

    def synthetic_response(self, params: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        config = _parse(params)
        length = len(config.text)
        count = rng.randint(1, min(3, (length + 1) // 2)) if length >= 1 else 0
        # 2*count distinct cut points, paired in order, give disjoint non-empty spans.
        cuts = sorted(rng.sample(range(length + 1), 2 * count))
        annotations = []
        for start, end in zip(cuts[::2], cuts[1::2], strict=True):
            annotations.append(
                {
                    "start": start,
                    "end": end,
                    "label": rng.choice(config.labels),
                    "text": config.text[start:end],
                }
            )
        return {"annotations": annotations}


register(NamedEntityRecognition())
