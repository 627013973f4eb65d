"""lake: batches, quality, personal-data flags, sources, health; field format, aliases, rules

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shuzhi.core.dialect

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lake_health",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("published", sa.Integer(), nullable=False),
        sa.Column("current", sa.Integer(), nullable=False),
        sa.Column("lights", shuzhi.core.dialect.JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lake_health")),
        sa.UniqueConstraint("day", "scope", "key", name=op.f("uq_lake_health_day_scope_key")),
    )
    with op.batch_alter_table("lake_health", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lake_health_day"), ["day"], unique=False)

    op.create_table(
        "lake_source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("options", shuzhi.core.dialect.JSONType, nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("schedule", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", shuzhi.core.dialect.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", shuzhi.core.dialect.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_batch_id", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_at", shuzhi.core.dialect.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", shuzhi.core.dialect.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["catalog_resource.id"],
            name=op.f("fk_lake_source_resource_id_catalog_resource"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lake_source")),
    )
    with op.batch_alter_table("lake_source", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lake_source_next_run_at"), ["next_run_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_lake_source_resource_id"), ["resource_id"], unique=False
        )

    op.create_table(
        "lake_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("connector", sa.String(length=20), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_loaded", sa.BigInteger(), nullable=False),
        sa.Column("rows_quarantined", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("rule_counts", shuzhi.core.dialect.JSONType, nullable=False),
        sa.Column("mapping", shuzhi.core.dialect.JSONType, nullable=False),
        sa.Column("snapshot", sa.String(length=40), nullable=True),
        sa.Column("snapshot_rows", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("runner", sa.String(length=100), nullable=False),
        sa.Column("started_at", shuzhi.core.dialect.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", shuzhi.core.dialect.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["catalog_resource.id"],
            name=op.f("fk_lake_batch_resource_id_catalog_resource"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["lake_source.id"],
            name=op.f("fk_lake_batch_source_id_lake_source"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lake_batch")),
    )
    with op.batch_alter_table("lake_batch", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lake_batch_fingerprint"), ["fingerprint"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_lake_batch_resource_id"), ["resource_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_lake_batch_source_id"), ["source_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lake_batch_state"), ["state"], unique=False)

    op.create_table(
        "lake_pii_flag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("example", sa.String(length=80), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("reviewed", sa.Boolean(), nullable=False),
        sa.Column("reviewed_by", sa.String(length=64), nullable=True),
        sa.Column("flagged_at", shuzhi.core.dialect.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["lake_batch.id"],
            name=op.f("fk_lake_pii_flag_batch_id_lake_batch"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["catalog_resource.id"],
            name=op.f("fk_lake_pii_flag_resource_id_catalog_resource"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lake_pii_flag")),
        sa.UniqueConstraint(
            "resource_id", "field", name=op.f("uq_lake_pii_flag_resource_id_field")
        ),
    )
    with op.batch_alter_table("lake_pii_flag", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lake_pii_flag_resource_id"), ["resource_id"], unique=False
        )

    op.create_table(
        "lake_quality",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("measured_at", shuzhi.core.dialect.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("completeness", sa.Float(), nullable=False),
        sa.Column("field_completeness", shuzhi.core.dialect.JSONType, nullable=False),
        sa.Column("validity", sa.Float(), nullable=False),
        sa.Column("uniqueness", sa.Float(), nullable=False),
        sa.Column("volume_change", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["lake_batch.id"],
            name=op.f("fk_lake_quality_batch_id_lake_batch"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["catalog_resource.id"],
            name=op.f("fk_lake_quality_resource_id_catalog_resource"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lake_quality")),
    )
    with op.batch_alter_table("lake_quality", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lake_quality_resource_id"), ["resource_id"], unique=False
        )

    with op.batch_alter_table("catalog_field", schema=None) as batch_op:
        batch_op.add_column(sa.Column("format", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column("aliases", shuzhi.core.dialect.JSONType, nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("rules", shuzhi.core.dialect.JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalog_field", schema=None) as batch_op:
        batch_op.drop_column("rules")
        batch_op.drop_column("aliases")
        batch_op.drop_column("format")

    with op.batch_alter_table("lake_quality", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lake_quality_resource_id"))

    op.drop_table("lake_quality")
    with op.batch_alter_table("lake_pii_flag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lake_pii_flag_resource_id"))

    op.drop_table("lake_pii_flag")
    with op.batch_alter_table("lake_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lake_batch_state"))
        batch_op.drop_index(batch_op.f("ix_lake_batch_source_id"))
        batch_op.drop_index(batch_op.f("ix_lake_batch_resource_id"))
        batch_op.drop_index(batch_op.f("ix_lake_batch_fingerprint"))

    op.drop_table("lake_batch")
    with op.batch_alter_table("lake_source", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lake_source_resource_id"))
        batch_op.drop_index(batch_op.f("ix_lake_source_next_run_at"))

    op.drop_table("lake_source")
    with op.batch_alter_table("lake_health", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lake_health_day"))

    op.drop_table("lake_health")
