"""Validation grows linearly with the input: a response of n answers against a list of n
choices must not cost n² (a scan of the choices per answer made 50,000 boxes against 100,000
labels take 25 s of CPU, on whichever thread validated it).

Each case is timed at n and at 4n (per call, repeated for at least 50 ms, best of five): linear
work takes about 4 times as long, quadratic work 16 times. The bound of 8 leaves room for a
noisy machine.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import pytest

from steelyard.tasktypes import registry

N = 3_000


def _seconds_per_call(run: Callable[[], Any]) -> float:
    best = float("inf")
    # The collector's full passes grow with the heap, not with the work measured here.
    gc.disable()
    try:
        for _ in range(5):
            calls, started = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - started) < 0.05 or not calls:
                run()
                calls += 1
            best = min(best, elapsed / calls)
    finally:
        gc.enable()
    return best


def _boxes(n: int) -> Callable[[], Any]:
    labels = [f"label-{i}" for i in range(n)]
    spec = registry.get("imageannotation")
    params = spec.validate_params(
        {
            "attachment": "https://example.com/a.png",
            "geometries": {"box": {"objects_to_annotate": labels}},
            "annotation_attributes": {
                "colour": {"type": "category", "description": "Colour", "choices": labels}
            },
        }
    )
    box = {"type": "box", "left": 1, "top": 1, "width": 5, "height": 5}
    response = {
        "annotations": [
            {**box, "label": labels[-1 - i], "attributes": {"colour": labels[-1 - i]}}
            for i in range(n)
        ]
    }
    return lambda: spec.validate_response(params, response)


def _taxonomy_picks(n: int) -> Callable[[], Any]:
    choices = [f"choice-{i}" for i in range(n)]
    spec = registry.get("categorization")
    params = {
        "attachment": "some text",
        "taxonomies": {"t": {"type": "category", "choices": choices, "allow_multiple": True}},
    }
    response = {"taxonomies": {"t": list(reversed(choices))}}
    return lambda: spec.validate_response(params, response)


def _spans(n: int) -> Callable[[], Any]:
    labels = [f"label-{i}" for i in range(n)]
    spec = registry.get("namedentityrecognition")
    params = {"text": "x" * n, "labels": labels}
    response = {
        "annotations": [{"start": i, "end": i + 1, "label": labels[-1 - i]} for i in range(n)]
    }
    return lambda: spec.validate_response(params, response)


def _form_choices(n: int) -> Callable[[], Any]:
    values = [f"value-{i}" for i in range(n)]
    spec = registry.get("textcollection")
    field = {
        "type": "category",
        "field_id": "pick",
        "title": "Pick",
        "choices": values,
        "min_choices": 1,
        "max_choices": n,
    }
    params = {"attachments": [{"type": "text", "content": "hello"}], "fields": [field]}
    response = {"annotations": {"pick": list(reversed(values))}}
    return lambda: spec.validate_response(params, response)


@pytest.mark.parametrize("case", [_boxes, _taxonomy_picks, _spans, _form_choices])
def test_validating_a_response_is_linear_in_its_size(
    case: Callable[[int], Callable[[], Any]],
) -> None:
    small = _seconds_per_call(case(N))
    large = _seconds_per_call(case(4 * N))
    assert large < 8 * small, f"{case.__name__}: {small:.3f} s at {N}, {large:.3f} s at {4 * N}"
