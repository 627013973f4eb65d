"""`shuzhi inbox` and `shuzhi webhooks`: a user's messages, and the signed webhooks that
tell other systems what happened."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.orm import Session

from shuzhi.cli.common import JsonOption, acting, print_json, print_table, reading, writing
from shuzhi.core.errors import PermissionDenied, ValidationFailed
from shuzhi.core.permissions import SYSTEM, Actor
from shuzhi.notify import queries, service
from shuzhi.notify.rules import DeliveryState
from shuzhi.notify.schemas import MarkedRead, WebhookCreate, WebhookIssued
from shuzhi.orgs import queries as orgs
from shuzhi.orgs.schemas import ID_MAX

inbox_app = typer.Typer(help="Your messages about your work (站内消息).", no_args_is_help=True)
webhooks_app = typer.Typer(
    help="Signed outgoing webhooks that tell other systems what happened.", no_args_is_help=True
)

OFFSET_MAX = 1_000_000
AsUser = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="The user whose inbox to use; only the local operator (no SHUZHI_TOKEN) may "
        "name another user.",
    ),
]
WebhookRef = Annotated[str, typer.Argument(help="Webhook id or name.")]
Limit = Annotated[int, typer.Option(min=1, max=1000, help="Most rows shown.")]
Offset = Annotated[int, typer.Option(min=0, max=OFFSET_MAX, help="Rows skipped.")]


def _inbox_actor(session: Session, actor: Actor, as_user: str | None) -> Actor:
    """The user whose inbox this is: the token's user, or the one the operator names."""
    if as_user is None:
        if actor is SYSTEM:
            raise ValidationFailed(
                "the local operator has no inbox; set SHUZHI_TOKEN to a user's API token "
                "or name the user with --as",
                field="as",
            )
        return actor
    account = orgs.user(session, as_user)
    if actor is SYSTEM:
        return orgs.actor_for(session, account)
    if account.id != actor.id:
        raise PermissionDenied(f"{actor.name} may use only their own inbox")
    return actor


# -- the inbox ----------------------------------------------------------------------------


@inbox_app.command("list")
def list_inbox(
    unread: bool = typer.Option(False, "--unread", help="Only unread messages."),
    limit: Limit = 50,
    offset: Offset = 0,
    as_user: AsUser = None,
    json: JsonOption = False,
) -> None:
    """Messages, unread first, then newest first."""
    with reading() as (session, actor):
        owner = _inbox_actor(session, actor, as_user)
        found, total = queries.inbox(
            session, actor=owner, unread=unread, limit=limit, offset=offset
        )
        rows = [queries.notification_public(item) for item in found]
        left = queries.unread_count(session, user_id=queries.inbox_owner(owner))
    if json:
        print_json({"data": rows, "count": total, "unread": left})
        return
    print_table(
        [
            (r.id, "" if r.read else "*", f"{r.created_at:%Y-%m-%d %H:%M}", r.kind, r.title, r.link)
            for r in rows
        ],
        ["id", "new", "at (UTC)", "kind", "title", "link"],
    )
    typer.echo(f"{len(rows)} of {total}; {left} unread")


@inbox_app.command("read")
def read_inbox(
    notification_id: int = typer.Argument(None, min=1, max=ID_MAX, help="Message id."),
    every: bool = typer.Option(False, "--all", help="Mark every unread message read."),
    as_user: AsUser = None,
    json: JsonOption = False,
) -> None:
    """Mark one message read, or all of them."""
    if (notification_id is None) == (not every):
        raise ValidationFailed("give a message id or --all, not both", field="id")
    with writing() as (session, actor):
        owner = _inbox_actor(session, actor, as_user)
        if every:
            marked = service.mark_all_read(session, actor=owner)
        else:
            was_read = queries.notification(
                session, actor=owner, notification_id=notification_id
            ).read_at
            service.mark_read(session, actor=owner, notification_id=notification_id)
            marked = 0 if was_read else 1
        session.flush()
        result = MarkedRead(
            marked=marked, unread=queries.unread_count(session, user_id=queries.inbox_owner(owner))
        )
    if json:
        print_json(result)
        return
    typer.echo(f"{result.marked} marked read; {result.unread} unread")


# -- webhooks -------------------------------------------------------------------------------


def _names(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _print_issued(issued: WebhookIssued, json: bool) -> None:
    if json:
        print_json(issued)
        return
    typer.echo(f"webhook {issued.id} {issued.name} → {issued.url}")
    typer.echo(f"secret  {issued.secret}")
    if issued.old_secret_until is not None:
        typer.echo(
            f"The old secret signs beside it until {issued.old_secret_until:%Y-%m-%d %H:%M} UTC."
        )
    typer.echo("The secret is shown this once; keep it in the receiving system's secret store.")


@webhooks_app.command("add")
def add_webhook(
    name: str = typer.Argument(..., help="A short name (lower-case letters, digits, _ or -)."),
    url: str = typer.Option(..., help="http:// or https:// URL the events are posted to."),
    events: str = typer.Option("*", help="Comma-separated event names, or * for every one."),
    json: JsonOption = False,
) -> None:
    """Register a webhook; its signing secret is shown this once."""
    data = WebhookCreate(name=name, url=url, events=_names(events))
    with writing() as (session, actor):
        webhook, secret = service.register_webhook(session, actor=actor, data=data)
        issued = WebhookIssued(**queries.webhook_public(webhook).model_dump(), secret=secret)
    _print_issued(issued, json)


@webhooks_app.command("list")
def list_webhooks(json: JsonOption = False) -> None:
    """Webhooks with their deliveries by state (secrets are never shown again)."""
    with reading() as (session, actor):
        rows = queries.webhooks_public(session, queries.webhooks(session, actor=actor))
    if json:
        print_json({"data": rows, "count": len(rows)})
        return
    print_table(
        [
            (
                r.id,
                r.name,
                r.url,
                ",".join(r.events),
                "yes" if r.active else "no",
                r.pending,
                r.delivered,
                r.failed,
            )
            for r in rows
        ],
        ["id", "name", "url", "events", "active", "pending", "delivered", "failed"],
    )


@webhooks_app.command("rotate")
def rotate_webhook(webhook: WebhookRef, json: JsonOption = False) -> None:
    """A new signing secret, used from the next delivery on; the old one signs beside it
    for loop.webhook_overlap_hours (24)."""
    with writing() as (session, actor):
        found, secret = service.rotate_secret(session, actor=actor, webhook_id=webhook)
        issued = WebhookIssued(
            **queries.webhooks_public(session, [found])[0].model_dump(), secret=secret
        )
    _print_issued(issued, json)


def _switch(webhook: str, active: bool, json: bool) -> None:
    with writing() as (session, actor):
        found = service.set_webhook_active(session, actor=actor, webhook_id=webhook, active=active)
        session.flush()
        public = queries.webhooks_public(session, [found])[0]
    if json:
        print_json(public)
        return
    typer.echo(f"webhook {public.name} {'enabled' if active else 'disabled'}")


@webhooks_app.command("disable")
def disable_webhook(webhook: WebhookRef, json: JsonOption = False) -> None:
    """Stop sending to a webhook; deliveries still waiting are given up."""
    _switch(webhook, False, json)


@webhooks_app.command("enable")
def enable_webhook(webhook: WebhookRef, json: JsonOption = False) -> None:
    """Send to a disabled webhook again (events from now on)."""
    _switch(webhook, True, json)


@webhooks_app.command("remove")
def remove_webhook(webhook: WebhookRef, json: JsonOption = False) -> None:
    """Remove a webhook and its deliveries."""
    with writing() as (session, actor):
        found = queries.webhook(session, actor=actor, ref=webhook)
        removed = {"id": found.id, "name": found.name, "removed": True}
        service.delete_webhook(session, actor=actor, webhook_id=found.id)
    if json:
        print_json(removed)
        return
    typer.echo(f"webhook {removed['name']} removed")


@webhooks_app.command("test")
def test_webhook(webhook: WebhookRef, json: JsonOption = False) -> None:
    """Send a notify.test event now and say how it went."""
    db, actor = acting()
    delivery = service.send_test(db, actor=actor, webhook_id=webhook)
    with db.session() as session:
        public = queries.delivery_public(session, delivery)
    if json:
        print_json(public)
        return
    if public.state == DeliveryState.delivered:
        typer.echo(f"delivery {public.id} delivered ({public.last_status})")
    else:
        typer.echo(
            f"delivery {public.id} not delivered: {public.last_error}; "
            f"{public.state}, attempt {public.attempts}"
        )


@webhooks_app.command("deliveries")
def list_deliveries(
    webhook: WebhookRef,
    state: str = typer.Option(None, help="pending, sending, delivered or failed."),
    limit: Limit = 50,
    offset: Offset = 0,
    json: JsonOption = False,
) -> None:
    """A webhook's deliveries, newest first, with attempts and the last error."""
    with reading() as (session, actor):
        found = queries.webhook(session, actor=actor, ref=webhook)
        items, total = queries.deliveries(
            session, actor=actor, webhook_id=found.id, state=state, limit=limit, offset=offset
        )
        rows = [queries.delivery_public(session, item) for item in items]
    if json:
        print_json({"data": rows, "count": total})
        return
    print_table(
        [
            (
                r.id,
                r.event,
                r.state,
                r.attempts,
                r.last_status or "",
                f"{r.next_at:%Y-%m-%d %H:%M:%S}" if r.next_at else "",
                r.last_error[:60],
            )
            for r in rows
        ],
        ["id", "event", "state", "attempts", "status", "next (UTC)", "last error"],
    )
    typer.echo(f"{len(rows)} of {total}")


@webhooks_app.command("deliver")
def deliver(json: JsonOption = False) -> None:
    """Send the deliveries that are due now, once (what `shuzhi worker` does each tick)."""
    db, actor = acting()
    run = service.run_due(db, actor=actor)
    if json:
        print_json({**run.model_dump(), "handled": run.handled})
        return
    typer.echo(f"{run.delivered} delivered, {run.retrying} to retry, {run.failed} given up")
