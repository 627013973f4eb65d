"""Tables that belong to no single package: the change log and workflow transitions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shuzhi.core.db import Base
from shuzhi.core.dialect import JSONType, UTCDateTime


class ChangeLog(Base):
    """One row per mutation, written in the same transaction as the mutation."""

    __tablename__ = "change_log"
    __table_args__ = (Index("ix_change_log_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(120))
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(80), index=True)
    object_type: Mapped[str] = mapped_column(String(60))
    object_id: Mapped[str] = mapped_column(String(120))
    object_repr: Mapped[str] = mapped_column(String(300), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class WorkflowTransition(Base):
    """The history of every state machine item: who moved it, when, why."""

    __tablename__ = "workflow_transition"
    __table_args__ = (Index("ix_workflow_transition_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    machine: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(60))
    object_id: Mapped[str] = mapped_column(String(120))
    transition: Mapped[str] = mapped_column(String(60))
    from_state: Mapped[str] = mapped_column(String(40))
    to_state: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(120))
    request_id: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)
    # evidence files (ids) given with the transition
    attachments: Mapped[list[int]] = mapped_column(JSONType, default=list, server_default="[]")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
