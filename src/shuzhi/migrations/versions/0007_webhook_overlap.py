"""webhook_overlap: a rotated webhook secret keeps signing beside the new one for a while

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shuzhi.core.dialect

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notify_webhook", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_salt", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "previous_until", shuzhi.core.dialect.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("notify_webhook", schema=None) as batch_op:
        batch_op.drop_column("previous_until")
        batch_op.drop_column("previous_salt")
