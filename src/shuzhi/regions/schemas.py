from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RegionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    level: str
    parent_code: str | None


class RegionNode(RegionPublic):
    children: list[RegionNode] = []


class RegionList(BaseModel):
    data: list[RegionPublic]
    count: int


class RegionLoadResult(BaseModel):
    created: int
    updated: int
    unchanged: int
