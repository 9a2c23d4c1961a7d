"""Shared assertions for the task-type tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from steelyard.errors import ValidationError


@contextmanager
def invalid(field: str | None) -> Iterator[pytest.ExceptionInfo[ValidationError]]:
    """Expect a ValidationError naming ``field``, in ``.field`` and in the message."""
    with pytest.raises(ValidationError) as info:
        yield info
    assert info.value.field == field, info.value.message
    if field is not None:
        assert info.value.message.startswith(field), info.value.message
