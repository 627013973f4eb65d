"""Indicator definitions as they are written (YAML, the API) and as they are shown."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from shuzhi.brain.rules import (
    ADDITIVITY_OF,
    FILTER_OPS,
    Additivity,
    Aggregate,
    Direction,
    Grain,
    MeasureKind,
    RuleKind,
    Severity,
    parse_expression,
)
from shuzhi.core.enums import System

CODE = r"^[a-z][a-z0-9_]{1,62}$"
FieldName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Scalar = str | int | float | bool | date
Condition = Scalar | list[Scalar] | dict[str, Scalar | list[Scalar] | None] | None


def _check_where(where: dict[str, Condition]) -> dict[str, Condition]:
    for name, condition in where.items():
        if isinstance(condition, dict):
            unknown = sorted(set(condition) - set(FILTER_OPS))
            if unknown or not condition:
                raise ValueError(
                    f"filter on {name}: operators are {', '.join(FILTER_OPS)}"
                    + (f", not {', '.join(unknown)}" if unknown else "")
                )
    return where


# a filter: field -> value (equal), list (in), or {op: value}
Where = Annotated[dict[FieldName, Condition], AfterValidator(_check_where)]


class Part(BaseModel):
    """One aggregate over one source: a ratio's numerator or denominator."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(None, description="catalog resource; the indicator's first if empty")
    agg: Aggregate = Aggregate.count
    field: FieldName | None = None
    where: Where = Field(default_factory=dict)

    @model_validator(mode="after")
    def _field_when_needed(self) -> Part:
        if self.agg is not Aggregate.count and self.field is None:
            raise ValueError(f"{self.agg.value} needs a field")
        return self


class Measure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: MeasureKind
    field: FieldName | None = Field(None, description="of sum, average and count_distinct")
    where: Where = Field(default_factory=dict)
    numerator: Part | None = None
    denominator: Part | None = None
    scale: float = Field(1.0, gt=0, description="a ratio times this: 1000 for per 1,000")
    expression: str | None = Field(None, description="of derived: + - * / over indicator codes")

    @model_validator(mode="after")
    def _complete(self) -> Measure:
        kind = self.kind
        needs_field = (MeasureKind.sum, MeasureKind.average, MeasureKind.count_distinct)
        if kind in needs_field and self.field is None:
            raise ValueError(f"a {kind.value} measure needs a field")
        if kind is MeasureKind.ratio and (self.numerator is None or self.denominator is None):
            raise ValueError("a ratio needs a numerator and a denominator")
        if kind is not MeasureKind.ratio and (self.numerator or self.denominator):
            raise ValueError("only a ratio has a numerator and a denominator")
        if kind is MeasureKind.derived:
            if not self.expression:
                raise ValueError("a derived measure needs an expression")
            parse_expression(self.expression)
        elif self.expression:
            raise ValueError("only a derived measure has an expression")
        return self

    def parts(self) -> tuple[Part, ...]:
        """The aggregates it is made of; a value is parts[0] / parts[1] * scale if two."""
        kind = self.kind
        if kind is MeasureKind.ratio:
            assert self.numerator is not None and self.denominator is not None
            return (self.numerator, self.denominator)
        if kind is MeasureKind.average:
            return (
                Part(agg=Aggregate.sum, field=self.field, where=self.where),
                Part(
                    agg=Aggregate.count,
                    field=None,
                    where={**self.where, self.field: {"null": False}},
                ),
            )
        if kind is MeasureKind.derived:
            return ()
        agg = {MeasureKind.count: Aggregate.count, MeasureKind.sum: Aggregate.sum}.get(
            kind, Aggregate.count_distinct
        )
        return (Part(agg=agg, field=self.field, where=self.where),)


class IndicatorSpec(BaseModel):
    """An indicator as it is defined once, for every region and period."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(pattern=CODE, examples=["childcare_places_per_1000"])
    name: str = Field(min_length=2, max_length=200, examples=["每千人口拥有3岁以下婴幼儿托位数"])
    name_en: str = Field("", max_length=200)
    system: System
    owner: str = Field(description="code of the department that answers for it")
    unit: str = Field("", max_length=40)
    direction: Direction = Direction.higher
    sources: list[str] = Field(default_factory=list, max_length=10)
    measure: Measure
    where: Where = Field(default_factory=dict, description="applied to every part")
    time: FieldName | None = Field(None, description="the date or datetime column")
    grains: list[Grain] = Field(default_factory=lambda: [Grain.month, Grain.quarter, Grain.year])
    region: FieldName = Field("region_code", description="a county- or town-level region code")
    additivity: Additivity | None = None
    frequency: Grain = Field(Grain.month, description="how often new data is expected")
    stale_after_days: int | None = Field(
        None, ge=1, description="no new data for this long is itself a warning"
    )
    tolerance: float = Field(
        0.05, ge=0, le=1, description="share of the target within which the light is yellow"
    )
    decimals: int = Field(2, ge=0, le=6)
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, data: Any) -> Any:
        if isinstance(data, dict) and "source" in data:
            data = dict(data)
            source = data.pop("source")
            data.setdefault("sources", [source] if isinstance(source, str) else source)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> IndicatorSpec:
        kind = self.measure.kind
        allowed = ADDITIVITY_OF[kind]
        if self.additivity is None:
            self.additivity = allowed[0]
        elif self.additivity not in allowed:
            raise ValueError(
                f"a {kind.value} measure is {' or '.join(a.value for a in allowed)},"
                f" not {self.additivity.value}"
            )
        if not self.grains:
            raise ValueError("give at least one grain")
        self.grains = sorted(set(self.grains), key=list(Grain).index)
        if kind is MeasureKind.derived:
            if self.sources or self.time:
                raise ValueError("a derived indicator has no source or time column of its own")
        else:
            if not self.sources:
                raise ValueError("give the catalog resource(s) it is computed from")
            if self.time is None:
                raise ValueError("give the time column")
            for part in self.measure.parts():
                if part.source is not None and part.source not in self.sources:
                    raise ValueError(f"part source {part.source} is not among the sources")
        return self

    def part_source(self, part: Part) -> str:
        return part.source or self.sources[0]


class IndicatorPublic(BaseModel):
    code: str
    name: str
    name_en: str
    system: str
    system_label: str
    owner: str
    owner_name: str
    unit: str
    direction: str
    measure: str
    additivity: str
    grains: list[str]
    sources: list[str]
    version: int
    spec: dict[str, Any]
    latest: dict[str, Any] | None = None
    updated_at: datetime


class IndicatorList(BaseModel):
    data: list[IndicatorPublic]
    count: int


class ApplyResult(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]


class IndicatorValue(BaseModel):
    indicator: str
    region_code: str
    region_name: str = ""
    region_level: str = ""
    grain: str
    period: str
    period_start: date
    value: float | None
    numerator: float | None = None
    denominator: float | None = None


class ValueList(BaseModel):
    data: list[IndicatorValue]
    count: int
    run: int | None = None


class RunPublic(BaseModel):
    id: int
    engine: str
    state: str
    trigger: str
    indicators: list[str]
    rows: int
    snapshot: str | None
    read: dict[str, str]
    error: str | None
    actor: str
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None = None


class TargetSet(BaseModel):
    """Targets as people write them: one value for some regions and periods."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    indicator: str = Field(pattern=CODE)
    value: float
    grain: Grain = Grain.year
    periods: list[Annotated[str, StringConstraints(min_length=1, max_length=12)]] = Field(
        min_length=1, max_length=120
    )
    regions: list[Annotated[str, StringConstraints(min_length=1, max_length=12)]] = Field(
        default_factory=list, max_length=500
    )
    subtree: str | None = Field(
        None, max_length=12, description="every region of this subtree, itself included"
    )
    note: str = Field("", max_length=500)

    @model_validator(mode="before")
    @classmethod
    def _one_period(cls, data: Any) -> Any:
        if isinstance(data, dict) and "period" in data:
            data = dict(data)
            data.setdefault("periods", [data.pop("period")])
        if isinstance(data, dict) and isinstance(data.get("periods"), list):
            data["periods"] = [str(period) for period in data["periods"]]
        if isinstance(data, dict) and isinstance(data.get("regions"), list):
            data["regions"] = [str(region) for region in data["regions"]]
        return data

    @model_validator(mode="after")
    def _somewhere(self) -> TargetSet:
        if not self.regions and self.subtree is None:
            raise ValueError("give regions or a subtree")
        if not math.isfinite(self.value):
            raise ValueError("a target is a finite number")
        return self


class TargetPublic(BaseModel):
    indicator: str
    region_code: str
    region_name: str
    grain: str
    period: str
    period_start: date
    value: float
    origin: str
    note: str
    actor: str
    updated_at: datetime


class TargetList(BaseModel):
    data: list[TargetPublic]
    count: int


class TargetResult(BaseModel):
    written: int
    created: int
    updated: int


class EvaluationRow(BaseModel):
    region_code: str
    region_name: str
    region_level: str
    parent: str | None
    grain: str
    period: str
    period_start: date
    value: float | None
    target: float | None
    expected: float | None
    light: str | None
    complete: bool
    yoy: float | None
    yoy_delta: float | None
    pop: float | None
    pop_delta: float | None
    rank: int | None
    siblings: int


class EvaluationList(BaseModel):
    indicator: str
    unit: str
    direction: str
    data: list[EvaluationRow]
    count: int


class RuleSpec(BaseModel):
    """An early-warning rule as it is written: what it watches and when it is bad."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(pattern=CODE)
    name: str = Field(min_length=2, max_length=200)
    kind: RuleKind
    severity: Severity = Severity.medium
    indicators: list[str] = Field(min_length=1, max_length=200, description="codes, or ['*']")
    levels: list[Literal["province", "city", "county", "town"]] = Field(
        default_factory=lambda: ["county"], min_length=1
    )
    grain: Grain = Grain.month
    value: float | None = Field(None, description="threshold: a fixed line")
    against: Literal["target"] | None = Field(None, description="threshold: the target")
    periods: int = Field(3, ge=1, le=60, description="consecutive: how many periods in a row")
    lights: list[Literal["red", "yellow"]] = Field(
        default_factory=lambda: ["red"], description="consecutive: the lights that count"
    )
    compare: Literal["yoy", "pop"] = Field("yoy", description="change: year or period before")
    limit: float | None = Field(None, gt=0, description="change: % in the worse direction")
    interval: Literal[80, 95] = Field(95, description="anomaly: the forecast interval")
    after_days: int | None = Field(None, ge=1, description="stale: days without new data")
    margin: float = Field(
        0.02, ge=0, le=1, description="hysteresis: how far past the line a value must come back"
    )
    pending_for: int = Field(1, ge=1, le=24, description="bad evaluations before it fires")
    recover_for: int = Field(2, ge=1, le=24, description="clear evaluations before normal")
    enabled: bool = True
    description: str = ""

    @model_validator(mode="after")
    def _parameters(self) -> RuleSpec:
        if self.kind is RuleKind.threshold and (self.value is None) == (self.against is None):
            raise ValueError("a threshold rule gives either value or against: target")
        if self.kind is RuleKind.change and self.limit is None:
            raise ValueError("a change rule needs a limit (%)")
        return self


class RulePublic(BaseModel):
    code: str
    name: str
    kind: str
    kind_label: str
    severity: str
    enabled: bool
    version: int
    spec: dict[str, Any]


class WarningEventPublic(BaseModel):
    from_state: str
    to_state: str
    period: str | None
    value: float | None
    line: float | None
    message: str
    at: datetime


class WarningPublic(BaseModel):
    id: int
    rule: str
    rule_name: str
    kind: str
    severity: str
    indicator: str
    indicator_name: str
    unit: str
    system: str
    owner: str
    region_code: str
    region_name: str
    region_level: str
    state: str
    state_label: str
    grain: str
    period: str | None
    value: float | None
    line: float | None
    message: str
    since: datetime
    updated_at: datetime
    events: list[WarningEventPublic] | None = None


class WarningList(BaseModel):
    data: list[WarningPublic]
    count: int
    by_state: dict[str, int]


class WarningSummary(BaseModel):
    evaluated: int
    transitions: int
    firing: int


class ForecastSummary(BaseModel):
    series: int
    forecast: int
    too_short: int
    models: dict[str, int]
    seconds: float


class RegionRef(BaseModel):
    code: str
    name: str
    level: str


class IndicatorPage(BaseModel):
    """Everything the indicator page shows, for one region and grain."""

    indicator: IndicatorPublic
    region: RegionRef
    ancestors: list[RegionRef]
    grain: str
    grains: list[str]
    series: list[EvaluationRow]
    latest: EvaluationRow | None
    children: list[EvaluationRow]
    forecast: dict[str, Any]
    warnings: list[WarningPublic]


class MilestoneSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: date
    target: float


class KeyResultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    indicator: str = Field(pattern=CODE)
    region: str = Field("330000", max_length=12)
    baseline_period: str = Field(
        max_length=12, description="the year the baseline is taken from, e.g. 2024"
    )
    baseline: float | None = Field(None, description="default: the indicator's value then")
    milestones: list[MilestoneSpec] = Field(min_length=1, max_length=20)
    weight: float = Field(1.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _text_period(cls, data: Any) -> Any:
        if isinstance(data, dict) and "baseline_period" in data:
            data = {**data, "baseline_period": str(data["baseline_period"])}
        return data

    @model_validator(mode="after")
    def _in_order(self) -> KeyResultSpec:
        dates = [milestone.date for milestone in self.milestones]
        if dates != sorted(set(dates)):
            raise ValueError("milestones go in date order, one per date")
        return self


class GoalSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(pattern=CODE)
    name: str = Field(min_length=2, max_length=200)
    system: System | None = None
    owner: str | None = None
    description: str = ""
    starts_on: date
    ends_on: date
    key_results: list[KeyResultSpec] = Field(default_factory=list, max_length=50)
    children: list[GoalSpec] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _span(self) -> GoalSpec:
        if self.ends_on < self.starts_on:
            raise ValueError("a goal ends after it starts")
        return self


class KeyResultView(BaseModel):
    indicator: str
    indicator_name: str
    unit: str
    direction: str
    region_code: str
    region_name: str
    baseline_period: str
    baseline: float | None
    current_period: str | None
    current: float | None
    expected: float | None
    next_milestone: MilestoneSpec | None
    final_target: float
    progress: float | None
    light: str
    weight: float


class GoalNode(BaseModel):
    code: str
    name: str
    system: str | None
    owner: str | None
    description: str
    starts_on: date
    ends_on: date
    progress: float | None
    light: str
    key_results: list[KeyResultView]
    children: list[GoalNode]


class GoalList(BaseModel):
    data: list[GoalNode]
    as_of: date


class ReportIndicator(BaseModel):
    code: str
    name: str
    system: str
    unit: str
    decimals: int
    value: float | None
    target: float | None
    light: str | None
    yoy: float | None
    rank: int | None
    siblings: int


class ReportWarning(BaseModel):
    id: int
    rule_name: str
    indicator_name: str
    region_name: str
    severity: str
    state: str
    message: str


class ReportRanking(BaseModel):
    indicator: str
    name: str
    unit: str
    decimals: int
    best: list[tuple[str, float]]
    worst: list[tuple[str, float]]


class Report(BaseModel):
    """The monthly brief of one region (and one system, or all)."""

    title: str
    month: str
    region_code: str
    region_name: str
    system: str | None
    system_label: str
    generated_at: datetime
    lights: dict[str, int]
    indicators: list[ReportIndicator]
    new_warnings: list[ReportWarning]
    resolved_warnings: list[ReportWarning]
    forecast_misses: list[ReportWarning]
    rankings: list[ReportRanking]
