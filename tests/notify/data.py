"""Helpers shared by the notify tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM, Actor
from shuzhi.core.settings import Settings
from shuzhi.notify import service
from shuzhi.notify.models import Delivery
from shuzhi.notify.schemas import WebhookCreate

PAYLOAD = {"id": 7, "code": "WT-2026-0007", "title": "窨井盖缺失", "deadline": "2026-12-10"}


def add_webhook(
    db: Database,
    url: str,
    *,
    name: str = "dudu",
    events: list[str] | None = None,
    actor: Actor = SYSTEM,
    settings: Settings | None = None,
) -> tuple[int, str]:
    """A registered webhook: its id and its secret."""
    data = WebhookCreate(name=name, url=url, events=events or ["*"])
    with db.transaction() as session:
        webhook, secret = service.register_webhook(
            session, actor=actor, data=data, settings=settings
        )
        return webhook.id, secret


def publish(db: Database, event: str = "problem.assigned", payload: Any = None) -> int:
    with db.transaction() as session:
        return service.publish(session, event=event, payload=payload or PAYLOAD)


def deliveries(db: Database, webhook_id: int | None = None) -> list[Delivery]:
    with db.session() as session:
        stmt = select(Delivery).order_by(Delivery.id)
        if webhook_id is not None:
            stmt = stmt.where(Delivery.webhook_id == webhook_id)
        return list(session.scalars(stmt))


def only_delivery(db: Database) -> Delivery:
    (found,) = deliveries(db)
    return found
