from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class PiiFinding(BaseModel):
    field: str
    kind: str = Field(description="id_card, phone, bank_card or email")
    share: float = Field(description="share of the sampled values that look like it")
    example: str = Field(description="one of them, masked")


class BatchPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    batch_id: int
    resource: str
    source: str
    connector: str
    mode: str
    state: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    duplicates: int
    rule_counts: dict[str, int]
    pii_findings: list[PiiFinding] = Field(
        default_factory=list,
        description="fields declared not personal whose values look personal, as this batch "
        "found them",
    )
    mapping: dict[str, str] = Field(description="source column → field")
    snapshot: str | None
    snapshot_rows: int | None
    error: str | None
    actor: str
    started_at: datetime
    finished_at: datetime | None


class BatchList(BaseModel):
    data: list[BatchPublic]
    count: int


class QuarantineRow(BaseModel):
    row: int = Field(description="data row number in the source (1 = first row after the header)")
    rule: str
    field: str
    value: str | None
    failures: list[str] = Field(description="every rule:field the row broke")
    batch_id: int
    record: dict[str, Any]


class QuarantineList(BaseModel):
    data: list[QuarantineRow]
    count: int


class QueryResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    count: int
    truncated: bool
    snapshots: dict[str, str] = Field(description="the snapshot each resource was read at")


class PiiFlagPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    resource: str
    field: str
    kind: str
    share: float
    example: str
    batch_id: int
    reviewed: bool
    reviewed_by: str | None
    flagged_at: datetime


class QualityPoint(BaseModel):
    batch_id: int
    measured_at: datetime
    rows: int
    completeness: float
    validity: float
    uniqueness: float
    volume_change: float | None


class ResourceHealth(BaseModel):
    code: str
    name: str
    provider: str
    provider_name: str
    system: str
    update_cycle: str
    light: str
    freshness: str
    last_loaded_at: datetime | None
    snapshot: str | None
    rows: int | None
    completeness: float | None
    validity: float | None
    uniqueness: float | None
    volume_change: float | None
    last_batch_state: str | None
    pii_flags: int


class Rollup(BaseModel):
    key: str
    name: str
    published: int
    current: int
    coverage: float = Field(description="share of published resources with a current snapshot")
    lights: dict[str, int]


class QualityReport(BaseModel):
    generated_at: datetime
    overall: Rollup
    by_provider: list[Rollup]
    by_system: list[Rollup]
    resources: list[ResourceHealth]
    pii_flags: list[PiiFlagPublic]


class HealthPoint(BaseModel):
    day: str
    published: int
    current: int
    coverage: float
    lights: dict[str, int]


class DataTab(BaseModel):
    """What a resource's data tab shows: schema, masked sample, batches, quality trend."""

    code: str
    snapshot: str | None
    rows: int | None
    columns: list[str]
    sample: list[list[Any]]
    masked: list[str] = Field(description="columns whose values the sample masks")
    batches: list[BatchPublic]
    quality: list[QualityPoint]
    pii_flags: list[PiiFlagPublic]


class SourceCreate(BaseModel):
    """A source a resource is pulled from on a schedule."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    location: str = Field(
        min_length=1,
        max_length=2000,
        description="a file under DATA_DIR/inbox (or a configured source root), or an "
        "SQLAlchemy URL",
    )
    schedule: str = Field(
        "cycle",
        max_length=100,
        description="a cron expression (minute hour day month weekday), or 'cycle' for the "
        "resource's update cycle",
    )
    mode: Literal["full", "incremental"] = "full"
    format: str | None = None
    sheet: str | None = None
    header_row: int = Field(1, ge=1, le=1000)
    encoding: str | None = None
    delimiter: str | None = Field(None, max_length=1)
    table: str | None = None
    query: str | None = None
    watermark: str | None = None
    map: dict[str, str] = Field(default_factory=dict, description="source column → field")


class SourcePublic(BaseModel):
    id: int
    resource: str
    name: str
    location: str
    schedule: str
    mode: str
    enabled: bool
    options: dict[str, Any]
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_batch_id: int | None
    last_error: str | None
    attempts: int
    running: bool


class SourceList(BaseModel):
    data: list[SourcePublic]
    count: int
