from tests.jobs.helpers import (  # noqa: F401 - fixtures
    clock,
    fresh_db,
    job_settings,
    migrated_template,
    new_org,
)
