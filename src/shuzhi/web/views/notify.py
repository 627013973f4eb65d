"""The inbox of the signed-in user, and the webhooks page for those allowed
``notify.webhooks``: registering (the secret shown in that answer only), rotating,
testing, switching off and removing, and each webhook's deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from shuzhi.core.errors import Message, NotFound, PermissionDenied, ShuzhiError
from shuzhi.core.permissions import Actor
from shuzhi.notify import queries, service
from shuzhi.notify.rules import DeliveryState
from shuzhi.notify.schemas import WebhookCreate, WebhookIssued
from shuzhi.orgs.schemas import ID_MAX
from shuzhi.web.app import render, translator_for
from shuzhi.web.flash import redirect
from shuzhi.web.session import checked_form
from shuzhi.web.views.deps import DatabaseDep, PageActor, PageNumber, SessionDep

router = APIRouter()
PAGE = 50
ItemId = Annotated[int, Path(ge=1, le=ID_MAX)]


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _pages(total: int) -> int:
    return max(1, -(-total // PAGE))


# -- the inbox ----------------------------------------------------------------------------


@router.get("/inbox")
def inbox_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    page: PageNumber,
    unread: str | None = None,
) -> Response:
    """Same payload as GET /api/v1/inbox (with ?unread=true for the unread tab)."""
    only_unread = unread in ("1", "true")
    found, total = queries.inbox(
        session, actor=actor, unread=only_unread, limit=PAGE, offset=(page - 1) * PAGE
    )
    return render(
        request,
        "notify/inbox.html",
        actor=actor,
        messages=[queries.notification_public(item) for item in found],
        count=total,
        unread=queries.unread_count(session, user_id=queries.inbox_owner(actor)),
        only_unread=only_unread,
        page=page,
        pages=_pages(total),
    )


@router.post("/inbox/read-all")
async def read_all(request: Request, database: DatabaseDep, actor: PageActor) -> Response:
    await checked_form(request)
    with database.transaction() as writer:
        marked = service.mark_all_read(writer, actor=actor)
    _ = translator_for(request)
    return redirect(request, "/inbox", ok=_("{count} marked read.").format(count=marked))


@router.post("/inbox/{notification_id}/read")
async def read_one(
    notification_id: ItemId, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    """Someone else's message is a 404 page, as a missing one is."""
    form = await checked_form(request)
    with database.transaction() as writer:
        service.mark_read(writer, actor=actor, notification_id=notification_id)
    back = "/inbox?unread=1" if form.get("unread") == "1" else "/inbox"
    _ = translator_for(request)
    return redirect(request, back, ok=_("Marked read."))


# -- webhooks -------------------------------------------------------------------------------


def _webhooks_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    issued: WebhookIssued | None = None,
    data: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    response = render(
        request,
        "notify/webhooks.html",
        actor=actor,
        status=status,
        webhooks=queries.webhooks_public(session, queries.webhooks(session, actor=actor)),
        issued=issued,
        data=data or {"name": "", "url": "", "events": "*"},
        error=error,
    )
    if issued is not None:
        response.headers["Cache-Control"] = "no-store"  # the secret stays out of any cache
    return response


@router.get("/webhooks")
def webhooks_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Same payload as GET /api/v1/webhooks."""
    return _webhooks_page(request, session, actor)


@router.post("/webhooks")
async def register_webhook(request: Request, database: DatabaseDep, actor: PageActor) -> Response:
    """Register: the answer shows the secret once; a refusal comes back with the form
    filled in and the reason, nothing saved."""
    form = await checked_form(request)
    data = {name: str(form.get(name) or "").strip() for name in ("name", "url", "events")}
    # an empty box means "not given", as a missing JSON key does in the API: every event
    events = [item.strip() for item in data["events"].split(",") if item.strip()] or ["*"]
    try:
        body = WebhookCreate(name=data["name"], url=data["url"], events=events)
        with database.transaction() as writer:
            webhook, secret = service.register_webhook(
                writer, actor=actor, data=body, settings=request.app.state.settings
            )
            issued = WebhookIssued(**queries.webhook_public(webhook).model_dump(), secret=secret)
    except ValidationError as exc:
        error, status = _first_error(exc), 422
    except PermissionDenied:
        raise
    except ShuzhiError as exc:
        error, status = exc.detail, exc.status
    else:
        with database.session() as fresh:
            return _webhooks_page(request, fresh, actor, issued=issued)
    with database.session() as fresh:
        return _webhooks_page(request, fresh, actor, data=data, error=error, status=status)


def _state_filter(state: str | None) -> str | None:
    return state if state in DeliveryState.__members__ else None


@router.get("/webhooks/{webhook_id}")
def webhook_page(
    webhook_id: ItemId,
    request: Request,
    session: SessionDep,
    actor: PageActor,
    page: PageNumber,
    state: str | None = None,
) -> Response:
    """Same payload as GET /api/v1/webhooks/{id} and its /deliveries."""
    return _webhook_page(request, session, actor, webhook_id, page=page, state=state)


def _webhook_page(
    request: Request,
    session: Session,
    actor: Actor,
    webhook_id: int,
    *,
    page: int = 1,
    state: str | None = None,
    issued: WebhookIssued | None = None,
) -> Response:
    webhook = queries.webhook(session, actor=actor, ref=webhook_id)
    state = _state_filter(state)
    found, total = queries.deliveries(
        session,
        actor=actor,
        webhook_id=webhook.id,
        state=state,
        limit=PAGE,
        offset=(page - 1) * PAGE,
    )
    response = render(
        request,
        "notify/webhook.html",
        actor=actor,
        webhook=queries.webhooks_public(session, [webhook])[0],
        deliveries=[queries.delivery_public(session, item) for item in found],
        count=total,
        state=state or "",
        states=list(DeliveryState),
        page=page,
        pages=_pages(total),
        issued=issued,
    )
    if issued is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/webhooks/{webhook_id}/rotate")
async def rotate_secret(
    webhook_id: ItemId, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    """The new secret is in this answer only: not in a cookie, a URL or the next page."""
    await checked_form(request)
    with database.transaction() as writer:
        webhook, secret = service.rotate_secret(
            writer, actor=actor, webhook_id=webhook_id, settings=request.app.state.settings
        )
        public = queries.webhooks_public(writer, [webhook])[0]
        issued = WebhookIssued(**public.model_dump(), secret=secret)
    with database.session() as fresh:
        return _webhook_page(request, fresh, actor, webhook_id, issued=issued)


@router.post("/webhooks/{webhook_id}/test")
async def test_webhook(
    webhook_id: ItemId, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    await checked_form(request)
    back = f"/webhooks/{webhook_id}"
    _ = translator_for(request)
    try:
        delivery = service.send_test(
            database, actor=actor, webhook_id=webhook_id, settings=request.app.state.settings
        )
    except (NotFound, PermissionDenied):
        raise
    except ShuzhiError as exc:
        return redirect(request, back, error=exc.detail)
    if delivery.state == DeliveryState.delivered:
        return redirect(request, back, ok=_("Test event delivered."))
    return redirect(
        request,
        back,
        error=_("Test event not delivered: {error}").format(error=delivery.last_error),
    )


def _acted(request: Request, database: Any, back: str, act: Any) -> Response:
    try:
        with database.transaction() as writer:
            act(writer)
    except (NotFound, PermissionDenied):
        raise
    except ShuzhiError as exc:
        return redirect(request, back, error=exc.detail)
    _ = translator_for(request)
    return redirect(request, back, ok=_("Done."))


@router.post("/webhooks/{webhook_id}/{action}")
async def switch_webhook(
    webhook_id: ItemId, action: str, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    """Enable, disable or remove (``delete``)."""
    await checked_form(request)
    if action == "delete":
        return _acted(
            request,
            database,
            "/webhooks",
            lambda writer: service.delete_webhook(writer, actor=actor, webhook_id=webhook_id),
        )
    if action not in ("enable", "disable"):
        raise NotFound(
            Message("no webhook action {action!r}; use enable, disable or delete", action=action)
        )
    return _acted(
        request,
        database,
        f"/webhooks/{webhook_id}",
        lambda writer: service.set_webhook_active(
            writer, actor=actor, webhook_id=webhook_id, active=action == "enable"
        ),
    )
