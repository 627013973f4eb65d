"""Telling people and other systems: inbox messages for users, signed webhooks for systems.

Both are written in the caller's transaction, so a message exists exactly when the change
that caused it does; webhook deliveries are sent later by the ``notify.deliver`` job, so
an endpoint that is down never blocks the change.
"""

from __future__ import annotations

import http.client
import json
import logging
import secrets
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from shuzhi.core import audit, clock, dialect
from shuzhi.core.db import Database
from shuzhi.core.errors import Conflict, Message, ValidationFailed
from shuzhi.core.permissions import SYSTEM, Actor, require
from shuzhi.core.plugins import Job, hookimpl
from shuzhi.core.settings import Settings, get_settings
from shuzhi.notify import queries
from shuzhi.notify.models import Delivery, Notification, Webhook
from shuzhi.notify.rules import (
    CANCEL,
    CLAIM,
    DELIVER,
    GIVE_UP,
    HEADER_DELIVERY,
    HEADER_EVENT,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    RETRY,
    TEST_EVENT,
    DeliveryState,
    backoff_seconds,
    derive_secret,
    host_allowed,
    sign,
    timestamp,
)
from shuzhi.notify.schemas import DeliveryRun, WebhookCreate

log = logging.getLogger(__name__)

# -- the inbox ----------------------------------------------------------------------------


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
    second copy, even from a concurrent transaction. Returns how many were added."""
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
        added += dialect.insert_new(
            session,
            Notification.__table__,
            {
                "user_id": user_id,
                "key": key,
                "kind": kind,
                "title": title[:300],
                "body": body,
                "link": link[:300],
                "object_type": object_type,
                "object_id": object_id,
                "created_at": now,
                "read_at": None,
            },
            unique=("user_id", "key"),
        )
    return added


def mark_read(session: Session, *, actor: Actor, notification_id: int) -> Notification:
    """Mark one of the actor's own messages read (again: a no-op)."""
    found = queries.notification(session, actor=actor, notification_id=notification_id)
    if found.read_at is None:
        found.read_at = clock.now()
    return found


def mark_all_read(session: Session, *, actor: Actor) -> int:
    """Mark every unread message of the actor read; returns how many."""
    user_id = queries.inbox_owner(actor)
    marked = session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=clock.now())
        .execution_options(synchronize_session=False)
    ).rowcount
    return marked or 0


# -- webhooks ------------------------------------------------------------------------------


def _plain_json(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as the JSON it is sent as: dates and decimals become text here, not
    when the delivery is flushed (which would fail the caller's change)."""
    return json.loads(json.dumps(payload, ensure_ascii=False, default=str))


def _queue(session: Session, webhook: Webhook, *, event: str, payload: dict[str, Any]) -> Delivery:
    now = clock.now()
    delivery = Delivery(
        webhook_id=webhook.id,
        event=event,
        payload=payload,
        state=DeliveryState.pending.value,
        attempts=0,
        next_at=now,
        last_error="",
        created_at=now,
    )
    session.add(delivery)
    return delivery


def publish(session: Session, *, event: str, payload: dict[str, Any]) -> int:
    """Queue ``event`` for every active webhook that listens to it."""
    queued = 0
    data = None
    for webhook in session.scalars(select(Webhook).where(Webhook.active.is_(True))):
        if "*" in webhook.events or event in webhook.events:
            data = _plain_json(payload) if data is None else data
            _queue(session, webhook, event=event, payload=data)
            queued += 1
    return queued


def check_url(url: str, settings: Settings) -> str:
    """The URL a webhook may be registered for: http(s), a host on ``loop.webhook_hosts``
    when that list is not empty, no credentials and no fragment."""
    if any(char.isspace() or ord(char) < 32 for char in url):
        raise ValidationFailed(
            Message("the URL may not hold spaces or control characters"), field="url"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(Message("the URL must be an http:// or https:// URL"), field="url")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise ValidationFailed(Message("the URL takes no credentials and no fragment"), field="url")
    try:
        port = parts.port
    except ValueError:
        raise ValidationFailed(Message("the URL has an invalid port"), field="url") from None
    if not host_allowed(parts.hostname, port, settings.loop.webhook_hosts):
        where = f"{parts.hostname}:{port}" if port else parts.hostname
        raise ValidationFailed(
            Message(
                "{where} is not on the operator's allow-list of webhook "
                "hosts (SHUZHI_LOOP__WEBHOOK_HOSTS)",
                where=where,
            ),
            field="url",
        )
    return url


def register_webhook(
    session: Session, *, actor: Actor, data: WebhookCreate, settings: Settings | None = None
) -> tuple[Webhook, str]:
    """A new webhook and its secret; the secret is returned this once."""
    settings = settings or get_settings()
    require(actor, queries.WEBHOOKS, what=Message("webhooks"))
    url = check_url(data.url, settings)
    if session.scalar(select(Webhook.id).where(Webhook.name == data.name)) is not None:
        raise Conflict(Message("webhook {name!r} already exists", name=data.name), field="name")
    webhook = Webhook(
        name=data.name,
        url=url,
        events=list(data.events),
        salt=secrets.token_hex(16),
        active=True,
        created_by=actor.name,
        created_at=clock.now(),
    )
    session.add(webhook)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="notify_webhook.create",
        object_type="notify_webhook",
        object_id=webhook.id,
        object_repr=webhook.name,
        after=audit.snapshot(webhook),
    )
    return webhook, derive_secret(settings.secret(), salt=webhook.salt)


def rotate_secret(
    session: Session, *, actor: Actor, webhook_id: int | str, settings: Settings | None = None
) -> tuple[Webhook, str]:
    """A new secret, at once: the next delivery is signed with it, and for
    ``loop.webhook_overlap_hours`` with the old one beside it."""
    settings = settings or get_settings()
    webhook = queries.webhook(session, actor=actor, ref=webhook_id)
    overlap = timedelta(hours=settings.loop.webhook_overlap_hours)
    webhook.previous_salt = webhook.salt if overlap else None
    webhook.previous_until = clock.now() + overlap if overlap else None
    webhook.salt = secrets.token_hex(16)
    audit.record(
        session,
        actor=actor,
        action="notify_webhook.rotate",
        object_type="notify_webhook",
        object_id=webhook.id,
        object_repr=webhook.name,
    )
    return webhook, derive_secret(settings.secret(), salt=webhook.salt)


def set_webhook_active(
    session: Session, *, actor: Actor, webhook_id: int | str, active: bool
) -> Webhook:
    """Switch a webhook on or off; switching it off gives up what still waits."""
    webhook = queries.webhook(session, actor=actor, ref=webhook_id)
    before = webhook.active
    webhook.active = active
    if before and not active:
        session.execute(
            update(Delivery)
            .where(Delivery.webhook_id == webhook.id, Delivery.state.in_(CANCEL.sources))
            .values(state=CANCEL.target, last_error="webhook switched off")
            .execution_options(synchronize_session=False)
        )
    audit.record(
        session,
        actor=actor,
        action="notify_webhook.enable" if active else "notify_webhook.disable",
        object_type="notify_webhook",
        object_id=webhook.id,
        object_repr=webhook.name,
        before={"active": before},
        after={"active": active},
    )
    return webhook


def delete_webhook(session: Session, *, actor: Actor, webhook_id: int | str) -> None:
    """Remove a webhook and its deliveries; one being sent finds nothing to record."""
    webhook = queries.webhook(session, actor=actor, ref=webhook_id)
    audit.record(
        session,
        actor=actor,
        action="notify_webhook.delete",
        object_type="notify_webhook",
        object_id=webhook.id,
        object_repr=webhook.name,
        before=audit.snapshot(webhook),
    )
    session.execute(delete(Delivery).where(Delivery.webhook_id == webhook.id))
    session.delete(webhook)
    session.flush()


def send_test(
    db: Database, *, actor: Actor, webhook_id: int | str, settings: Settings | None = None
) -> Delivery:
    """Queue a ``notify.test`` event for one webhook and try it at once (outside any
    transaction); the delivery tells how it went, and is retried like any other."""
    settings = settings or get_settings()
    with db.transaction() as session:
        webhook = queries.webhook(session, actor=actor, ref=webhook_id)
        if not webhook.active:
            raise Conflict(Message("webhook {name} is switched off", name=webhook.name))
        delivery = _queue(
            session,
            webhook,
            event=TEST_EVENT,
            payload={"webhook": webhook.name, "sent_by": actor.name, "message": "test"},
        )
        session.flush()
        delivery_id = delivery.id
    attempt(db, delivery_id=delivery_id, settings=settings)
    with db.session() as session:
        found = session.get(Delivery, delivery_id)
        if found is None:  # the webhook was removed meanwhile
            raise Conflict(
                Message(
                    "webhook {webhook_id} was removed while it was tested", webhook_id=webhook_id
                )
            )
        return found


# -- sending -------------------------------------------------------------------------------

BATCH = 100  # deliveries one pass takes on; the worker comes back at once for more
ERROR_TEXT = 500  # characters of an endpoint's answer kept as the last error


@dataclass(frozen=True)
class Outgoing:
    """A claimed delivery, read in the claim's transaction and sent after it."""

    delivery_id: int
    url: str
    salt: str
    previous_salt: str | None  # a rotated secret's, while it still signs
    event: str
    body: bytes
    attempts: int
    claim: datetime  # the lease ``next_at`` was set to: only its holder records the outcome


def body_of(delivery: Delivery) -> bytes:
    """The JSON body of a delivery, the same bytes at every attempt."""
    document = {
        "event": delivery.event,
        "id": delivery.id,
        "created_at": timestamp(delivery.created_at),
        "data": delivery.payload,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _active_webhooks() -> Any:
    return select(Webhook.id).where(Webhook.active.is_(True))


def _claim(db: Database, delivery_id: int, lease: timedelta) -> Outgoing | None:
    """Take a due delivery in one UPDATE, so that two workers never both send it; the
    claim lapses at ``now + lease`` (its worker died), when another may take it over."""
    now = clock.now()
    until = now + lease
    with db.transaction() as session:
        claimed = session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.state.in_(CLAIM.sources),
                Delivery.next_at <= now,
                Delivery.webhook_id.in_(_active_webhooks()),
            )
            .values(state=CLAIM.target, next_at=until)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            return None
        delivery, webhook = session.execute(
            select(Delivery, Webhook)
            .join(Webhook, Webhook.id == Delivery.webhook_id)
            .where(Delivery.id == delivery_id)
        ).one()
        return Outgoing(
            delivery_id=delivery.id,
            url=webhook.url,
            salt=webhook.salt,
            previous_salt=webhook.previous_salt if queries.old_secret_until(webhook) else None,
            event=delivery.event,
            body=body_of(delivery),
            attempts=delivery.attempts,
            claim=until,
        )


def _one_line(text: str) -> str:
    return " ".join(text.split())[:ERROR_TEXT]


def _some_of(response: http.client.HTTPResponse) -> bytes:
    """The start of a refusal's body, to say why; whatever can be read of it."""
    try:
        return response.read(ERROR_TEXT * 4)
    except (OSError, http.client.HTTPException):
        return b""


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """POST ``body`` to ``url``: the status (None when no answer came) and, unless it is
    2xx, why it failed. Redirects are never followed; ``timeout`` bounds the connection
    and each wait for the answer."""
    parts = urlsplit(url)
    target = quote(parts.path or "/", safe="/-._~!$&'()*+,;=:@%")
    if parts.query:
        target += "?" + quote(parts.query, safe="/-._~!$&'()*+,;=:@%?")
    connection: http.client.HTTPConnection = (
        http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout)
        if parts.scheme == "https"
        else http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    )
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        status = response.status
        # a success is its status: a body trickling in must not turn it into a failure
        answer = b"" if 200 <= status < 300 else _some_of(response)
    except TimeoutError:
        return None, f"no answer within {timeout:g} s"
    except ssl.SSLError as exc:
        return None, f"TLS failed: {exc.reason or exc}"
    except ConnectionRefusedError:
        return None, "connection refused"
    except OSError as exc:
        return None, _one_line(exc.strerror or str(exc) or type(exc).__name__)
    except http.client.HTTPException as exc:
        return None, f"bad answer: {type(exc).__name__}"
    finally:
        connection.close()
    if 200 <= status < 300:
        return status, ""
    if 300 <= status < 400:
        where = response.getheader("location") or "nowhere"
        return status, _one_line(f"HTTP {status}: redirect to {where}, which is not followed")
    text = answer.decode("utf-8", errors="replace")
    return status, _one_line(f"HTTP {status}: {text}" if text.strip() else f"HTTP {status}")


def _record(
    db: Database, outgoing: Outgoing, status: int | None, error: str, settings: Settings
) -> str | None:
    """The outcome of an attempt: delivered, retried after a backoff, or given up. None
    when the claim was lost meanwhile (it lapsed, or the webhook was removed)."""
    now = clock.now()
    attempts = outgoing.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "last_status": status, "last_error": error}
    if not error:
        move = DELIVER
        values.update(last_error="", delivered_at=now, next_at=now)
    elif attempts >= settings.loop.webhook_attempts:
        move = GIVE_UP
        values.update(next_at=now)
    else:
        move = RETRY
        wait = backoff_seconds(attempts=attempts, base=settings.loop.webhook_backoff_seconds)
        values.update(next_at=now + timedelta(seconds=wait))
    with db.transaction() as session:
        recorded = session.execute(
            update(Delivery)
            .where(
                Delivery.id == outgoing.delivery_id,
                Delivery.state.in_(move.sources),
                Delivery.next_at == outgoing.claim,
            )
            .values(state=move.target, **values)
            .execution_options(synchronize_session=False)
        ).rowcount
    if recorded != 1:
        log.warning("delivery %s: claim lost before its outcome was recorded", outgoing.delivery_id)
        return None
    return move.target


def attempt(db: Database, *, delivery_id: int, settings: Settings | None = None) -> str | None:
    """Claim one due delivery, send it, record the outcome; returns the state it went to,
    or None when it was not due or another worker has it. No transaction is open while
    the endpoint is called."""
    settings = settings or get_settings()
    timeout = settings.loop.webhook_timeout_seconds
    outgoing = _claim(db, delivery_id, timedelta(seconds=timeout + 60))
    if outgoing is None:
        return None
    sent_at = timestamp(clock.now())
    secret = derive_secret(settings.secret(), salt=outgoing.salt)
    previous = (
        derive_secret(settings.secret(), salt=outgoing.previous_salt)
        if outgoing.previous_salt
        else None
    )
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "shuzhi-webhooks",
        HEADER_EVENT: outgoing.event,
        HEADER_DELIVERY: str(outgoing.delivery_id),
        HEADER_TIMESTAMP: sent_at,
        HEADER_SIGNATURE: sign(secret, sent_at, outgoing.body, previous=previous),
    }
    try:
        status, error = post(outgoing.url, outgoing.body, headers, timeout)
    except Exception as exc:  # one bad delivery must not take the worker down
        log.exception("delivery %s could not be sent", outgoing.delivery_id)
        status, error = None, _one_line(f"{type(exc).__name__}: {exc}")
    return _record(db, outgoing, status, error, settings)


def run_due(
    db: Database,
    *,
    actor: Actor = SYSTEM,
    settings: Settings | None = None,
    limit: int = BATCH,
) -> DeliveryRun:
    """Send the deliveries whose time has come, one after another."""
    require(actor, queries.WEBHOOKS, what=Message("webhooks"))
    settings = settings or get_settings()
    now = clock.now()
    with db.session() as session:
        due = list(
            session.scalars(
                select(Delivery.id)
                .where(
                    Delivery.state.in_(CLAIM.sources),
                    Delivery.next_at <= now,
                    Delivery.webhook_id.in_(_active_webhooks()),
                )
                .order_by(Delivery.next_at, Delivery.id)
                .limit(limit)
            )
        )
    run = DeliveryRun()
    for delivery_id in due:
        state = attempt(db, delivery_id=delivery_id, settings=settings)
        if state == DeliveryState.delivered:
            run.delivered += 1
        elif state == DeliveryState.pending:
            run.retrying += 1
        elif state == DeliveryState.failed:
            run.failed += 1
    return run


def deliver_due(db: Database, worker: str = "") -> int:
    """The worker's job: every due delivery; returns how many were tried."""
    return run_due(db).handled


@hookimpl
def shuzhi_jobs() -> list[Job]:
    return [Job("notify.deliver", deliver_due)]
