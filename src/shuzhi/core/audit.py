"""The change log: who changed what, in which request, from what to what."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from shuzhi.core import clock
from shuzhi.core.context import current_request_id
from shuzhi.core.errors import Message
from shuzhi.core.models import ChangeLog
from shuzhi.core.permissions import Actor, require


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def snapshot(obj: Any) -> dict[str, Any]:
    """The column values of an ORM object, JSON-safe, without columns marked secret."""
    mapper = inspect(obj).mapper
    return {
        column.key: _plain(getattr(obj, column.key))
        for column in mapper.column_attrs
        if not column.columns[0].info.get("secret")
    }


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object,
    object_repr: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> ChangeLog:
    """Add a change log row to the caller's transaction; it commits or rolls back with it."""
    if before is not None and after is not None:
        changed = {key for key in set(before) | set(after) if before.get(key) != after.get(key)}
        before = {key: before.get(key) for key in sorted(changed)}
        after = {key: after.get(key) for key in sorted(changed)}
    row = ChangeLog(
        at=clock.now(),
        actor_id=actor.id,
        actor_name=actor.name,
        request_id=current_request_id(),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        object_repr=object_repr[:300],
        before=_plain(before) if before is not None else None,
        after=_plain(after) if after is not None else None,
    )
    session.add(row)
    return row


def changes(
    session: Session,
    *,
    actor: Actor,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    actor_name: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[ChangeLog], int]:
    """The change log, newest first; needs ``audit.read`` over the whole platform."""
    require(actor, "audit.read", what=Message("the change log"))
    stmt = select(ChangeLog)
    for column, value in (
        (ChangeLog.object_type, object_type),
        (ChangeLog.object_id, object_id),
        (ChangeLog.action, action),
        (ChangeLog.actor_name, actor_name),
    ):
        if value:
            stmt = stmt.where(column == value)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(ChangeLog.id.desc()).limit(limit).offset(offset))
    return list(rows), total
