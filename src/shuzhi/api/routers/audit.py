from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from shuzhi.api import PREFIX
from shuzhi.api.deps import ActorDep, Offset, SessionDep
from shuzhi.core import audit

router = APIRouter(prefix=f"{PREFIX}/changes", tags=["audit"])


class ChangePublic(BaseModel):
    id: int
    at: datetime
    actor: str
    request_id: str | None
    action: str
    object_type: str
    object_id: str
    object_repr: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ChangeList(BaseModel):
    data: list[ChangePublic]
    count: int


@router.get("", response_model=ChangeList)
def list_changes(
    session: SessionDep,
    actor: ActorDep,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    by: str | None = Query(None, description="actor name"),
    limit: int = Query(100, ge=1, le=1000),
    offset: Offset = 0,
) -> ChangeList:
    rows, total = audit.changes(
        session,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        action=action,
        actor_name=by,
        limit=limit,
        offset=offset,
    )
    return ChangeList(
        data=[
            ChangePublic(
                id=r.id,
                at=r.at,
                actor=r.actor_name,
                request_id=r.request_id,
                action=r.action,
                object_type=r.object_type,
                object_id=r.object_id,
                object_repr=r.object_repr,
                before=r.before,
                after=r.after,
            )
            for r in rows
        ],
        count=total,
    )
