"""batch_pii_findings: a batch keeps what its personal-data scan found

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shuzhi.core.dialect

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lake_batch", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "pii_findings",
                shuzhi.core.dialect._JSON(),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("lake_batch", schema=None) as batch_op:
        batch_op.drop_column("pii_findings")
