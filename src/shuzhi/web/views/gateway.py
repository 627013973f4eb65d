"""The sharing gateway in the cockpit: applying for a resource, the provider's inbox and
decisions, grants, consumer systems and their credentials, usage, and the access log with
its flags and its chain check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from shuzhi.catalog import queries as catalog
from shuzhi.catalog.models import Resource
from shuzhi.core.errors import Conflict, Message, NotFound, PermissionDenied, ShuzhiError
from shuzhi.core.permissions import Actor, allowed
from shuzhi.gateway import oversight, queries, service
from shuzhi.gateway.models import Application, Consumer, Grant
from shuzhi.gateway.rules import APPLICATION, GRANT, NotShared, Right
from shuzhi.gateway.schemas import ApplicationCreate, ConsumerCreate, CredentialIssued, Decision
from shuzhi.orgs import queries as orgs
from shuzhi.orgs.schemas import ID_MAX
from shuzhi.web.app import render, translator_for
from shuzhi.web.flash import redirect
from shuzhi.web.session import checked_form
from shuzhi.web.views.deps import DatabaseDep, PageActor, PageNumber, SessionDep

router = APIRouter()
PAGE = 50
ItemId = Annotated[int, Path(ge=1, le=ID_MAX)]  # a larger id names no row and overflows

# the gateway's own roles; auditors see its pages too (the queries let them see everything)
GATEWAY_ACTIONS = (
    "gateway.apply",
    "gateway.decide",
    "gateway.manage_consumers",
    "gateway.operate",
)
# the transitions people fire from a page; escalate and expire are the background jobs'
APPLICATION_BUTTONS = ("approve", "reject", "withdraw")
GRANT_BUTTONS = ("suspend", "resume", "revoke")


def _require_gateway(actor: Actor) -> None:
    if not any(actor.scopes_for(action) for action in (*GATEWAY_ACTIONS, "audit.read")):
        raise PermissionDenied(
            Message("{name} has no part in the sharing gateway", name=actor.name)
        )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _text(form: Any, name: str) -> str:
    return str(form.get(name) or "").strip()


def _pages(total: int) -> int:
    return max(1, -(-total // PAGE))


# -- applying for a resource --------------------------------------------------------------


def _apply_target(session: Session, actor: Actor, code: str) -> Resource:
    """The resource, when it can be applied for at all; the service checks the rest."""
    resource = catalog.get(session, actor=actor, code=code)
    if not actor.scopes_for("gateway.apply"):
        raise PermissionDenied(Message("{name} may not apply for resources", name=actor.name))
    if resource.state != "published":
        raise Conflict(Message("resource {code} is not published", code=code), field="resource")
    if resource.sharing == "none":
        raise NotShared(
            Message("resource {code} is 不予共享 (not shared) and cannot be applied for", code=code)
        )
    return resource


def _applying_consumers(session: Session, actor: Actor) -> list[Consumer]:
    """The enabled consumer systems the actor may apply for."""
    return [
        item
        for item in queries.consumers(session, actor=actor)
        if item.active and allowed(actor, "gateway.apply", queries.consumer_scope(item))
    ]


def _apply_page(
    request: Request,
    session: Session,
    actor: Actor,
    resource: Resource,
    *,
    data: dict[str, Any],
    error: str | None = None,
    status: int = 200,
) -> Response:
    consumers = _applying_consumers(session, actor)
    return render(
        request,
        "gateway/apply.html",
        actor=actor,
        status=status,
        error=error,
        data=data,
        resource=catalog.public(session, actor=actor, resource=resource),
        consumers=[queries.consumer_public(session, item) for item in consumers],
        rights=list(Right),
        can_register=bool(actor.scopes_for("gateway.manage_consumers")),
    )


@router.get("/catalog/{code}/apply")
def apply_form(code: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The form whose post is POST /api/v1/gateway/applications."""
    resource = _apply_target(session, actor, code)
    data = {
        "consumer": "",
        "fields": [field.name for field in resource.fields],
        "clear_fields": [],
        "rights": [Right.verify.value if resource.grade == "L4" else Right.read.value],
    }
    return _apply_page(request, session, actor, resource, data=data)


def _application_data(form: Any, code: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: _text(form, name)
        for name in (
            "consumer",
            "purpose_code",
            "purpose",
            "legal_basis",
            "region",
            "valid_from",
            "valid_until",
        )
    }
    for name in ("fields", "clear_fields", "rights"):
        data[name] = [str(value) for value in form.getlist(name)]
    data["resource"] = code
    return data


@router.post("/catalog/{code}/apply")
async def apply(
    code: str, request: Request, database: DatabaseDep, session: SessionDep, actor: PageActor
) -> Response:
    """Apply: the application is made, or the form comes back with the reason and nothing
    is saved."""
    form = await checked_form(request)
    resource = _apply_target(session, actor, code)
    data = _application_data(form, code)
    try:
        # an empty optional box means "not given", as a missing JSON key does in the API
        body = ApplicationCreate.model_validate(
            {key: value for key, value in data.items() if value not in ("", None)}
        )
        with database.transaction() as writer:
            made = service.apply(
                writer, actor=actor, data=body, settings=request.app.state.settings
            )
            application_id, state = made.id, made.state
    except ValidationError as exc:
        return _apply_page(
            request, session, actor, resource, data=data, error=_first_error(exc), status=422
        )
    except ShuzhiError as exc:
        return _apply_page(
            request, session, actor, resource, data=data, error=exc.detail, status=exc.status
        )
    _ = translator_for(request)
    message = (
        _("Granted at once: the resource is shared unconditionally.")
        if state == "approved"
        else _("Application submitted; it awaits the provider's decision.")
    )
    return redirect(request, f"/gateway/applications/{application_id}", ok=message)


# -- applications: the inboxes, one application, decisions --------------------------------


@router.get("/gateway/applications")
def applications_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    page: PageNumber,
    tab: str | None = None,
    state: str | None = None,
) -> Response:
    """Same payload as GET /api/v1/gateway/applications (with ?inbox=true for the first
    tab)."""
    _require_gateway(actor)
    deciding = bool(actor.scopes_for("gateway.decide"))
    if tab not in ("inbox", "ours"):
        tab = "inbox" if deciding else "ours"
    state = state if state in APPLICATION.states else None
    found, total = queries.applications(
        session,
        actor=actor,
        state=state,
        awaiting_me=tab == "inbox",
        limit=PAGE,
        offset=(page - 1) * PAGE,
    )
    return render(
        request,
        "gateway/applications.html",
        actor=actor,
        applications=[queries.application_public(session, item) for item in found],
        total=total,
        page=page,
        pages=_pages(total),
        tab=tab,
        state=state or "",
        machine=APPLICATION,
    )


def _application_buttons(item: Application, actor: Actor) -> list[str]:
    """Approve and reject are the provider's, withdraw the consumer's side."""
    deciding = APPLICATION.available(item, actor, catalog.scope_of(item.resource))
    applying = APPLICATION.available(item, actor, queries.consumer_scope(item.consumer))
    names = {t.name for t in deciding if t.name in ("approve", "reject")}
    names |= {t.name for t in applying if t.name == "withdraw"}
    return [name for name in APPLICATION_BUTTONS if name in names]


def _field_catalog(resource: Resource) -> dict[str, Any]:
    """The catalog's record of each field, for titles and personal-data kinds."""
    return {field.name: field for field in resource.fields}


@router.get("/gateway/applications/{application_id}")
def application_page(
    application_id: ItemId, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Same payload as GET /api/v1/gateway/applications/{id} and its /history."""
    _require_gateway(actor)
    item = queries.application(session, actor=actor, application_id=application_id)
    return render(
        request,
        "gateway/application.html",
        actor=actor,
        application=queries.application_public(session, item),
        history=queries.history(session, object_type="gateway_application", object_id=item.id),
        buttons=_application_buttons(item, actor),
        catalog_fields=_field_catalog(item.resource),
        machine=APPLICATION,
    )


def _acted(
    request: Request,
    database: Any,
    back: str,
    act: Callable[[Session], object],
    *,
    shown_as_page: tuple[type[ShuzhiError], ...] = (NotFound,),
) -> Response:
    """Run ``act`` in one transaction and go back to ``back``, with its refusal or "Done.".
    Errors in ``shown_as_page`` (an item the user may not see) get the error page."""
    try:
        with database.transaction() as writer:
            act(writer)
    except shown_as_page:
        raise
    except ValidationError as exc:
        return redirect(request, back, error=_first_error(exc))
    except ShuzhiError as exc:
        return redirect(request, back, error=exc.detail)
    _ = translator_for(request)
    return redirect(request, back, ok=_("Done."))


@router.post("/gateway/applications/{application_id}/{action}")
async def decide(
    application_id: ItemId, action: str, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    form = await checked_form(request)
    if action not in APPLICATION_BUTTONS:
        raise NotFound(Message("no application action {action!r}", action=action))

    def act(writer: Session) -> object:
        if action == "withdraw":
            return service.withdraw(writer, actor=actor, application_id=application_id)
        decision = Decision.model_validate(
            {
                "clear_fields": form.getlist("clear_fields") if action == "approve" else None,
                "requests_per_second": _text(form, "requests_per_second") or None,
                "rows_per_day": _text(form, "rows_per_day") or None,
                "comment": _text(form, "comment") or None,
            }
        )
        return service.decide(
            writer,
            actor=actor,
            application_id=application_id,
            approve=action == "approve",
            decision=decision,
            settings=request.app.state.settings,
        )

    return _acted(request, database, f"/gateway/applications/{application_id}", act)


# -- grants ---------------------------------------------------------------------------------


@router.get("/gateway/grants")
def grants_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    page: PageNumber,
    consumer: str | None = None,
    resource: str | None = None,
    state: str | None = None,
) -> Response:
    """Same payload as GET /api/v1/gateway/grants."""
    _require_gateway(actor)
    state = state if state in GRANT.states else None
    found, total = queries.grants(
        session,
        actor=actor,
        state=state,
        consumer=consumer or None,
        resource=resource or None,
        limit=PAGE,
        offset=(page - 1) * PAGE,
    )
    return render(
        request,
        "gateway/grants.html",
        actor=actor,
        grants=[queries.grant_public(item) for item in found],
        total=total,
        page=page,
        pages=_pages(total),
        consumer=consumer or "",
        resource=resource or "",
        state=state or "",
        machine=GRANT,
    )


def _grant_buttons(item: Grant, actor: Actor) -> list[str]:
    names = {t.name for t in GRANT.available(item, actor, catalog.scope_of(item.resource))}
    return [name for name in GRANT_BUTTONS if name in names]


@router.get("/gateway/grants/{grant_id}")
def grant_page(
    grant_id: ItemId, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Same payload as GET /api/v1/gateway/grants/{id} and its /history."""
    _require_gateway(actor)
    item = queries.grant(session, actor=actor, grant_id=grant_id)
    return render(
        request,
        "gateway/grant.html",
        actor=actor,
        grant=queries.grant_public(item),
        history=queries.history(session, object_type="gateway_grant", object_id=item.id),
        buttons=_grant_buttons(item, actor),
        machine=GRANT,
    )


@router.post("/gateway/grants/{grant_id}/{action}")
async def change_grant(
    grant_id: ItemId, action: str, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    """``suspend`` and ``revoke`` need a comment, ``resume`` does not."""
    form = await checked_form(request)
    if action not in GRANT_BUTTONS:
        raise NotFound(Message("no grant action {action!r}", action=action))
    comment = _text(form, "comment") or None
    return _acted(
        request,
        database,
        f"/gateway/grants/{grant_id}",
        lambda writer: service.change_grant(
            writer, actor=actor, grant_id=grant_id, name=action, comment=comment
        ),
    )


# -- consumer systems and credentials -------------------------------------------------------


def _consumer_departments(session: Session, actor: Actor) -> list[Any]:
    """The departments the actor may register consumer systems for."""
    if not actor.scopes_for("gateway.manage_consumers"):
        return []
    return [
        item
        for item in orgs.departments(session)
        if allowed(actor, "gateway.manage_consumers", orgs.department_scope(item))
    ]


@router.get("/gateway/consumers")
def consumers_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Same payload as GET /api/v1/gateway/consumers."""
    _require_gateway(actor)
    return render(
        request,
        "gateway/consumers.html",
        actor=actor,
        consumers=[
            queries.consumer_public(session, item)
            for item in queries.consumers(session, actor=actor)
        ],
        departments=_consumer_departments(session, actor),
    )


@router.post("/gateway/consumers")
async def create_consumer(request: Request, database: DatabaseDep, actor: PageActor) -> Response:
    form = await checked_form(request)
    try:
        data = ConsumerCreate(
            code=_text(form, "code"),
            name=_text(form, "name"),
            department=_text(form, "department"),
            description=_text(form, "description"),
            contact=_text(form, "contact"),
        )
        with database.transaction() as writer:
            service.create_consumer(writer, actor=actor, data=data)
    except ValidationError as exc:
        return redirect(request, "/gateway/consumers", error=_first_error(exc))
    except ShuzhiError as exc:
        return redirect(request, "/gateway/consumers", error=exc.detail)
    _ = translator_for(request)
    return redirect(request, f"/gateway/consumers/{data.code}", ok=_("Saved."))


def _consumer_page(
    request: Request,
    session: Session,
    actor: Actor,
    code: str,
    *,
    issued: CredentialIssued | None = None,
) -> Response:
    consumer = queries.consumer(session, actor=actor, code=code)
    response = render(
        request,
        "gateway/consumer.html",
        actor=actor,
        consumer=queries.consumer_public(session, consumer),
        credentials=[
            queries.credential_public(item)
            for item in queries.credentials(session, consumer=consumer)
        ],
        can_manage=allowed(actor, "gateway.manage_consumers", queries.consumer_scope(consumer)),
        issued=issued,
    )
    if issued is not None:
        response.headers["Cache-Control"] = "no-store"  # the secret stays out of any cache
    return response


@router.get("/gateway/consumers/{code}")
def consumer_page(code: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Same payload as GET /api/v1/gateway/consumers/{code} and its /credentials."""
    _require_gateway(actor)
    return _consumer_page(request, session, actor, code)


def _issued_page(
    request: Request, database: Any, actor: Actor, code: str, issued: CredentialIssued
) -> Response:
    """The secret is in this response only: not in a cookie, a URL or the next page."""
    # a new read: the request's session began before the credential existed
    with database.session() as fresh:
        return _consumer_page(request, fresh, actor, code, issued=issued)


@router.post("/gateway/consumers/{code}/credentials")
async def issue_credential(
    code: str, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    await checked_form(request)
    back = f"/gateway/consumers/{code}"
    try:
        with database.transaction() as writer:
            credential, secret = service.issue_credential(
                writer, actor=actor, consumer=code, settings=request.app.state.settings
            )
            issued = queries.credential_issued(credential, secret)
    except (NotFound, PermissionDenied):
        raise
    except ShuzhiError as exc:
        return redirect(request, back, error=exc.detail)
    return _issued_page(request, database, actor, code, issued)


@router.post("/gateway/consumers/{code}/{action}")
async def switch_consumer(
    code: str, action: str, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    await checked_form(request)
    if action not in ("enable", "disable"):
        raise NotFound(
            Message("no consumer action {action!r}; use enable or disable", action=action)
        )
    return _acted(
        request,
        database,
        f"/gateway/consumers/{code}",
        lambda writer: service.set_consumer_active(
            writer, actor=actor, code=code, active=action == "enable"
        ),
        shown_as_page=(NotFound, PermissionDenied),
    )


def _own_credential(database: Any, actor: Actor, code: str, access_key: str) -> None:
    """A credential named under another consumer's page is not found there."""
    with database.session() as session:
        consumer = queries.consumer(session, actor=actor, code=code)
        keys = {item.access_key for item in queries.credentials(session, consumer=consumer)}
    if access_key not in keys:
        raise NotFound(
            Message(
                "no credential {access_key!r} of consumer {code}", access_key=access_key, code=code
            ),
            field="access_key",
        )


@router.post("/gateway/consumers/{code}/credentials/{access_key}/rotate")
async def rotate_credential(
    code: str, access_key: str, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    """A new credential; the old one keeps working for the overlap window."""
    await checked_form(request)
    _own_credential(database, actor, code, access_key)
    try:
        with database.transaction() as writer:
            credential, secret = service.rotate_credential(
                writer, actor=actor, access_key=access_key, settings=request.app.state.settings
            )
            issued = queries.credential_issued(credential, secret)
    except (NotFound, PermissionDenied):
        raise
    except ShuzhiError as exc:
        return redirect(request, f"/gateway/consumers/{code}", error=exc.detail)
    return _issued_page(request, database, actor, code, issued)


@router.post("/gateway/consumers/{code}/credentials/{access_key}/revoke")
async def revoke_credential(
    code: str, access_key: str, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    await checked_form(request)
    _own_credential(database, actor, code, access_key)
    return _acted(
        request,
        database,
        f"/gateway/consumers/{code}",
        lambda writer: service.revoke_credential(writer, actor=actor, access_key=access_key),
        shown_as_page=(NotFound, PermissionDenied),
    )


# -- usage ----------------------------------------------------------------------------------

USAGE_DAYS = (7, 30, 90)
USAGE_ROWS = 100  # detailed rows a page shows; the report holds them all


def _usage_days(days: str | None) -> int:
    """``?days=`` as offered by the page's choices; anything else is 30."""
    return int(days) if days in {str(choice) for choice in USAGE_DAYS} else 30


@router.get("/gateway/usage")
def usage_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    page: PageNumber,
    days: str | None = None,
    consumer: str | None = None,
    resource: str | None = None,
) -> Response:
    """Same payload as GET /api/v1/gateway/usage; the domain scopes the rows to what the
    user may see, so every signed-in user gets the page."""
    period = _usage_days(days)
    report = oversight.usage(
        session, actor=actor, days=period, consumer=consumer or None, target=resource or None
    )
    first = (page - 1) * USAGE_ROWS
    return render(
        request,
        "gateway/usage.html",
        actor=actor,
        report=report,
        rows=report.rows[first : first + USAGE_ROWS],
        first=first,
        page=page,
        pages=max(1, -(-len(report.rows) // USAGE_ROWS)),
        days=period,
        day_choices=USAGE_DAYS,
        consumer=consumer or "",
        resource=resource or "",
    )


# -- the access log ------------------------------------------------------------------------

FLAG_DAYS = 14


@router.get("/audit/access-log")
def access_log_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    page: PageNumber,
    consumer: str | None = None,
    target: str | None = None,
    outcome: str | None = None,
    verify: str | None = None,
) -> Response:
    """Same payloads as GET /api/v1/audit/access-log, /access-log/flags and, with
    ``?verify=1`` only, /access-log/verify: walking the whole chain takes tens of seconds
    at a million entries, too long for every view."""
    found, total = queries.access_log(
        session,
        actor=actor,
        consumer=consumer or None,
        target=target or None,
        outcome=outcome or None,
        limit=PAGE,
        offset=(page - 1) * PAGE,
    )
    # read before verifying: the walk detaches what the session loaded
    rows = [queries.access_log_public(row) for row in found]
    flags = oversight.flags(
        session, actor=actor, days=FLAG_DAYS, settings=request.app.state.settings
    )
    chain = service.verify_chain(session, actor=actor) if verify == "1" else None
    return render(
        request,
        "gateway/access_log.html",
        actor=actor,
        rows=rows,
        total=total,
        page=page,
        pages=_pages(total),
        chain=chain,
        flags=flags,
        flag_days=FLAG_DAYS,
        consumer=consumer or "",
        target=target or "",
        outcome=outcome or "",
    )
