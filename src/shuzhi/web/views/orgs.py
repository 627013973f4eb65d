"""Departments, users and grants, and the signed-in user's own account and API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError

from shuzhi.core.errors import Message, PermissionDenied, ShuzhiError
from shuzhi.core.permissions import Actor, allowed
from shuzhi.orgs import queries, service
from shuzhi.orgs.schemas import (
    ID_MAX,
    DepartmentCreate,
    GrantCreate,
    TokenCreate,
    TokenPublic,
    UserCreate,
)
from shuzhi.web.app import render, translator_for
from shuzhi.web.flash import redirect
from shuzhi.web.session import checked_form
from shuzhi.web.views.deps import DatabaseDep, PageActor, SessionDep

router = APIRouter()
TokenId = Annotated[int, Path(ge=1, le=ID_MAX)]  # a larger id names no row and overflows


@router.get("/departments")
def departments(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    region: str | None = None,
    system: str | None = None,
    q: str | None = None,
) -> Response:
    """Same payload as GET /api/v1/departments."""
    found = queries.departments(session, region=region or None, system=system or None, q=q or None)
    return render(
        request,
        "orgs/departments.html",
        actor=actor,
        departments=[queries.department_public(session, d) for d in found],
        q=q or "",
        system=system or "",
        can_create=bool(actor.scopes_for("orgs.manage_departments")),
    )


@router.post("/departments")
async def create_department(request: Request, database: DatabaseDep, actor: PageActor) -> Response:
    form = await checked_form(request)
    try:
        data = DepartmentCreate(
            code=str(form.get("code", "")).strip(),
            name=str(form.get("name", "")).strip(),
            region=str(form.get("region", "")).strip(),
            parent=str(form.get("parent", "")) or None,
            systems=form.getlist("systems"),
            credit_code=str(form.get("credit_code", "")).strip() or None,
        )
        with database.transaction() as session:
            service.create_department(session, actor=actor, data=data)
    except (ShuzhiError, ValidationError) as exc:
        return _error_redirect(request, "/departments", exc)
    return _done(request, "/departments", "Saved.")


def _done(request: Request, path: str, message: str) -> Response:
    _ = translator_for(request)
    return redirect(request, path, ok=_(message))


def _error_redirect(request: Request, path: str, exc: ShuzhiError | ValidationError) -> Response:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    else:
        detail = exc.detail
    return redirect(request, path, error=detail)


def _users_page(request: Request, session: Any, actor: Actor) -> Response:
    if not actor.scopes_for("orgs.manage_users"):
        raise PermissionDenied(Message("{name} manages no users", name=actor.name))
    managed = [
        d
        for d in queries.departments(session)
        if allowed(actor, "orgs.manage_users", queries.department_scope(d))
    ]
    return render(
        request,
        "orgs/users.html",
        actor=actor,
        users=[
            queries.user_public(session, u) for u in queries.manageable_users(session, actor=actor)
        ],
        departments=managed,
        roles=queries.roles(session),
    )


@router.get("/users")
def users(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Same payload as GET /api/v1/users: the users the caller may manage."""
    return _users_page(request, session, actor)


@router.post("/users")
async def create_user(request: Request, database: DatabaseDep, actor: PageActor) -> Response:
    form = await checked_form(request)
    try:
        data = UserCreate(
            username=str(form.get("username", "")).strip(),
            display_name=str(form.get("display_name", "")).strip(),
            password=str(form.get("password", "")),
            department=str(form.get("department", "")) or None,
        )
        with database.transaction() as session:
            service.create_user(session, actor=actor, data=data)
            role = str(form.get("role", ""))
            if role:
                service.grant_role(
                    session,
                    actor=actor,
                    username=data.username,
                    data=GrantCreate(role=role, department=data.department),
                )
    except (ShuzhiError, ValidationError) as exc:
        return _error_redirect(request, "/users", exc)
    return _done(request, "/users", "Saved.")


def _grant_form(form: Any) -> GrantCreate:
    return GrantCreate(
        role=str(form.get("role", "")),
        department=str(form.get("department", "")) or None,
        region=str(form.get("region", "")).strip() or None,
    )


async def _change_grant(
    request: Request, database: Any, actor: Actor, username: str, change: Any, message: str
) -> Response:
    form = await checked_form(request)
    try:
        with database.transaction() as session:
            change(session, actor=actor, username=username, data=_grant_form(form))
    except (ShuzhiError, ValidationError) as exc:
        return _error_redirect(request, "/users", exc)
    return _done(request, "/users", message)


@router.post("/users/{username}/grants")
async def grant(
    username: str, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    return await _change_grant(request, database, actor, username, service.grant_role, "Saved.")


@router.post("/users/{username}/grants/revoke")
async def revoke(
    username: str, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    return await _change_grant(request, database, actor, username, service.revoke_role, "Done.")


def _account_page(
    request: Request, session: Any, actor: Actor, new_token: str | None = None
) -> Response:
    account = queries.user(session, actor.name)
    return render(
        request,
        "orgs/account.html",
        actor=actor,
        me=queries.user_public(session, account),
        tokens=[
            TokenPublic.model_validate(t, from_attributes=True)
            for t in queries.tokens_of(session, account.id)
        ],
        new_token=new_token,
    )


@router.get("/account")
def account(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Same payload as GET /api/v1/users/me and GET /api/v1/tokens."""
    return _account_page(request, session, actor)


@router.post("/account/tokens")
async def create_token(request: Request, database: DatabaseDep, actor: PageActor) -> Response:
    """The new token's secret is in this response only; a reload no longer shows it."""
    form = await checked_form(request)
    try:
        body = TokenCreate.model_validate(
            {
                "name": str(form.get("name", "")).strip() or "cockpit",
                "days": str(form.get("days", "")).strip() or None,
            }
        )
        with database.transaction() as writer:
            _token, plaintext = service.create_token(
                writer, actor=actor, username=actor.name, name=body.name, days=body.days
            )
    except (ShuzhiError, ValidationError) as exc:
        return _error_redirect(request, "/account", exc)
    # a new read: the request's session began before the token existed
    with database.session() as fresh:
        return _account_page(request, fresh, actor, new_token=plaintext)


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(
    token_id: TokenId, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    await checked_form(request)
    try:
        with database.transaction() as session:
            service.revoke_token(session, actor=actor, token_id=token_id)
    except ShuzhiError as exc:
        return _error_redirect(request, "/account", exc)
    return _done(request, "/account", "Done.")
