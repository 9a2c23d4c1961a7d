"""Migration 0011 carries an audit rework in flight over: a task an audit sent back before it
keeps showing its labelers the audit's comment (now read from ``tasks.rework``)."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from sqlalchemy import text

from steelyard.db.engine import Database
from steelyard.db.migrate import alembic_config


def test_a_rework_in_flight_keeps_its_comment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    db = Database(url)
    cfg = alembic_config(url)
    command.upgrade(cfg, "0010")
    now = "2026-11-30 00:00:00.000000"
    rejected = [{"audit_result": "rejected", "comments": "a dog"}]
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (id, name, callback_auth_key, created_at) "
                "VALUES ('o', 'o', 'k', :now)"
            ),
            {"now": now},
        )
        for seq, status, review, audits in (
            (1, "pending", "rejected", rejected),
            (2, "completed", "rejected", rejected),
            (3, "pending", None, []),
        ):
            conn.execute(
                text(
                    "INSERT INTO tasks (seq, task_id, org_id, is_test, type, status, params, "
                    "metadata, tags, priority, customer_review_status, customer_review_comments, "
                    "prior_responses, audits, created_at, updated_at) VALUES (:seq, :tid, 'o', "
                    "0, 'categorization', :status, '{}', '{}', '[]', 0, :review, '[]', '[]', "
                    ":audits, :now, :now)"
                ),
                {
                    "seq": seq,
                    "tid": f"t{seq}",
                    "status": status,
                    "review": review,
                    "audits": json.dumps(audits),
                    "now": now,
                },
            )
    command.upgrade(cfg, "0011")
    with db.engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT seq, rework FROM tasks ORDER BY seq")).all())
    db.dispose()
    assert json.loads(rows[1]) == {"audit_comment": "a dog"}
    assert rows[2] is None and rows[3] is None
