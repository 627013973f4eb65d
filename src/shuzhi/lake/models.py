from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shuzhi.catalog.models import Resource
from shuzhi.core.db import Base
from shuzhi.core.dialect import JSONType, UTCDateTime


class Batch(Base):
    """One load of one resource: what came in, what was kept, what was refused."""

    __tablename__ = "lake_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_resource.id", ondelete="CASCADE"), index=True
    )
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("lake_source.id", ondelete="SET NULL"), index=True, default=None
    )
    source: Mapped[str] = mapped_column(Text)
    connector: Mapped[str] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), index=True)
    # the input's fingerprint (content, mode, mapping): the same input is loaded once
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_loaded: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_quarantined: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    rule_counts: Mapped[dict] = mapped_column(JSONType, default=dict)
    mapping: Mapped[dict] = mapped_column(JSONType, default=dict)
    # what this batch's scan found in fields declared not personal: field, kind, share,
    # masked example (the resource's flags follow the latest scan; these stay as found)
    pii_findings: Mapped[list] = mapped_column(JSONType, default=list)
    snapshot: Mapped[str | None] = mapped_column(String(40), default=None)
    snapshot_rows: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    actor: Mapped[str] = mapped_column(String(64))
    # host:pid of the process running it, so that recovery on one host never fails a
    # batch another host is still running (a lock on shared storage may not be shared)
    runner: Mapped[str] = mapped_column(String(100), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    resource: Mapped[Resource] = relationship(lazy="joined")


class Quality(Base):
    """The quality of a resource's snapshot as one batch left it; kept for the trend."""

    __tablename__ = "lake_quality"

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_resource.id", ondelete="CASCADE"), index=True
    )
    batch_id: Mapped[int] = mapped_column(ForeignKey("lake_batch.id", ondelete="CASCADE"))
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rows: Mapped[int] = mapped_column(BigInteger)
    completeness: Mapped[float] = mapped_column(Float)
    field_completeness: Mapped[dict] = mapped_column(JSONType, default=dict)
    validity: Mapped[float] = mapped_column(Float)
    uniqueness: Mapped[float] = mapped_column(Float)
    volume_change: Mapped[float | None] = mapped_column(Float, default=None)


class PiiFlag(Base):
    """A field declared not personal whose values look personal, until someone decides."""

    __tablename__ = "lake_pii_flag"
    __table_args__ = (UniqueConstraint("resource_id", "field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_resource.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(20))
    share: Mapped[float] = mapped_column(Float)
    example: Mapped[str] = mapped_column(String(80))
    batch_id: Mapped[int] = mapped_column(ForeignKey("lake_batch.id", ondelete="CASCADE"))
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    flagged_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Source(Base):
    """Where a resource is pulled from, and when."""

    __tablename__ = "lake_source"

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_resource.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    location: Mapped[str] = mapped_column(Text)
    options: Mapped[dict] = mapped_column(JSONType, default=dict)
    mode: Mapped[str] = mapped_column(String(20))
    schedule: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_batch_id: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # a worker claims a run by setting these in one UPDATE; a claim older than the lease
    # belongs to a worker that died and may be taken over
    claimed_by: Mapped[str | None] = mapped_column(String(100), default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    resource: Mapped[Resource] = relationship(lazy="joined")


class Health(Base):
    """One day's aggregation roll-up for a scope (all, a provider or a system)."""

    __tablename__ = "lake_health"
    __table_args__ = (UniqueConstraint("day", "scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[str] = mapped_column(String(10), index=True)
    scope: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(64))
    published: Mapped[int] = mapped_column(Integer)
    current: Mapped[int] = mapped_column(Integer)
    lights: Mapped[dict] = mapped_column(JSONType, default=dict)
