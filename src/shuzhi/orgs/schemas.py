from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shuzhi.core.enums import System

# Ids are INTEGER columns: a larger number names no row, and the drivers overflow on it.
ID_MAX = 2**31 - 1
TOKEN_DAYS_MAX = 3650

# What people type is stripped, so a name of spaces is as empty as no name. A password is
# kept exactly as typed: stripping it would change the secret.
INPUT = ConfigDict(str_strip_whitespace=True)
Password = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=200)]


class DepartmentCreate(BaseModel):
    model_config = INPUT

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$", examples=["zj_gat"])
    name: str = Field(min_length=2, max_length=120, examples=["浙江省公安厅"])
    region: str = Field(pattern=r"^\d{6}(\d{3})?(\d{3})?$", examples=["330000"])
    parent: str | None = Field(None, description="code of the parent department")
    systems: list[System] = Field(default_factory=list)
    credit_code: str | None = Field(None, description="GB 32100 unified social credit code")


class DepartmentUpdate(BaseModel):
    model_config = INPUT

    name: str | None = Field(None, min_length=2, max_length=120)
    parent: str | None = None
    systems: list[System] | None = None
    credit_code: str | None = None


class DepartmentPublic(BaseModel):
    code: str
    name: str
    region: str
    region_name: str
    level: str
    parent: str | None
    systems: list[str]
    credit_code: str | None


class DepartmentList(BaseModel):
    data: list[DepartmentPublic]
    count: int


class UserCreate(BaseModel):
    model_config = INPUT

    username: str = Field(pattern=r"^[a-z][a-z0-9_.-]{2,39}$")
    display_name: str = Field(min_length=1, max_length=80)
    password: Password
    department: str | None = Field(None, description="code of the user's department")
    email: str | None = Field(None, max_length=120)


class GrantPublic(BaseModel):
    role: str
    role_name: str
    department: str | None
    region: str | None


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    username: str
    display_name: str
    email: str | None
    department: str | None
    active: bool
    grants: list[GrantPublic] = []


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool = Field(description="false: the user can no longer log in or use its tokens")


class UserList(BaseModel):
    data: list[UserPublic]
    count: int


class GrantCreate(BaseModel):
    model_config = INPUT

    role: str
    department: str | None = Field(None, description="department code; empty: any department")
    region: str | None = Field(None, description="root of the region subtree; empty: any")

    @field_validator("department", "region", mode="before")
    @classmethod
    def _empty_is_any(cls, value: object) -> object:
        # "" and null both mean "any": one spelling is stored, so the same body revokes
        return None if value == "" else value


class RolePublic(BaseModel):
    code: str
    name_zh: str
    name_en: str
    actions: list[str]


class RoleList(BaseModel):
    data: list[RolePublic]
    count: int


class TokenCreate(BaseModel):
    model_config = INPUT

    name: str = Field(min_length=1, max_length=80)
    days: int | None = Field(
        None, ge=1, le=TOKEN_DAYS_MAX, description="lifetime; default from settings"
    )


class TokenPublic(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret; shown this once and never again")


class TokenList(BaseModel):
    data: list[TokenPublic]
    count: int
