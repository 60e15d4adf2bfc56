"""Collective centres: site profiles and their imports, site managers' keys bound to sites,
occupancy reports, and warehouse stock.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_imports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("sites", sa.Integer(), nullable=False),
        sa.Column("capacity_source", sa.String(16), nullable=False),
    )
    op.create_table(
        "sites",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("municipality_id", sa.String(64), nullable=False, index=True),
        sa.Column("department_code", sa.String(8), nullable=False, index=True),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("capacity_source", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, index=True),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("import_id", sa.Integer(), sa.ForeignKey("site_imports.id")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "api_key_sites",
        sa.Column("key_id", sa.Integer(), sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.site_id"), primary_key=True),
    )
    op.create_table(
        "site_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.site_id"), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author_key_id", sa.Integer(), sa.ForeignKey("api_keys.id")),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("source_uuid", sa.String(128), unique=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("needs", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text()),
    )
    op.create_index("ix_site_reports_site_latest", "site_reports",
                    ["site_id", "reported_at", "id"])
    op.create_table(
        "warehouse_stock",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("warehouse_id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("item", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("lead_time_h", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("warehouse_id", "item"),
    )


def downgrade() -> None:
    op.drop_table("warehouse_stock")
    op.drop_index("ix_site_reports_site_latest", "site_reports")
    op.drop_table("site_reports")
    op.drop_table("api_key_sites")
    op.drop_table("sites")
    op.drop_table("site_imports")
