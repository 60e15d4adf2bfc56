"""Initial store: runs, settlement results, alerts, versions, subscriptions, deliveries, audit.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("rain_path", sa.Text, nullable=False),
        sa.Column("out_dir", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("error", sa.Text),
        sa.Column("synthetic", sa.Boolean),
        sa.Column("summary", sa.JSON),
    )
    op.create_table(
        "settlement_results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("settlement_id", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("municipality_id", sa.String(64), nullable=False, index=True),
        sa.Column("department", sa.Text, nullable=False),
        sa.Column("level", sa.String(16), nullable=False, index=True),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.UniqueConstraint("run_id", "settlement_id"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("municipality_id", sa.String(64), nullable=False, index=True),
        sa.Column("in_force", sa.Boolean, nullable=False, index=True),
        sa.Column("level", sa.String(16), nullable=False),
    )
    op.create_table(
        "alert_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=False,
                  index=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id")),
        sa.Column("identifier", sa.String(128), nullable=False, unique=True),
        sa.Column("msg_type", sa.String(8), nullable=False),
        sa.Column("level", sa.String(16)),
        sa.Column("sent", TS, nullable=False),
        sa.Column("cap_xml", sa.Text, nullable=False),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("municipality_id", sa.String(64), nullable=False, index=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("alert_version_id", sa.Integer, sa.ForeignKey("alert_versions.id"),
                  nullable=False, index=True),
        sa.Column("subscription_id", sa.Integer, sa.ForeignKey("subscriptions.id"),
                  nullable=False, index=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_at", TS),
        sa.UniqueConstraint("alert_version_id", "subscription_id"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TS, nullable=False, index=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_log", "deliveries", "subscriptions", "alert_versions", "alerts",
                  "settlement_results", "runs"):
        op.drop_table(table)
