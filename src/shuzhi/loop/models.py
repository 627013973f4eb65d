from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shuzhi.brain.models import EarlyWarning, Indicator
from shuzhi.core.db import Base
from shuzhi.core.dialect import JSONType, UTCDateTime
from shuzhi.loop.rules import MILESTONE, PROBLEM
from shuzhi.orgs.models import Department


class Problem(Base):
    """One item of a problem list (问题清单): who must rectify what, by when."""

    __tablename__ = "loop_problem"
    __table_args__ = (
        Index("ix_loop_problem_stats", "state", "department_id"),
        Index("ix_loop_problem_region_state", "region_code", "state"),
        # a board column and the reminders: one state, nearest deadline first
        Index("ix_loop_problem_state_deadline", "state", "deadline"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # the number people quote (WT-2026-00017); an import's own number when it had one
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(20), index=True)
    system: Mapped[str] = mapped_column(String(30), index=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    severity: Mapped[str] = mapped_column(String(10), default="general")
    state: Mapped[str] = mapped_column(String(20), index=True, default=PROBLEM.initial)
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id"), index=True, default=None
    )
    responsible_person: Mapped[str] = mapped_column(String(80), default="")
    co_departments: Mapped[list[int]] = mapped_column(JSONType, default=list)
    measures: Mapped[str] = mapped_column(Text, default="")
    deadline: Mapped[date | None] = mapped_column(Date, index=True, default=None)
    warning_id: Mapped[int | None] = mapped_column(
        ForeignKey("brain_warning.id", ondelete="SET NULL"), index=True, default=None
    )
    indicator_id: Mapped[int | None] = mapped_column(
        ForeignKey("brain_indicator.id", ondelete="SET NULL"), default=None
    )
    evidence_count: Mapped[int] = mapped_column(Integer, default=0)
    # who asked for closure: the verifier must be someone else
    rectifier_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # 0 at its own department; each escalation moves one department up
    escalation: Mapped[int] = mapped_column(Integer, default=0)
    escalated_to_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), default=None)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    reported_by: Mapped[str] = mapped_column(String(120), default="")
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True, default=None)
    # set at closure, so statistics over 100,000 problems are plain aggregates
    closed_on_time: Mapped[bool | None] = mapped_column(Boolean, default=None)
    days_to_close: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    department: Mapped[Department | None] = relationship(
        foreign_keys=[department_id], lazy="joined"
    )
    warning: Mapped[EarlyWarning | None] = relationship(lazy="joined")
    indicator: Mapped[Indicator | None] = relationship(lazy="joined")


PROBLEM.guard(Problem)


class Evidence(Base):
    """A file given as evidence, stored under the data directory by its SHA-256."""

    __tablename__ = "loop_evidence"
    __table_args__ = (Index("ix_loop_evidence_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    uploaded_by: Mapped[str] = mapped_column(String(120))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Reform(Base):
    """A major reform in the ledger (重大改革"一本账")."""

    __tablename__ = "loop_reform"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    system: Mapped[str] = mapped_column(String(30), index=True)
    batch: Mapped[str] = mapped_column(String(20), index=True)
    level: Mapped[str] = mapped_column(String(10))
    lead_department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    participants: Mapped[list[int]] = mapped_column(JSONType, default=list)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    lead: Mapped[Department] = relationship(lazy="joined")
    milestones: Mapped[list[Milestone]] = relationship(
        lazy="selectin", order_by="Milestone.due", cascade="all, delete-orphan"
    )
    key_results: Mapped[list[ReformKeyResult]] = relationship(
        lazy="selectin", order_by="ReformKeyResult.position", cascade="all, delete-orphan"
    )
    batches: Mapped[list[ReformBatch]] = relationship(
        lazy="selectin", order_by="ReformBatch.year", cascade="all, delete-orphan"
    )


class ReformBatch(Base):
    """Which batch a reform was in, year by year (a reform moves 谋划推进 → 启动实施 → 迭代升级)."""

    __tablename__ = "loop_reform_batch"
    __table_args__ = (UniqueConstraint("reform_id", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reform_id: Mapped[int] = mapped_column(ForeignKey("loop_reform.id", ondelete="CASCADE"))
    year: Mapped[int] = mapped_column(Integer)
    batch: Mapped[str] = mapped_column(String(20))


class Milestone(Base):
    __tablename__ = "loop_milestone"

    id: Mapped[int] = mapped_column(primary_key=True)
    reform_id: Mapped[int] = mapped_column(
        ForeignKey("loop_reform.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    due: Mapped[date] = mapped_column(Date)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    state: Mapped[str] = mapped_column(String(20), default=MILESTONE.initial)
    evidence_count: Mapped[int] = mapped_column(Integer, default=0)
    rectifier_id: Mapped[int | None] = mapped_column(Integer, default=None)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


MILESTONE.guard(Milestone)


class ReformKeyResult(Base):
    """An indicator the reform promised to move, in a region, from a baseline to a target."""

    __tablename__ = "loop_reform_key_result"

    id: Mapped[int] = mapped_column(primary_key=True)
    reform_id: Mapped[int] = mapped_column(
        ForeignKey("loop_reform.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    indicator_id: Mapped[int] = mapped_column(ForeignKey("brain_indicator.id"))
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"))
    baseline: Mapped[float | None] = mapped_column(Float, default=None)
    baseline_on: Mapped[date] = mapped_column(Date)
    target: Mapped[float] = mapped_column(Float)
    target_on: Mapped[date] = mapped_column(Date)
    weight: Mapped[float] = mapped_column(Float, default=1.0)

    indicator: Mapped[Indicator] = relationship(lazy="joined")


class ReformVersion(Base):
    """The reform as it stood after a change or a check-in (动态更新), so the ledger at any
    past date can be shown."""

    __tablename__ = "loop_reform_version"
    __table_args__ = (UniqueConstraint("reform_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reform_id: Mapped[int] = mapped_column(
        ForeignKey("loop_reform.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor_name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))  # created, changed, check_in, milestone
    note: Mapped[str] = mapped_column(Text, default="")
    progress: Mapped[float | None] = mapped_column(Float, default=None)
    light: Mapped[str] = mapped_column(String(10))
    snapshot: Mapped[dict] = mapped_column(JSONType)


class Reminder(Base):
    """A reminder or escalation already sent, so the worker sends each once."""

    __tablename__ = "loop_reminder"
    __table_args__ = (UniqueConstraint("object_type", "object_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
