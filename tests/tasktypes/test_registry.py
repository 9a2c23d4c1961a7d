from __future__ import annotations

import pytest

from steelyard.errors import NotEnabled
from steelyard.tasktypes import registry
from steelyard.tasktypes.base import TaskTypeSpec

BUILTIN = {
    "categorization": "categorical",
    "comparison": "ranking",
    "imageannotation": "boxes",
    "namedentityrecognition": "spans",
    "textcollection": "text",
}


def test_names_lists_the_builtin_types() -> None:
    assert registry.names() == sorted(BUILTIN)


@pytest.mark.parametrize(("name", "aggregator"), sorted(BUILTIN.items()))
def test_each_type_is_a_spec_with_its_aggregator(name: str, aggregator: str) -> None:
    spec = registry.get(name)
    assert isinstance(spec, TaskTypeSpec)
    assert spec.name == name
    assert spec.aggregator == aggregator


@pytest.mark.parametrize(
    "alias", ["annotation", "polygonannotation", "lineannotation", "pointannotation"]
)
def test_legacy_image_types_map_onto_imageannotation(alias: str) -> None:
    spec = registry.get(alias)
    assert spec.name == "imageannotation"
    assert alias in spec.aliases


def test_lookup_ignores_case() -> None:
    assert registry.get("ImageAnnotation").name == "imageannotation"


@pytest.mark.parametrize("name", ["lidarsegmentation", "videoannotation", "chat", "nope"])
def test_unknown_type_is_not_enabled(name: str) -> None:
    with pytest.raises(NotEnabled) as info:
        registry.get(name)
    assert info.value.field == "type"
    assert name in info.value.message
