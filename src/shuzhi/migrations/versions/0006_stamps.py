"""stamps: a counter per kind of metadata that processes keep in memory (the gateway's
access decisions)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    stamp = op.create_table(
        "stamp",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stamp")),
    )
    # random, as every later stamp is (core.stamps)
    op.bulk_insert(stamp, [{"name": "access", "value": secrets.randbits(62)}])


def downgrade() -> None:
    op.drop_table("stamp")
