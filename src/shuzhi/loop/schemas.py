"""Problems, reforms and their pages, as they are written and as they are shown."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SkipValidation,
    StringConstraints,
    model_validator,
)

from shuzhi.core.enums import System
from shuzhi.loop.rules import Batch, Channel, ProblemSeverity, ReformLevel

Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Code = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")
]
RegionCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{6}(\d{3})?$")]
DepartmentCode = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)]


class Ref(BaseModel):
    code: str
    name: str


class ProblemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Text = ""
    channel: Channel
    system: System
    region: RegionCode
    severity: ProblemSeverity = ProblemSeverity.general
    department: DepartmentCode | None = Field(
        None, description="the responsible department; given, the problem is assigned at once"
    )
    responsible_person: Annotated[str, StringConstraints(strip_whitespace=True, max_length=80)] = ""
    co_departments: list[DepartmentCode] = Field(default_factory=list, max_length=50)
    measures: Text = ""
    deadline: date | None = None
    indicator: str | None = Field(None, max_length=63, description="a linked brain indicator")
    code: Code | None = Field(None, description="the list's own number; generated when absent")


class ProblemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Text | None = None
    severity: ProblemSeverity | None = None
    responsible_person: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=80)] | None
    ) = None
    co_departments: list[DepartmentCode] | None = Field(None, max_length=50)
    measures: Text | None = None
    deadline: date | None = None


class ProblemAction(BaseModel):
    """A transition of a problem, with what it needs."""

    model_config = ConfigDict(extra="forbid")

    transition: str = Field(..., max_length=40)
    comment: Text | None = None
    attachments: list[int] = Field(default_factory=list, max_length=50)
    department: DepartmentCode | None = Field(None, description="assign and reassign: to whom")
    deadline: date | None = Field(None, description="assign and reassign: by when")


class WarningLink(BaseModel):
    id: int
    state: str
    rule: str
    indicator: str | None
    message: str


class ProblemPublic(BaseModel):
    id: int
    code: str
    title: str
    description: str
    channel: str
    system: str
    region: Ref
    severity: str
    state: str
    department: Ref | None
    responsible_person: str
    co_departments: list[Ref]
    measures: str
    deadline: date | None
    light: str
    overdue_days: int = Field(description="working days past the deadline (0 when not late)")
    on_time: bool | None = Field(description="closed by the deadline; None while open")
    days_to_close: int | None
    warning: WarningLink | None
    indicator: Ref | None
    evidence_count: int
    escalation: int
    escalated_to: Ref | None
    reported_at: datetime
    reported_by: str
    assigned_at: datetime | None
    closed_at: datetime | None


class ProblemList(BaseModel):
    data: list[ProblemPublic]
    count: int = Field(description="problems matching the filters (all pages)")
    limit: int
    offset: int


class BoardColumn(BaseModel):
    state: str
    label: str
    count: int
    data: list[ProblemPublic]


class Board(BaseModel):
    """The problem list as a kanban: a column per state with its first cards."""

    columns: list[BoardColumn]


class EvidencePublic(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    note: str
    uploaded_by: str
    uploaded_at: datetime


class StepPublic(BaseModel):
    """One transition in an item's timeline."""

    transition: str
    label: str
    from_state: str
    to_state: str
    actor: str
    at: datetime
    comment: str | None
    attachments: list[int]


class ActionHint(BaseModel):
    name: str
    label: str
    needs_comment: bool
    # not validated: a core.errors.Message stays one, for a page to say in its reader's language
    reason: Annotated[str | None, SkipValidation] = Field(
        None, description="in ``blocked``: the rule that forbids it now"
    )


class ProblemPage(BaseModel):
    problem: ProblemPublic
    timeline: list[StepPublic]
    evidence: list[EvidencePublic]
    actions: list[ActionHint]
    blocked: list[ActionHint] = Field(
        default_factory=list,
        description="transitions the caller may fire from this state but a rule forbids now",
    )


class StatRow(BaseModel):
    key: str
    label: str
    total: int
    open: int
    closed: int
    overdue: int
    closure_rate: float | None = Field(description="closed ÷ total")
    on_time_rate: float | None = Field(description="closed by the deadline ÷ closed")
    average_days: float | None = Field(description="mean calendar days from report to 销号")


class ProblemStats(BaseModel):
    by: str
    total: StatRow
    data: list[StatRow]


class RowError(BaseModel):
    """A bad row of an imported sheet: its number as Excel shows it, the column, why."""

    row: int
    column: str
    # not validated: a core.errors.Message stays one, for the page to say in its reader's language
    reason: Annotated[str, SkipValidation]


class ImportReport(BaseModel):
    """What an Excel import did, or why it did nothing."""

    rows: int
    imported: int
    created: int = 0
    updated: int = 0
    errors: list[RowError] = Field(default_factory=list)
    dry_run: bool = False


# -- reforms ----------------------------------------------------------------------------


class MilestoneSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Title
    due: date
    weight: float = Field(1.0, gt=0, le=100)


class KeyResultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    indicator: str = Field(..., max_length=63)
    region: RegionCode
    baseline_on: date = Field(description="the date of the baseline value (its period's end)")
    baseline: float | None = Field(None, description="default: the indicator's value then")
    target: float
    target_on: date
    weight: float = Field(1.0, gt=0, le=100)


class ReformSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Title
    system: System
    batch: Batch
    level: ReformLevel = ReformLevel.province
    lead: DepartmentCode
    participants: list[DepartmentCode] = Field(default_factory=list, max_length=50)
    region: RegionCode = "330000"
    starts_on: date
    ends_on: date
    description: Text = ""
    batches: dict[int, Batch] = Field(
        default_factory=dict, description="earlier years' batches, e.g. {2024: planning}"
    )
    milestones: list[MilestoneSpec] = Field(default_factory=list, max_length=100)
    key_results: list[KeyResultSpec] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _ordered(self) -> ReformSpec:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on comes before starts_on")
        return self


class MilestonePublic(BaseModel):
    id: int
    name: str
    due: date
    weight: float
    state: str
    light: str
    evidence_count: int
    done_at: datetime | None


class KeyResultPublic(BaseModel):
    indicator: Ref
    region: Ref
    unit: str
    baseline: float | None
    baseline_on: date
    target: float
    target_on: date
    current: float | None
    current_period: str | None
    expected: float | None
    progress: float | None
    light: str
    weight: float


class ReformPublic(BaseModel):
    id: int
    code: str
    name: str
    system: str
    batch: str
    batches: dict[int, str]
    level: str
    lead: Ref
    participants: list[Ref]
    region: Ref
    starts_on: date
    ends_on: date
    description: str
    progress: float | None = Field(description="weighted milestones and key results, 0..1")
    light: str
    milestones_done: int
    milestones_total: int
    version: int
    updated_at: datetime


class ReformList(BaseModel):
    data: list[ReformPublic]
    count: int
    as_of: date | None = None


class VersionPublic(BaseModel):
    version: int
    at: datetime
    actor: str
    kind: str
    note: str
    progress: float | None
    light: str


class ReformPage(BaseModel):
    reform: ReformPublic
    milestones: list[MilestonePublic]
    key_results: list[KeyResultPublic]
    versions: list[VersionPublic]
    problems: list[ProblemPublic]
    evidence: dict[int, list[EvidencePublic]] = Field(
        default_factory=dict, description="each milestone's evidence, by milestone id"
    )


class ApplyReport(BaseModel):
    created: int
    updated: int
    unchanged: int


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]


class MilestoneAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transition: str = Field(..., max_length=40)
    comment: Text | None = None
    attachments: list[int] = Field(default_factory=list, max_length=50)


class BatchSummary(BaseModel):
    """One batch of the ledger for the cockpit home: how many reforms, their lights, and
    their mean progress (reforms without any progress left out)."""

    batch: str
    label: str
    count: int
    lights: dict[str, int] = Field(description="green, yellow, red, no_data")
    progress: float | None
