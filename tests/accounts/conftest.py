"""Fixtures for the accounts tests (the shared ones live in ``tests/conftest.py``)."""

from __future__ import annotations

from tests.api.conftest import other_org

__all__ = ["other_org"]
