"""Fixtures for the API tests (the shared ones live in ``tests/conftest.py``)."""

from __future__ import annotations

import uuid

import pytest

from steelyard.accounts import service as accounts
from steelyard.db.engine import Database
from tests.conftest import Org


@pytest.fixture
def other_org(db: Database) -> Org:
    """A second organization, to prove nothing crosses between tenants."""
    with db.unit_of_work() as session:
        created = accounts.create_organization(session, f"other-{uuid.uuid4().hex[:10]}")
        return Org(
            name=created.org.name,
            org_id=created.org.id,
            live_key=created.live_api_key,
            test_key=created.test_api_key,
            callback_auth_key=created.org.callback_auth_key,
        )
