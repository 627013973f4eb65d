from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shuzhi.catalog.models import Resource
from shuzhi.core.db import Base
from shuzhi.core.dialect import JSONType, UTCDateTime
from shuzhi.core.stamps import ACCESS
from shuzhi.gateway.rules import APPLICATION, GRANT
from shuzhi.orgs.models import Department


class Consumer(Base):
    """An application system (应用系统) of a department that calls the gateway."""

    __tablename__ = "gateway_consumer"
    __stamp__ = ACCESS

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[str] = mapped_column(String(120), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    department: Mapped[Department] = relationship(lazy="joined")


class Credential(Base):
    """An access key. The secret is derived from the platform key and a salt kept here,
    so this table alone cannot give it back; it is shown once, when made."""

    __tablename__ = "gateway_credential"
    __stamp__ = ACCESS

    id: Mapped[int] = mapped_column(primary_key=True)
    consumer_id: Mapped[int] = mapped_column(
        ForeignKey("gateway_consumer.id", ondelete="CASCADE"), index=True
    )
    access_key: Mapped[str] = mapped_column(String(40), unique=True)
    salt: Mapped[str] = mapped_column(String(64), info={"secret": True})
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # set when the credential is rotated: the old secret works until then
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    consumer: Mapped[Consumer] = relationship(lazy="joined")


@APPLICATION.guard
class Application(Base):
    """A consumer's request for a resource: the fields, rights, purpose, legal basis,
    region scope and validity it asks for."""

    __tablename__ = "gateway_application"

    id: Mapped[int] = mapped_column(primary_key=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("gateway_consumer.id"), index=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("catalog_resource.id"), index=True)
    fields: Mapped[list[str]] = mapped_column(JSONType, default=list)
    clear_fields: Mapped[list[str]] = mapped_column(JSONType, default=list)
    rights: Mapped[list[str]] = mapped_column(JSONType, default=list)
    purpose_code: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(20), index=True, default=APPLICATION.initial)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_by: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)

    consumer: Mapped[Consumer] = relationship(lazy="joined")
    resource: Mapped[Resource] = relationship(lazy="joined")


@GRANT.guard
class Grant(Base):
    """What a consumer may do with a resource: fields each with its masking mode, rights,
    region scope, validity, and limits."""

    __tablename__ = "gateway_grant"
    __stamp__ = ACCESS
    __table_args__ = (Index("ix_gateway_grant_lookup", "consumer_id", "resource_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("gateway_application.id"))
    consumer_id: Mapped[int] = mapped_column(ForeignKey("gateway_consumer.id"))
    resource_id: Mapped[int] = mapped_column(ForeignKey("catalog_resource.id"), index=True)
    # field name -> clear | masked | token | hidden
    fields: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    rights: Mapped[list[str]] = mapped_column(JSONType, default=list)
    purpose_code: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    requests_per_second: Mapped[int] = mapped_column(Integer)
    rows_per_day: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), index=True, default=GRANT.initial)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    consumer: Mapped[Consumer] = relationship(lazy="joined")
    resource: Mapped[Resource] = relationship(lazy="joined")


class Service(Base):
    """A department's service (业务协同) behind the gateway: a catalog resource that
    consumers call through ``/gateway/v1/services/{code}/…`` with a ``call`` grant."""

    __tablename__ = "gateway_service"

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_resource.id", ondelete="CASCADE"), unique=True
    )
    base_url: Mapped[str] = mapped_column(String(500))
    methods: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # path patterns under the base URL; * stands for one segment, ** for the rest
    paths: Mapped[list[str]] = mapped_column(JSONType, default=list)
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    max_response_kb: Mapped[int] = mapped_column(Integer)
    openapi: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    registered_by: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())

    resource: Mapped[Resource] = relationship(lazy="joined")


class Nonce(Base):
    """Nonces seen within the skew window, so that a captured call cannot be replayed."""

    __tablename__ = "gateway_nonce"
    __table_args__ = (UniqueConstraint("access_key", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    access_key: Mapped[str] = mapped_column(String(40))
    nonce: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Usage(Base):
    """Counters of a grant per window (``s:<epoch second>`` or ``d:<YYYY-MM-DD>``), shared
    by every server worker through the metadata store."""

    __tablename__ = "gateway_usage"

    grant_id: Mapped[int] = mapped_column(
        ForeignKey("gateway_grant.id", ondelete="CASCADE"), primary_key=True
    )
    window: Mapped[str] = mapped_column(String(24), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(Integer, default=0)


class AccessLog(Base):
    """Every gateway call, allowed or refused, in a hash chain: ``hash`` covers the entry
    and the ``prev_hash`` of the one before it, so a changed or removed entry shows."""

    __tablename__ = "gateway_access_log"
    __table_args__ = (
        Index("ix_gateway_access_log_consumer_at", "consumer_code", "at"),
        Index("ix_gateway_access_log_target_at", "target", "at"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    consumer_code: Mapped[str | None] = mapped_column(String(64))
    access_key: Mapped[str | None] = mapped_column(String(40))
    end_user: Mapped[str | None] = mapped_column(String(120))
    purpose: Mapped[str | None] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(20))
    target: Mapped[str | None] = mapped_column(String(64))
    grant_id: Mapped[int | None] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    fields: Mapped[list[str]] = mapped_column(JSONType, default=list)
    masking: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    # a keyed hash of the values looked up (filters, verified attributes): distinct ones
    # can be counted without the log holding the values
    lookup: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(40))
    latency_ms: Mapped[int] = mapped_column(Integer)
    response_sha256: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ChainHead(Base):
    """The last entry of the access log. Appending locks this one row, which orders every
    append across server workers."""

    __tablename__ = "gateway_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))
