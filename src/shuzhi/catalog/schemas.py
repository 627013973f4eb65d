from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shuzhi.catalog.rules import (
    Classification,
    FieldFormat,
    FieldType,
    Format,
    Grade,
    NationalLevel,
    OpenAttribute,
    PiiKind,
    Sharing,
    UpdateCycle,
)
from shuzhi.core.enums import System

# Caps on what one resource may list, far above any real table, so that a document cannot
# make validation, storage or the search text arbitrarily large.
FIELDS_MAX = 500
TAGS_MAX = 50
TAG_MAX_LENGTH = 40

Tag = Annotated[str, Field(max_length=TAG_MAX_LENGTH)]


class FieldRules(BaseModel):
    """Checks beyond type and format, applied to every value at ingestion."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    min: float | None = Field(None, allow_inf_nan=False, description="smallest allowed number")
    max: float | None = Field(None, allow_inf_nan=False, description="largest allowed number")
    values: list[str] | None = Field(
        None, max_length=500, description="the only values allowed (an enumeration)"
    )
    pattern: str | None = Field(
        None, max_length=500, description="a regular expression the whole value must match"
    )

    @model_validator(mode="after")
    def _coherent(self) -> FieldRules:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern {self.pattern!r} is not a regular expression: {exc}"
                ) from None
        return self

    def is_empty(self) -> bool:
        return all(value is None for value in self.model_dump().values())


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True, str_strip_whitespace=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", examples=["id_card"])
    title: str = Field("", max_length=120, examples=["公民身份号码"])
    type: FieldType = FieldType.string
    pii: PiiKind = PiiKind.none
    nullable: bool = True
    primary_key: bool = False
    description: str = ""
    format: FieldFormat | None = Field(
        None,
        description="identifier format checked at ingestion; id_card fields default to citizen_id",
    )
    aliases: list[Annotated[str, Field(min_length=1, max_length=120)]] = Field(
        default_factory=list,
        max_length=20,
        description="other source column headers that load into this field",
    )
    rules: FieldRules | None = None

    @model_validator(mode="after")
    def _primary_key_not_null(self) -> FieldSpec:
        if self.primary_key and self.nullable:
            self.nullable = False
        if self.format is None and self.pii is PiiKind.id_card:
            self.format = FieldFormat.citizen_id
        if self.rules is not None and self.rules.is_empty():
            self.rules = None
        numeric = self.type in (FieldType.integer, FieldType.decimal)
        if self.rules and not numeric and (self.rules.min, self.rules.max) != (None, None):
            raise ValueError(f"field {self.name}: min and max apply to numbers only")
        return self


class ResourceBase(BaseModel):
    # stripped, so that a name of spaces is as empty as no name
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=2, max_length=200)
    summary: str = ""
    provider: str = Field(description="code of the provider department")
    classification: Classification = Classification.department
    format: Format = Format.table
    update_cycle: UpdateCycle = UpdateCycle.irregular
    system: System
    sharing: Sharing = Sharing.conditional
    sharing_conditions: str = ""
    open: OpenAttribute = OpenAttribute.prohibited
    grade: Grade = Grade.L2
    national_level: NationalLevel = NationalLevel.general
    region: str = Field(pattern=r"^\d{6}(\d{3})?(\d{3})?$", description="region the data covers")
    tags: list[Tag] = Field(default_factory=list, max_length=TAGS_MAX)
    fields: list[FieldSpec] = Field(default_factory=list, max_length=FIELDS_MAX)

    @model_validator(mode="after")
    def _consistent(self) -> ResourceBase:
        counts = Counter(field.name for field in self.fields)
        duplicates = sorted(name for name, count in counts.items() if count > 1)
        if duplicates:
            raise ValueError(f"field names repeat: {', '.join(duplicates)}")
        if self.sharing is not Sharing.unconditional and not self.sharing_conditions.strip():
            raise ValueError(
                f"sharing {self.sharing.value} needs sharing_conditions saying when and why"
            )
        if self.grade is Grade.L4 and self.open is not OpenAttribute.prohibited:
            raise ValueError("an L4 resource cannot be opened; set open: prohibited")
        self.tags = sorted({tag for tag in self.tags if tag})
        return self


class ResourceCreate(ResourceBase):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{2,63}$", examples=["gat_resident_population"])


class ResourceUpdate(ResourceBase):
    """A full replacement of an editable resource's metadata."""

    version: int | None = Field(
        None,
        description="the version this edit started from; if the resource has moved on "
        "since, the edit is refused (409) instead of overwriting someone else's change",
    )


class ResourceSummary(BaseModel):
    code: str
    name: str
    summary: str
    provider: str
    provider_name: str
    system: str
    sharing: str
    open: str
    grade: str
    region: str
    state: str
    tags: list[str]
    updated_at: datetime


class ResourcePublic(ResourceSummary):
    classification: str
    format: str
    update_cycle: str
    sharing_conditions: str
    national_level: str
    region_name: str
    version: int
    created_at: datetime
    fields: list[FieldSpec]
    transitions: list[str] = Field(
        default_factory=list, description="lifecycle transitions the caller may fire now"
    )


class ResourceList(BaseModel):
    data: list[ResourceSummary]
    count: int


class TransitionRequest(BaseModel):
    comment: str | None = Field(None, max_length=2000)


class HistoryEntry(BaseModel):
    transition: str
    from_state: str
    to_state: str
    actor: str
    comment: str | None
    at: datetime


class ApplyResult(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]


class CatalogStats(BaseModel):
    total: int
    by_state: dict[str, int]
    published_by_system: dict[str, int]
    published_by_grade: dict[str, int]
    published_by_sharing: dict[str, int]
