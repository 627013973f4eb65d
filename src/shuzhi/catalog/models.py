from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shuzhi.catalog.rules import LIFECYCLE
from shuzhi.core.db import Base
from shuzhi.core.dialect import JSONType, UTCDateTime
from shuzhi.core.stamps import ACCESS
from shuzhi.orgs.models import Department


@LIFECYCLE.guard
class Resource(Base):
    __tablename__ = "catalog_resource"
    __stamp__ = ACCESS

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    provider_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    classification: Mapped[str] = mapped_column(String(20))
    format: Mapped[str] = mapped_column(String(20))
    update_cycle: Mapped[str] = mapped_column(String(20))
    system: Mapped[str] = mapped_column(String(30), index=True)
    sharing: Mapped[str] = mapped_column(String(20), index=True)
    sharing_conditions: Mapped[str] = mapped_column(Text, default="")
    open_attribute: Mapped[str] = mapped_column(String(20))
    grade: Mapped[str] = mapped_column(String(2), index=True)
    national_level: Mapped[str] = mapped_column(String(20))
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    state: Mapped[str] = mapped_column(String(20), index=True, default=LIFECYCLE.initial)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # lower-cased name, code, summary, tags and fields: what full-text search matches
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    provider: Mapped[Department] = relationship(lazy="joined")
    fields: Mapped[list[ResourceField]] = relationship(
        back_populates="resource",
        cascade="all, delete-orphan",
        order_by="ResourceField.position",
        lazy="selectin",
    )


class ResourceField(Base):
    __tablename__ = "catalog_field"
    __stamp__ = ACCESS
    __table_args__ = (UniqueConstraint("resource_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_resource.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(63))
    title: Mapped[str] = mapped_column(String(120), default="")
    type: Mapped[str] = mapped_column(String(20))
    pii: Mapped[str] = mapped_column(String(20), default="none")
    nullable: Mapped[bool] = mapped_column(Boolean, default=True)
    primary_key: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[str | None] = mapped_column(String(20), default=None)
    aliases: Mapped[list[str]] = mapped_column(JSONType, default=list)
    rules: Mapped[dict | None] = mapped_column(JSONType, default=None)

    resource: Mapped[Resource] = relationship(back_populates="fields")
