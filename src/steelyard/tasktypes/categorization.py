"""``categorization``: pick the category (or categories) of one attachment.

Params: ``attachment`` (required; the text itself when ``attachment_type`` is ``text``, a URL
otherwise), ``attachment_type`` (text, image, website, video, pdf, audio; when omitted it is
``image`` for a URL and ``text`` for anything else), and at least one of:

- ``categories``: unique strings; ``allow_multiple`` (default false); ``category_ids``, a map
  from category to the customer's id for it;
- ``taxonomies``: the newer form, ``{name: {type: "category", choices: [...],
  allow_multiple?, description?}}``.

Project params are defaults; ``categories`` and ``taxonomies`` are two ways to ask the same
question, so a task that asks with either replaces the project's question whole (its
``category_ids`` too, which name the project's categories).

Response: ``{"category": "x"}`` (a list when ``allow_multiple``) for ``categories``, and
``{"taxonomies": {name: ["x", ...]}}`` for ``taxonomies`` (a lone string is accepted and
stored as a one-item list).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from steelyard.tasktypes._common import (
    ATTACHMENT_TYPES,
    FILE_URL_SCHEME,
    at,
    check_attachment_type,
    check_content,
    check_unique,
    describe,
    expect_list,
    expect_object,
    expect_params,
    expect_response,
    fail,
    opt_bool,
    opt_str,
    require,
    string_list,
)
from steelyard.tasktypes.base import TaskTypeSpec
from steelyard.tasktypes.registry import register

_URL_PREFIXES = ("http://", "https://", "data:", f"{FILE_URL_SCHEME}://")


@dataclass(frozen=True)
class _Question:
    choices: tuple[str, ...]
    allow_multiple: bool

    @cached_property
    def options(self) -> frozenset[str]:
        """The choices as a set: every pick is looked up, and a tuple scan per pick was
        quadratic in a large taxonomy."""
        return frozenset(self.choices)


@dataclass(frozen=True)
class _Config:
    categories: _Question | None
    taxonomies: dict[str, _Question]


def _attachment_type(params: dict[str, Any]) -> str:
    if params.get("attachment_type") is not None:
        return check_attachment_type(params["attachment_type"], "attachment_type", ATTACHMENT_TYPES)
    attachment = params.get("attachment")
    looks_like_url = isinstance(attachment, str) and attachment.strip().lower().startswith(
        _URL_PREFIXES
    )
    return "image" if looks_like_url else "text"


#: The keys that say what a task asks; a task giving any of them replaces the project's.
_QUESTION_KEYS = ("categories", "taxonomies", "category_ids")


def _parse(params: dict[str, Any], *, partial: bool = False) -> _Config:
    """The task's configuration; ``partial`` (a project's defaults) lets keys be left out."""
    if not partial or params.get("attachment") is not None:
        attachment = require(params, "attachment", "", "the text or URL to categorize")
        check_content(_attachment_type(params), attachment, "attachment")
    elif params.get("attachment_type") is not None:
        _attachment_type(params)
    if not partial and params.get("categories") is None and params.get("taxonomies") is None:
        fail("categories", "is required: a list of categories (or give taxonomies)")
    opt_bool(params, "allow_multiple", "", False)
    categories = None
    if params.get("categories") is not None:
        names = string_list(params["categories"], "categories", "category")
        categories = _Question(tuple(names), opt_bool(params, "allow_multiple", "", False))
    if params.get("category_ids") is not None:
        ids = expect_object(params["category_ids"], "category_ids")
        if categories is None:
            fail("category_ids", "names categories: give categories with it")
        for name in ids:
            if name not in categories.options:
                fail(at("category_ids", name), "is not one of the categories")
    taxonomies: dict[str, _Question] = {}
    if params.get("taxonomies") is not None:
        raw = expect_object(params["taxonomies"], "taxonomies")
        if not raw:
            fail("taxonomies", "must define at least one taxonomy")
        for name, spec in raw.items():
            path = at("taxonomies", name)
            taxonomy = expect_object(spec, path)
            kind = taxonomy.get("type", "category")
            if kind != "category":
                fail(at(path, "type"), f'must be "category", got {describe(kind)}')
            opt_str(taxonomy, "description", path)
            choices = string_list(
                require(taxonomy, "choices", path, "a list of options"),
                at(path, "choices"),
                "choice",
            )
            taxonomies[name] = _Question(
                tuple(choices), opt_bool(taxonomy, "allow_multiple", path, False)
            )
    return _Config(categories, taxonomies)


def _check_picks(question: _Question, value: Any, path: str) -> list[str]:
    picks = expect_list(value, path, non_empty=True)
    if not question.allow_multiple and len(picks) != 1:
        fail(path, f"must name exactly one choice (allow_multiple is off), got {len(picks)}")
    for i, pick in enumerate(picks):
        if not isinstance(pick, str) or pick not in question.options:
            fail(at(path, i), f"must be one of {', '.join(question.choices)}, got {describe(pick)}")
    check_unique(picks, path, "choice")
    return picks


def _fake_picks(question: _Question, rng: random.Random) -> list[str]:
    count = rng.randint(1, len(question.choices)) if question.allow_multiple else 1
    return rng.sample(list(question.choices), count)


class Categorization(TaskTypeSpec):
    name = "categorization"
    scorer = "choice"
    aggregator = "categorical"
    worker_params = (
        "attachment",
        "attachment_type",
        "categories",
        "allow_multiple",
        "taxonomies",
        "context_attachments",
    )

    def merge_params(
        self, defaults: dict[str, Any], own: dict[str, Any], *, alias: str | None = None
    ) -> dict[str, Any]:
        if any(own.get(key) is not None for key in _QUESTION_KEYS):
            defaults = {k: v for k, v in defaults.items() if k not in _QUESTION_KEYS}
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
        if out.get("attachment_type") is None:
            out["attachment_type"] = _attachment_type(out)
        return out

    def validate_response(self, params: dict[str, Any], response: Any) -> dict[str, Any]:
        config = _parse(params)
        out = expect_response(response)
        if config.categories is not None:
            category = require(
                out, "category", "", f"one of {', '.join(config.categories.choices)}"
            )
            if config.categories.allow_multiple:
                _check_picks(config.categories, category, "category")
            elif not isinstance(category, str) or category not in config.categories.options:
                shown = ", ".join(config.categories.choices)
                fail("category", f"must be one of {shown}, got {describe(category)}")
        if config.taxonomies:
            answers = expect_object(
                require(out, "taxonomies", "", "an object keyed by taxonomy"), "taxonomies"
            )
            for name in answers:
                if name not in config.taxonomies:
                    fail(
                        at("taxonomies", name),
                        f"is not a taxonomy of this task ({', '.join(config.taxonomies)})",
                    )
            for name, question in config.taxonomies.items():
                path = at("taxonomies", name)
                value = require(answers, name, "taxonomies", "the chosen values")
                answers[name] = _check_picks(
                    question, [value] if isinstance(value, str) else value, path
                )
        return out

    def synthetic_response(self, params: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        config = _parse(params)
        response: dict[str, Any] = {}
        if config.categories is not None:
            picks = _fake_picks(config.categories, rng)
            response["category"] = picks if config.categories.allow_multiple else picks[0]
        if config.taxonomies:
            response["taxonomies"] = {
                name: _fake_picks(q, rng) for name, q in config.taxonomies.items()
            }
        return response


register(Categorization())
