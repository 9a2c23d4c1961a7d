from collections.abc import Iterator

import pytest

from tests.callbacks.fakedns import FakeDns, fake_dns
from tests.jobs.helpers import (  # noqa: F401 - fixtures
    clock,
    fresh_db,
    job_settings,
    migrated_template,
    new_org,
)


@pytest.fixture
def dns() -> Iterator[FakeDns]:
    """The resolver seam for this test; the DNS cache starts (and ends) empty."""
    with fake_dns() as fake:
        yield fake
