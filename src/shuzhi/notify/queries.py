"""Reading notify: a user's inbox, the webhooks and their deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from shuzhi.core import clock
from shuzhi.core.errors import Message, NotFound, Unauthenticated, ValidationFailed
from shuzhi.core.permissions import Actor, require
from shuzhi.notify.models import Delivery, Notification, Webhook
from shuzhi.notify.rules import DeliveryState
from shuzhi.notify.schemas import DeliveryPublic, NotificationPublic, WebhookPublic
from shuzhi.orgs.schemas import ID_MAX

WEBHOOKS = "notify.webhooks"


def inbox_owner(actor: Actor) -> int:
    """The user whose inbox ``actor`` reads: only its own, and only a user has one."""
    if not actor.authenticated:
        raise Unauthenticated(Message("log in or present an API token"))
    if actor.id is None:
        raise ValidationFailed(
            Message("{name} is not a user and has no inbox", name=actor.name), field="user"
        )
    return actor.id


# -- the inbox ----------------------------------------------------------------------------


def inbox(
    session: Session, *, actor: Actor, unread: bool = False, limit: int = 50, offset: int = 0
) -> tuple[list[Notification], int]:
    """The actor's messages, unread first and then newest first, and how many match."""
    user_id = inbox_owner(actor)
    stmt = select(Notification).where(Notification.user_id == user_id)
    if unread:
        stmt = stmt.where(Notification.read_at.is_(None))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(
            case((Notification.read_at.is_(None), 0), else_=1),
            Notification.created_at.desc(),
            Notification.id.desc(),
        )
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


def unread_count(session: Session, *, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


def notification(session: Session, *, actor: Actor, notification_id: int) -> Notification:
    """One of the actor's messages; someone else's is not found, as a missing one is."""
    user_id = inbox_owner(actor)
    found = session.get(Notification, notification_id) if notification_id <= ID_MAX else None
    if found is None or found.user_id != user_id:
        raise NotFound(
            Message("no message {notification_id} in your inbox", notification_id=notification_id),
            field="id",
        )
    return found


def notification_public(item: Notification) -> NotificationPublic:
    return NotificationPublic(
        id=item.id,
        kind=item.kind,
        title=item.title,
        body=item.body,
        link=item.link,
        object_type=item.object_type,
        object_id=item.object_id,
        created_at=item.created_at,
        read_at=item.read_at,
        read=item.read_at is not None,
    )


# -- webhooks ------------------------------------------------------------------------------


def webhooks(session: Session, *, actor: Actor) -> list[Webhook]:
    require(actor, WEBHOOKS, what=Message("webhooks"))
    return list(session.scalars(select(Webhook).order_by(Webhook.name)))


def webhook(session: Session, *, actor: Actor, ref: int | str) -> Webhook:
    """A webhook by id, or by name (a name never starts with a digit)."""
    require(actor, WEBHOOKS, what=Message("webhooks"))
    if isinstance(ref, int) or ref.isdigit():
        found = session.get(Webhook, int(ref)) if 0 < int(ref) <= ID_MAX else None
    else:
        found = session.scalar(select(Webhook).where(Webhook.name == ref))
    if found is None:
        raise NotFound(Message("no webhook {ref!r}", ref=ref), field="webhook")
    return found


def delivery_counts(session: Session, webhook_ids: list[int]) -> dict[int, dict[str, int]]:
    """Deliveries of each webhook by state, in one query."""
    counts: dict[int, dict[str, int]] = {webhook_id: {} for webhook_id in webhook_ids}
    if not webhook_ids:
        return counts
    rows = session.execute(
        select(Delivery.webhook_id, Delivery.state, func.count())
        .where(Delivery.webhook_id.in_(webhook_ids))
        .group_by(Delivery.webhook_id, Delivery.state)
    )
    for webhook_id, state, count in rows:
        counts[webhook_id][state] = count
    return counts


def old_secret_until(item: Webhook) -> datetime | None:
    """Until when a rotated secret still signs beside the new one; None once it does not."""
    until = item.previous_until
    return until if item.previous_salt and until is not None and clock.now() < until else None


def webhook_public(item: Webhook, counts: dict[str, int] | None = None) -> WebhookPublic:
    counts = counts or {}
    return WebhookPublic(
        id=item.id,
        name=item.name,
        url=item.url,
        events=list(item.events),
        active=item.active,
        created_by=item.created_by,
        created_at=item.created_at,
        pending=counts.get(DeliveryState.pending, 0) + counts.get(DeliveryState.sending, 0),
        delivered=counts.get(DeliveryState.delivered, 0),
        failed=counts.get(DeliveryState.failed, 0),
        old_secret_until=old_secret_until(item),
    )


def webhooks_public(session: Session, items: list[Webhook]) -> list[WebhookPublic]:
    counts = delivery_counts(session, [item.id for item in items])
    return [webhook_public(item, counts[item.id]) for item in items]


# -- deliveries ----------------------------------------------------------------------------


def deliveries(
    session: Session,
    *,
    actor: Actor,
    webhook_id: int,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Delivery], int]:
    """A webhook's deliveries, newest first, and how many match."""
    hook = webhook(session, actor=actor, ref=webhook_id)
    stmt = select(Delivery).where(Delivery.webhook_id == hook.id)
    if state:
        if state not in DeliveryState.__members__:
            raise ValidationFailed(
                Message(
                    "state is one of {choices}, not {state!r}",
                    choices=DeliveryState.choices(),
                    state=state,
                ),
                field="state",
            )
        stmt = stmt.where(Delivery.state == state)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Delivery.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def delivery_public(session: Session, item: Delivery) -> DeliveryPublic:
    hook = session.get(Webhook, item.webhook_id)  # one webhook's list: from the identity map
    settled = item.state in (DeliveryState.delivered, DeliveryState.failed)
    return DeliveryPublic(
        id=item.id,
        webhook_id=item.webhook_id,
        webhook=hook.name if hook else "",
        event=item.event,
        payload=item.payload,
        state=item.state,
        attempts=item.attempts,
        next_at=None if settled else item.next_at,
        last_status=item.last_status,
        last_error=item.last_error,
        created_at=item.created_at,
        delivered_at=item.delivered_at,
    )
