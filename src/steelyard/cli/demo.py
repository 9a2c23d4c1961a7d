"""The demo organization ``make run`` seeds; idempotent, and it prints the same keys each time.

Keys and passwords are stored hashed, so the demo's plain keys and its worker's password are
kept in a private file under the data dir to print them again on the next run. The password is
generated per installation rather than written here: a demo left listening on a network must not
open to a password anyone can read in the source.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from steelyard.accounts import passwords
from steelyard.accounts import service as accounts
from steelyard.accounts.models import Organization
from steelyard.accounts.schemas import Actor
from steelyard.clock import SYSTEM_CLOCK
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.projects import service as projects
from steelyard.tasks import create as tasks

DEMO_ORG = "demo"
WORKER_EMAIL = "worker@demo.steelyard.local"
DEMO_PROJECT = "demo-sentiment"
CATEGORIES = ["positive", "negative", "neutral"]
SENTENCES = [
    "The delivery was fast and the packaging was lovely.",
    "It broke after two days. Never again.",
    "Does what it says. Nothing more, nothing less.",
    "Absolutely the best purchase I have made this year!",
    "Customer service never answered my emails.",
]


def seed_demo(db: Database, settings: Settings) -> dict[str, Any]:
    keys_file = settings.data_dir / "demo-keys.json"
    # Hashed before the write transaction (hashing is slow on purpose), used if the worker is new.
    worker_password = secrets.token_urlsafe(15)  # 20 characters
    worker_hash = passwords.new_password_hash(worker_password, email=WORKER_EMAIL)
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
        if not any(o == org.id for o, _, _ in _memberships(session, WORKER_EMAIL)):
            existing = accounts.find_user(session, WORKER_EMAIL) is not None
            if not existing:  # an existing account keeps its password
                stored["worker_password"] = worker_password
            accounts.create_user(
                session,
                org_id=org.id,
                email=WORKER_EMAIL,
                password_hash=worker_hash,
                role="annotator",
                existing=existing,
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
                        "categories": CATEGORIES,
                        "unique_id": f"demo-{i}",
                    },
                    now,
                )
        callback_key = org.callback_auth_key
    # Written once the keys and the worker are committed, so the file never names a key that
    # a failed seed rolled back.
    fd = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # private from the start
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(stored))
    keys_file.chmod(0o600)  # a file left by an older seed may have been created wider
    return {
        "org": DEMO_ORG,
        "org_id": stored["org_id"],
        "live_api_key": stored["live_api_key"],
        "test_api_key": stored["test_api_key"],
        "callback_auth_key": callback_key,
        "worker_email": WORKER_EMAIL,
        # None when the worker was created by an older seed that did not keep its password
        "worker_password": stored.get("worker_password"),
        "project": DEMO_PROJECT,
        "categories": CATEGORIES,
    }


def _memberships(session: Session, email: str) -> list[tuple[str, str, str]]:
    user = accounts.find_user(session, email)
    return accounts.memberships_of(session, user.id) if user is not None else []


def base_url(host: str, port: int) -> str:
    """The address to give people for a server listening on ``host``:``port``."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"  # listening everywhere: this machine's loopback reaches it
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def banner(info: dict[str, Any], *, host: str, port: int) -> str:
    url = base_url(host, port)
    password = info["worker_password"] or "(chosen by an earlier seed; not stored)"
    return "\n".join(
        [
            "",
            f"Steelyard demo organization '{info['org']}' ready:",
            f"  live API key : {info['live_api_key']}",
            f"  test API key : {info['test_api_key']}",
            f"  project      : {info['project']} (categorization: {', '.join(info['categories'])})",
            f"  worker login : {info['worker_email']} / {password}",
            f"  label at     : {url}/ (sign in with the worker login)",
            f'  connect      : scaleapi.ScaleClient(KEY, api_instance_url="{url}/v1")',
            f"  reference    : {url}/docs",
            "",
        ]
    )
