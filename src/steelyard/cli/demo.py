"""The demo organization ``make run`` seeds; idempotent, and it prints the same keys each time.

Keys are stored hashed, so the demo's plain keys are kept in a private file under the data dir
to print them again on the next run.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from steelyard.accounts import service as accounts
from steelyard.accounts.models import Organization
from steelyard.accounts.schemas import Actor
from steelyard.clock import SYSTEM_CLOCK
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.projects import service as projects
from steelyard.tasks import service as tasks

DEMO_ORG = "demo"
WORKER_EMAIL = "worker@demo.steelyard.local"
WORKER_PASSWORD = "demo-worker-pass"
DEMO_PROJECT = "demo-sentiment"
SENTENCES = [
    "The delivery was fast and the packaging was lovely.",
    "It broke after two days. Never again.",
    "Does what it says. Nothing more, nothing less.",
    "Absolutely the best purchase I have made this year!",
    "Customer service never answered my emails.",
]


def seed_demo(db: Database, settings: Settings) -> dict[str, Any]:
    keys_file = settings.data_dir / "demo-keys.json"
    with db.unit_of_work() as session:
        org = session.scalar(select(Organization).where(Organization.name == DEMO_ORG))
        stored = json.loads(keys_file.read_text()) if keys_file.exists() else None
        if org is None:
            created = accounts.create_organization(session, DEMO_ORG)
            org = created.org
            stored = {"live_api_key": created.live_api_key, "test_api_key": created.test_api_key}
        elif stored is None or stored.get("org_id") != org.id:
            stored = {
                "live_api_key": accounts.create_api_key(session, org.id, is_test=False),
                "test_api_key": accounts.create_api_key(session, org.id, is_test=True),
            }
        stored["org_id"] = org.id
        keys_file.write_text(json.dumps(stored))
        keys_file.chmod(0o600)
        if not any(t.email == WORKER_EMAIL for t in accounts.list_team(session, org.id)):
            accounts.create_user(
                session,
                org_id=org.id,
                email=WORKER_EMAIL,
                password=WORKER_PASSWORD,
                role="annotator",
            )
        actor = Actor(org_id=org.id, is_test=False, kind="api_key", role="admin")
        now = SYSTEM_CLOCK.now()
        if not any(p.name == DEMO_PROJECT for p in projects.list_projects(session, actor)):
            projects.create_project(
                session,
                actor,
                {
                    "name": DEMO_PROJECT,
                    "type": "categorization",
                    "params": {"instruction": "Is this review positive, negative or neutral?"},
                },
                now,
            )
            for i, text in enumerate(SENTENCES):
                tasks.create_task(
                    session,
                    actor,
                    "categorization",
                    {
                        "project": DEMO_PROJECT,
                        "attachment": text,
                        "attachment_type": "text",
                        "categories": ["positive", "negative", "neutral"],
                        "unique_id": f"demo-{i}",
                    },
                    now,
                )
        callback_key = org.callback_auth_key
    return {
        "org": DEMO_ORG,
        "org_id": stored["org_id"],
        "live_api_key": stored["live_api_key"],
        "test_api_key": stored["test_api_key"],
        "callback_auth_key": callback_key,
        "worker_email": WORKER_EMAIL,
        "worker_password": WORKER_PASSWORD,
        "project": DEMO_PROJECT,
    }
