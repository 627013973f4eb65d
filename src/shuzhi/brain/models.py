from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shuzhi.brain.rules import WARNING
from shuzhi.core.db import Base
from shuzhi.core.dialect import JSONType, UTCDateTime
from shuzhi.orgs.models import Department


class Indicator(Base):
    """An indicator's definition; ``spec`` is the whole of it as written, the columns
    repeat what lists filter and sort on."""

    __tablename__ = "brain_indicator"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    system: Mapped[str] = mapped_column(String(30), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    spec: Mapped[dict] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    owner: Mapped[Department] = relationship(lazy="joined")


class Run(Base):
    """One computation of indicators: the engine, what it read and the results it wrote."""

    __tablename__ = "brain_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    engine: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), index=True)
    # manual, or the snapshot that triggered it ("snapshot:<code>")
    trigger: Mapped[str] = mapped_column(String(100), default="manual")
    indicators: Mapped[list[str]] = mapped_column(JSONType, default=list)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    snapshot: Mapped[str | None] = mapped_column(String(40), default=None)
    # the snapshot of each catalog resource the run read (lineage)
    read: Mapped[dict] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    actor: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Target(Base):
    """What an indicator should reach in a region and period: entered, imported from a
    file, or derived from a goal."""

    __tablename__ = "brain_target"
    __table_args__ = (UniqueConstraint("indicator_id", "region_code", "grain", "period_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    indicator_id: Mapped[int] = mapped_column(
        ForeignKey("brain_indicator.id", ondelete="CASCADE"), index=True
    )
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    grain: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[date] = mapped_column(Date)
    value: Mapped[float] = mapped_column(Float)
    origin: Mapped[str] = mapped_column(String(20), default="entered")
    note: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Rule(Base):
    """An early-warning rule; ``spec`` is the whole of it as written."""

    __tablename__ = "brain_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(10))
    spec: Mapped[dict] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EarlyWarning(Base):
    """One rule watching one indicator in one region: its state and how it got there."""

    __tablename__ = "brain_warning"
    __table_args__ = (UniqueConstraint("rule_id", "indicator_id", "region_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("brain_rule.id", ondelete="CASCADE"))
    indicator_id: Mapped[int] = mapped_column(
        ForeignKey("brain_indicator.id", ondelete="CASCADE"), index=True
    )
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True, default=WARNING.initial)
    # bad and clear evaluations in a row, for pending_for and recover_for
    bad_count: Mapped[int] = mapped_column(Integer, default=0)
    good_count: Mapped[int] = mapped_column(Integer, default=0)
    grain: Mapped[str] = mapped_column(String(10))
    # the last period evaluated; the next evaluation starts after it
    period_start: Mapped[date | None] = mapped_column(Date, default=None)
    value: Mapped[float | None] = mapped_column(Float, default=None)
    line: Mapped[float | None] = mapped_column(Float, default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    rule: Mapped[Rule] = relationship(lazy="joined")
    indicator: Mapped[Indicator] = relationship(lazy="joined")


WARNING.guard(EarlyWarning)


class WarningEvent(Base):
    """A change of a warning's state with the values that caused it."""

    __tablename__ = "brain_warning_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    warning_id: Mapped[int] = mapped_column(
        ForeignKey("brain_warning.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    grain: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[date | None] = mapped_column(Date, default=None)
    value: Mapped[float | None] = mapped_column(Float, default=None)
    line: Mapped[float | None] = mapped_column(Float, default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Goal(Base):
    """A strategic goal (战略目标), in a tree: the province's goals broken down by system."""

    __tablename__ = "brain_goal"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("brain_goal.id", ondelete="CASCADE"), index=True, default=None
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    system: Mapped[str | None] = mapped_column(String(30), default=None)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), default=None)
    description: Mapped[str] = mapped_column(Text, default="")
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class KeyResult(Base):
    """An indicator a goal promises to move: from a baseline to targets at milestone dates."""

    __tablename__ = "brain_key_result"

    id: Mapped[int] = mapped_column(primary_key=True)
    goal_id: Mapped[int] = mapped_column(
        ForeignKey("brain_goal.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    indicator_id: Mapped[int] = mapped_column(
        ForeignKey("brain_indicator.id", ondelete="CASCADE"), index=True
    )
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"))
    baseline_period: Mapped[str] = mapped_column(String(12))
    baseline: Mapped[float | None] = mapped_column(Float, default=None)
    # [{"date": "2025-12-31", "target": 4.3}, ...] in date order
    milestones: Mapped[list] = mapped_column(JSONType, default=list)
    weight: Mapped[float] = mapped_column(Float, default=1.0)

    indicator: Mapped[Indicator] = relationship(lazy="joined")
