"""Supervised runs (lease, attempts, the stored request, progress), key revocation times,
webhook secrets sealed at rest, what each alert message said (for the update rule), and
deleted subscriptions kept for the delivery log.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("request", sa.JSON()))
        runs.add_column(sa.Column("worker", sa.String(64)))
        runs.add_column(sa.Column("lease_until", sa.DateTime(timezone=True)))
        runs.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        runs.add_column(sa.Column("progress", sa.JSON()))
    with op.batch_alter_table("api_keys") as keys:
        keys.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("alert_versions") as versions:
        versions.add_column(sa.Column("facts", sa.JSON()))
    with op.batch_alter_table("subscriptions") as subscriptions:
        subscriptions.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as subscriptions:
        subscriptions.drop_column("deleted_at")
    with op.batch_alter_table("alert_versions") as versions:
        versions.drop_column("facts")
    with op.batch_alter_table("api_keys") as keys:
        keys.drop_column("revoked_at")
    with op.batch_alter_table("runs") as runs:
        for column in ("progress", "attempts", "lease_until", "worker", "request"):
            runs.drop_column(column)
