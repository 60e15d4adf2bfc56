"""When each alert message expires, so that a lapsed warning is no longer in force.

Existing messages get the expiry written in their CAP XML (the first ``info/expires``).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from lxml import etree

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


def upgrade() -> None:
    op.add_column("alert_versions", sa.Column("expires", sa.DateTime(timezone=True)))
    connection = op.get_bind()
    versions = sa.table("alert_versions", sa.column("id", sa.Integer),
                        sa.column("cap_xml", sa.Text),
                        sa.column("expires", sa.DateTime(timezone=True)))
    for version_id, cap_xml in connection.execute(sa.select(versions.c.id, versions.c.cap_xml)):
        try:
            text = etree.fromstring(cap_xml.encode("utf-8")).findtext(
                f"{_CAP}info/{_CAP}expires")
        except etree.XMLSyntaxError:
            continue
        if text:
            expires = datetime.fromisoformat(text).astimezone(UTC)
            connection.execute(sa.update(versions).where(versions.c.id == version_id)
                               .values(expires=expires))


def downgrade() -> None:
    op.drop_column("alert_versions", "expires")
