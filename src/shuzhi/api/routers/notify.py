"""The caller's inbox, and the signed webhooks that tell other systems what happened."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response, status

from shuzhi.api import PREFIX
from shuzhi.api.deps import ActorDep, DatabaseDep, IdPath, Offset, SessionDep
from shuzhi.notify import queries, service
from shuzhi.notify.rules import DeliveryState
from shuzhi.notify.schemas import (
    DeliveryList,
    DeliveryPublic,
    MarkedRead,
    NotificationList,
    NotificationPublic,
    WebhookCreate,
    WebhookIssued,
    WebhookList,
    WebhookPublic,
)

inbox_router = APIRouter(prefix=f"{PREFIX}/inbox", tags=["inbox"])
router = APIRouter(prefix=f"{PREFIX}/webhooks", tags=["webhooks"])

Limit = Query(50, ge=1, le=1000)


# -- the inbox ----------------------------------------------------------------------------


@inbox_router.get("", response_model=NotificationList)
def inbox(
    session: SessionDep,
    actor: ActorDep,
    unread: bool = Query(False, description="only unread messages"),
    limit: int = Limit,
    offset: Offset = 0,
) -> NotificationList:
    """The caller's messages, unread first, then newest first."""
    found, total = queries.inbox(session, actor=actor, unread=unread, limit=limit, offset=offset)
    return NotificationList(
        data=[queries.notification_public(item) for item in found],
        count=total,
        unread=queries.unread_count(session, user_id=queries.inbox_owner(actor)),
    )


@inbox_router.post("/read-all", response_model=MarkedRead)
def read_all(database: DatabaseDep, actor: ActorDep) -> MarkedRead:
    with database.transaction() as session:
        marked = service.mark_all_read(session, actor=actor)
        return MarkedRead(
            marked=marked, unread=queries.unread_count(session, user_id=queries.inbox_owner(actor))
        )


@inbox_router.post("/{notification_id}/read", response_model=NotificationPublic)
def read_one(notification_id: IdPath, database: DatabaseDep, actor: ActorDep) -> NotificationPublic:
    """Mark one of the caller's messages read; anyone else's is not found."""
    with database.transaction() as session:
        return queries.notification_public(
            service.mark_read(session, actor=actor, notification_id=notification_id)
        )


# -- webhooks -------------------------------------------------------------------------------


@router.get("", response_model=WebhookList)
def list_webhooks(session: SessionDep, actor: ActorDep) -> WebhookList:
    found = queries.webhooks_public(session, queries.webhooks(session, actor=actor))
    return WebhookList(data=found, count=len(found))


@router.post("", response_model=WebhookIssued, status_code=status.HTTP_201_CREATED)
def register_webhook(body: WebhookCreate, database: DatabaseDep, actor: ActorDep) -> WebhookIssued:
    """A new webhook; its signing secret is in this answer only."""
    with database.transaction() as session:
        webhook, secret = service.register_webhook(session, actor=actor, data=body)
        return WebhookIssued(**queries.webhook_public(webhook).model_dump(), secret=secret)


@router.get("/{webhook_id}", response_model=WebhookPublic)
def get_webhook(webhook_id: IdPath, session: SessionDep, actor: ActorDep) -> WebhookPublic:
    found = queries.webhook(session, actor=actor, ref=webhook_id)
    return queries.webhooks_public(session, [found])[0]


@router.post("/{webhook_id}/rotate", response_model=WebhookIssued)
def rotate_secret(webhook_id: IdPath, database: DatabaseDep, actor: ActorDep) -> WebhookIssued:
    """A new signing secret, in this answer only; the old one signs beside it for
    loop.webhook_overlap_hours (24)."""
    with database.transaction() as session:
        webhook, secret = service.rotate_secret(session, actor=actor, webhook_id=webhook_id)
        public = queries.webhooks_public(session, [webhook])[0]
        return WebhookIssued(**public.model_dump(), secret=secret)


@router.post("/{webhook_id}/enable", response_model=WebhookPublic)
def enable_webhook(webhook_id: IdPath, database: DatabaseDep, actor: ActorDep) -> WebhookPublic:
    with database.transaction() as session:
        webhook = service.set_webhook_active(
            session, actor=actor, webhook_id=webhook_id, active=True
        )
        session.flush()
        return queries.webhooks_public(session, [webhook])[0]


@router.post("/{webhook_id}/disable", response_model=WebhookPublic)
def disable_webhook(webhook_id: IdPath, database: DatabaseDep, actor: ActorDep) -> WebhookPublic:
    """Stop sending; deliveries still waiting are given up."""
    with database.transaction() as session:
        webhook = service.set_webhook_active(
            session, actor=actor, webhook_id=webhook_id, active=False
        )
        session.flush()
        return queries.webhooks_public(session, [webhook])[0]


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(webhook_id: IdPath, database: DatabaseDep, actor: ActorDep) -> Response:
    """Remove the webhook and its deliveries."""
    with database.transaction() as session:
        service.delete_webhook(session, actor=actor, webhook_id=webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/test", response_model=DeliveryPublic)
def test_webhook(webhook_id: IdPath, database: DatabaseDep, actor: ActorDep) -> DeliveryPublic:
    """Send a ``notify.test`` event now; the answer is the delivery, delivered or with the
    endpoint's error (then retried like any other)."""
    delivery = service.send_test(database, actor=actor, webhook_id=webhook_id)
    with database.session() as session:
        return queries.delivery_public(session, delivery)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList)
def list_deliveries(
    webhook_id: IdPath,
    session: SessionDep,
    actor: ActorDep,
    state: DeliveryState | None = None,
    limit: int = Limit,
    offset: Offset = 0,
) -> DeliveryList:
    found, total = queries.deliveries(
        session,
        actor=actor,
        webhook_id=webhook_id,
        state=state.value if state else None,
        limit=limit,
        offset=offset,
    )
    rows = [queries.delivery_public(session, item) for item in found]
    return DeliveryList(data=rows, count=total)
