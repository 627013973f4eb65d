from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shuzhi.gateway.rules import CONSUMER_CODE, PURPOSE_CODE, MaskMode, Right

FIELDS_MAX = 500


class ConsumerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(max_length=64)
    name: str = Field(min_length=1, max_length=200)
    department: str = Field(max_length=32, description="code of the owning department")
    description: str = Field("", max_length=2000)
    contact: str = Field("", max_length=120)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not CONSUMER_CODE.match(value):
            raise ValueError(
                "a consumer code is 3 to 64 lower-case letters, digits or _, starting with a letter"
            )
        return value


class ConsumerPublic(BaseModel):
    code: str
    name: str
    department: str
    department_name: str
    description: str
    contact: str
    active: bool
    created_by: str
    created_at: datetime
    credentials: int


class ConsumerList(BaseModel):
    data: list[ConsumerPublic]
    count: int


class CredentialPublic(BaseModel):
    id: int
    consumer: str
    access_key: str
    state: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class CredentialIssued(CredentialPublic):
    secret: str = Field(description="shown this once; it cannot be read back")


class CredentialList(BaseModel):
    data: list[CredentialPublic]
    count: int


class ApplicationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    consumer: str = Field(max_length=64)
    resource: str = Field(max_length=64)
    fields: list[str] = Field(
        default_factory=list,
        max_length=FIELDS_MAX,
        description="fields to read or verify; none for a grant to call a service only",
    )
    clear_fields: list[str] = Field(
        default_factory=list,
        max_length=FIELDS_MAX,
        description="personal fields asked for in clear; the provider decides",
    )
    rights: list[Right] = Field(default_factory=lambda: [Right.read], min_length=1)
    purpose_code: str = Field(max_length=64, description="administrative matter code")
    purpose: str = Field(min_length=2, max_length=2000)
    legal_basis: str = Field(min_length=2, max_length=2000)
    region: str | None = Field(
        None, max_length=12, description="region scope; the consumer department's region if empty"
    )
    valid_from: date | None = None
    valid_until: date | None = None

    @field_validator("purpose_code")
    @classmethod
    def _purpose_code(cls, value: str) -> str:
        if not PURPOSE_CODE.match(value):
            raise ValueError("a matter code is 2 to 64 letters, digits or . _ : / -")
        return value


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    clear_fields: list[str] | None = Field(
        None,
        max_length=FIELDS_MAX,
        description="personal fields approved in clear (a subset of those asked); none if empty",
    )
    requests_per_second: int | None = Field(None, ge=1, le=10_000)
    rows_per_day: int | None = Field(None, ge=1, le=100_000_000)
    comment: str | None = Field(None, max_length=2000)


class ApplicationPublic(BaseModel):
    id: int
    consumer: str
    consumer_name: str
    consumer_department: str
    resource: str
    resource_name: str
    provider: str
    sharing: str
    fields: list[str]
    clear_fields: list[str]
    rights: list[str]
    purpose_code: str
    purpose: str
    legal_basis: str
    region: str
    valid_from: date
    valid_until: date
    state: str
    state_label: str
    due_at: datetime
    overdue: bool
    submitted_by: str
    submitted_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    grant_id: int | None


class ApplicationList(BaseModel):
    data: list[ApplicationPublic]
    count: int


class GrantField(BaseModel):
    name: str
    title: str
    pii: str
    mode: MaskMode


class GrantPublic(BaseModel):
    id: int
    application_id: int
    consumer: str
    consumer_name: str
    resource: str
    resource_name: str
    provider: str
    fields: list[GrantField]
    rights: list[str]
    purpose_code: str
    purpose: str
    region: str
    valid_from: date
    valid_until: date
    requests_per_second: int
    rows_per_day: int
    state: str
    state_label: str
    created_at: datetime


class GrantList(BaseModel):
    data: list[GrantPublic]
    count: int


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attributes: dict[str, str | int | float | bool] = Field(
        min_length=1, max_length=50, description="field name -> the value to check"
    )


class VerifyAnswer(BaseModel):
    match: bool


class RecordPage(BaseModel):
    resource: str
    snapshot: str
    fields: list[str]
    masking: dict[str, str]
    data: list[dict[str, Any]]
    next_cursor: str | None


class AccessLogPublic(BaseModel):
    seq: int
    at: datetime
    request_id: str
    consumer: str | None
    access_key: str | None
    end_user: str | None
    purpose: str | None
    operation: str
    target: str | None
    grant_id: int | None
    method: str
    path: str
    fields: list[str]
    masking: dict[str, Any]
    rows: int
    status: int
    outcome: str
    latency_ms: int
    response_sha256: str
    hash: str


class AccessLogList(BaseModel):
    data: list[AccessLogPublic]
    count: int


class ChainReport(BaseModel):
    intact: bool
    entries: int
    first_bad: int | None = Field(None, description="seq of the first entry that does not match")
    reason: str | None = None


class UsageRow(BaseModel):
    day: str
    consumer: str | None
    target: str | None
    purpose: str | None
    calls: int
    refused: int
    rows: int


class UsageTotal(BaseModel):
    key: str
    calls: int
    refused: int
    rows: int


class UsageReport(BaseModel):
    since: str
    rows: list[UsageRow]
    by_consumer: list[UsageTotal]
    by_target: list[UsageTotal]
    by_day: list[UsageTotal]


class Flag(BaseModel):
    kind: str = Field(description="distinct_lookups, machine_regular or off_hours")
    title: str
    consumer: str
    day: str
    calls: int
    explanation: str


class FlagList(BaseModel):
    since: str
    data: list[Flag]


class ServiceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    resource: str = Field(max_length=64, description="the catalog resource the service is")
    base_url: str = Field(max_length=500, description="http(s)://host[:port]/path, no query")
    methods: list[str] = Field(default_factory=lambda: ["GET"], min_length=1, max_length=5)
    paths: list[str] = Field(
        default_factory=lambda: ["/**"],
        min_length=1,
        max_length=100,
        description="path patterns under the base URL: * one segment, ** the rest",
    )
    timeout_seconds: int = Field(10, ge=1, le=120)
    max_response_kb: int = Field(1024, ge=1, le=102_400)
    openapi: dict[str, Any] | None = Field(None, description="the service's OpenAPI document")


class ServicePublic(BaseModel):
    code: str
    name: str
    provider: str
    base_url: str
    methods: list[str]
    paths: list[str]
    timeout_seconds: int
    max_response_kb: int
    openapi: dict[str, Any] | None
    registered_by: str
    registered_at: datetime


class ServiceList(BaseModel):
    data: list[ServicePublic]
    count: int
