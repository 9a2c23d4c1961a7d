"""credential changes signalled by the database: triggers on every credential table

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 11:00:00

Every UPDATE or DELETE of a row that authentication reads (``api_keys``, ``login_sessions``,
``users``, ``memberships``) tells the serving processes to drop their cached credentials, by
whatever means it was made (see ``steelyard.accounts.auth_epoch``): on SQLite it increments
``auth_epoch.n``, on PostgreSQL it sends ``NOTIFY steelyard_auth``.

A later migration that rebuilds one of these tables on SQLite (``batch_alter_table`` copies
the table and drops the old one, and its triggers with it) must create its triggers again;
``tests/accounts/test_auth_epoch_signal.py`` fails if any is missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("api_keys", "login_sessions", "users", "memberships")


def upgrade() -> None:
    op.create_table(
        "auth_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_epoch")),
    )
    op.execute("INSERT INTO auth_epoch (id, n) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION steelyard_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('steelyard_auth', '');
                RETURN NULL;
            END
            $$
            """
        )
        for table in TABLES:
            # Per statement: a bulk revocation sends one notification, not one per row.
            op.execute(
                f"CREATE TRIGGER auth_epoch_{table} AFTER UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION steelyard_auth_changed()"
            )
        return
    for table in TABLES:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER auth_epoch_{table}_{action.lower()} AFTER {action} ON {table} "
                "BEGIN UPDATE auth_epoch SET n = n + 1 WHERE id = 1; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER auth_epoch_{table} ON {table}")
        op.execute("DROP FUNCTION steelyard_auth_changed()")
    else:
        for table in TABLES:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER auth_epoch_{table}_{action}")
    op.drop_table("auth_epoch")
