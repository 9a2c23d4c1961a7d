"""imageannotation: synthetic responses are valid for any params (hypothesis)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from .test_imageannotation import IMAGE, SPEC, params

# -- synthetic -----------------------------------------------------------------------------

NAMES = st.text(alphabet="abcdefghij", min_size=1, max_size=4)


@st.composite
def taxonomies(draw: st.DrawFn) -> list[Any]:
    names = draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))
    if len(names) >= 3 and draw(st.booleans()):
        return [*names[2:], {"choice": names[0], "subchoices": [names[1]], "display": "x"}]
    return names


@st.composite
def geometry_configs(draw: st.DrawFn) -> dict[str, Any]:
    kinds = draw(
        st.lists(
            st.sampled_from(["box", "polygon", "line", "point", "ellipse"]), min_size=1, unique=True
        )
    )
    configs: dict[str, Any] = {}
    for kind in kinds:
        cfg: dict[str, Any] = {"objects_to_annotate": draw(taxonomies())}
        if kind == "box":
            for key in ("min_width", "min_height"):
                if draw(st.booleans()):
                    cfg[key] = draw(st.one_of(st.integers(0, 50), st.floats(0, 50)))
            for key in ("can_rotate", "integer_pixels"):
                if draw(st.booleans()):
                    cfg[key] = draw(st.booleans())
        elif kind in ("polygon", "line"):
            floor = 3 if kind == "polygon" else 2
            low = draw(st.integers(floor, floor + 4))
            if draw(st.booleans()):
                cfg["min_vertices"] = low
            if draw(st.booleans()):
                cfg["max_vertices"] = draw(st.integers(low, low + 4))
        configs[kind] = cfg
    return configs


@st.composite
def attribute_defs(draw: st.DrawFn, labels: list[str]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for i in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["category", "number", "angle", "text", "linear_scale"]))
        defn: dict[str, Any] = {"type": kind, "description": "q"}
        if kind == "category":
            defn["choices"] = draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))
            defn["allow_multiple"] = draw(st.booleans())
        if kind in ("number", "linear_scale"):
            low = draw(st.integers(-10, 10))
            defn.update(min=low, max=low + draw(st.integers(0, 20)))
            if draw(st.booleans()):
                defn["step"] = draw(st.sampled_from([0.1, 0.5, 2, 3]))
            if kind == "number" and draw(st.booleans()):
                del defn[draw(st.sampled_from(["min", "max"]))]
        conditions: dict[str, Any] = {}
        if draw(st.booleans()):
            conditions["label_condition"] = {
                "label": draw(st.lists(st.sampled_from(labels), min_size=1, max_size=2))
            }
        categories = [(n, d) for n, d in defs.items() if d["type"] == "category"]
        depend = draw(st.booleans())
        if categories and depend:
            other, other_def = draw(st.sampled_from(categories))
            conditions["attribute_conditions"] = [
                {other: draw(st.sampled_from(other_def["choices"]))}
            ]
        if conditions:
            defn["conditions"] = conditions
        defn["required"] = draw(st.booleans())
        defs[f"attr{i}"] = defn
    return defs


@st.composite
def image_params(draw: st.DrawFn) -> dict[str, Any]:
    geometries = draw(geometry_configs())
    labels = sorted(
        {
            item if isinstance(item, str) else item["choice"]
            for g in geometries.values()
            for item in g["objects_to_annotate"]
        }
    )
    return {
        "attachment": IMAGE,
        "geometries": geometries,
        "annotation_attributes": draw(attribute_defs(labels)),
    }


@settings(max_examples=150, deadline=None)
@given(image_params(), st.integers(0, 2**32))
def test_synthetic_response_is_always_valid(sent: dict[str, Any], seed: int) -> None:
    p = SPEC.validate_params(sent)
    for offset in range(5):
        response = SPEC.synthetic_response(p, random.Random(seed + offset))
        assert 1 <= len(response["annotations"]) <= 3
        assert SPEC.validate_response(p, response) == response


def test_synthetic_response_is_deterministic_per_seed() -> None:
    p = SPEC.validate_params(params())
    assert SPEC.synthetic_response(p, random.Random(7)) == SPEC.synthetic_response(
        p, random.Random(7)
    )
