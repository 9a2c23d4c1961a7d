"""The task-type registry: name (or legacy alias) → spec."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from steelyard.errors import NotEnabled
from steelyard.tasktypes.base import TaskTypeSpec

_REGISTRY: dict[str, TaskTypeSpec] = {}


def register(spec: TaskTypeSpec) -> TaskTypeSpec:
    for key in (spec.name, *spec.aliases):
        _REGISTRY[key] = spec
    return spec


@contextmanager
def registered(spec: TaskTypeSpec) -> Iterator[TaskTypeSpec]:
    """``spec`` registered for the length of the block only: a seam for tests, which register
    a probe type (one that records where it checks) without leaving it to the tests after."""
    _load_builtin()
    keys = (spec.name, *spec.aliases)
    taken = [key for key in keys if key in _REGISTRY]
    if taken:
        raise ValueError(f"task type names already registered: {', '.join(taken)}")
    register(spec)
    try:
        yield spec
    finally:
        for key in keys:
            _REGISTRY.pop(key, None)


def get(name: str) -> TaskTypeSpec:
    """The spec for a type name or alias; ``NotEnabled`` (402 on the Scale API) otherwise."""
    _load_builtin()
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise NotEnabled(
            f"Task type '{name}' is not enabled for your account on this Steelyard server.",
            field="type",
        ) from None


def names() -> list[str]:
    _load_builtin()
    return sorted({spec.name for spec in _REGISTRY.values()})


_loaded = False


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    # Importing a type module registers it.
    from steelyard.tasktypes import (  # noqa: F401
        categorization,
        comparison,
        imageannotation,
        namedentityrecognition,
        textcollection,
    )
