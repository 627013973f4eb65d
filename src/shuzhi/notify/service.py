"""Telling people and other systems: inbox messages for users, signed webhooks for systems.

Both are written in the caller's transaction, so a message exists exactly when the change
that caused it does; webhook deliveries are sent later by the ``notify.deliver`` job, so
an endpoint that is down never blocks the change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shuzhi.core import clock
from shuzhi.notify.models import Delivery, Notification, Webhook


def notify(
    session: Session,
    *,
    user_ids: Iterable[int],
    key: str,
    kind: str,
    title: str,
    body: str = "",
    link: str = "",
    object_type: str = "",
    object_id: str = "",
) -> int:
    """Put a message in each user's inbox once: a user who already has ``key`` gets no
    second copy. Returns how many were added."""
    users = sorted(set(user_ids))
    if not users:
        return 0
    have = set(
        session.scalars(
            select(Notification.user_id).where(
                Notification.key == key, Notification.user_id.in_(users)
            )
        )
    )
    now = clock.now()
    added = 0
    for user_id in users:
        if user_id in have:
            continue
        session.add(
            Notification(
                user_id=user_id,
                key=key,
                kind=kind,
                title=title,
                body=body,
                link=link,
                object_type=object_type,
                object_id=object_id,
                created_at=now,
            )
        )
        added += 1
    return added


def publish(session: Session, *, event: str, payload: dict[str, Any]) -> int:
    """Queue ``event`` for every active webhook that listens to it."""
    now = clock.now()
    queued = 0
    for webhook in session.scalars(select(Webhook).where(Webhook.active.is_(True))):
        if "*" in webhook.events or event in webhook.events:
            session.add(
                Delivery(
                    webhook_id=webhook.id,
                    event=event,
                    payload=payload,
                    state="pending",
                    attempts=0,
                    next_at=now,
                    created_at=now,
                )
            )
            queued += 1
    return queued
