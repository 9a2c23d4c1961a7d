"""Helpers for the accounts tests: people with a password, in one or more organizations."""

from __future__ import annotations

import uuid

from steelyard.accounts import security
from steelyard.accounts import service as accounts
from steelyard.accounts.models import User
from steelyard.db.engine import Database

PASSWORD = "violet tugboat sings"


def person(db: Database, *org_ids: str, role: str = "annotator", password: str = PASSWORD) -> str:
    """A new account that is a member of each of ``org_ids``; returns its email."""
    email = f"p-{uuid.uuid4().hex[:12]}@example.com"
    hashed = security.hash_password(password)  # slow: before the transaction
    with db.unit_of_work() as session:
        if not org_ids:
            session.add(User(email=email, password_hash=hashed))
        for i, org_id in enumerate(org_ids):
            accounts.create_user(
                session,
                org_id=org_id,
                email=email,
                password_hash=hashed,
                role=role,
                existing=i > 0,
            )
    return email
