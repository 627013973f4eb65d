from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from shuzhi.core.settings import Environment
from shuzhi.orgs import service as orgs_service
from shuzhi.web import i18n
from shuzhi.web.app import render, translator_for
from shuzhi.web.session import (
    COOKIE,
    LANG_COOKIE,
    check_csrf,
    delete_cookie,
    session_token,
    set_cookie,
)
from shuzhi.web.views.deps import DatabaseDep

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only local paths: a login must not become an open redirect."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _demo_logins(request: Request) -> list[dict[str, Any]] | None:
    """The demo's logins share one known password: listed on a developer's machine only."""
    if request.app.state.settings.environment is not Environment.development:
        return None
    return getattr(request.app.state, "demo_logins", None)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return render(
        request,
        "login.html",
        next=_safe_next(next),
        error=None,
        demo_logins=_demo_logins(request),
    )


@router.post("/login")
def login(
    request: Request,
    database: DatabaseDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    with database.transaction() as session:
        outcome = orgs_service.login(session, username=username.strip(), password=password)
        token = orgs_service.start_session(session, account=outcome.user) if outcome.user else None
    if token is None:
        # the same words for every failure: the page must not tell real usernames apart
        _ = translator_for(request)
        message = _(
            "Wrong username or password. After repeated failures a login is locked for a while."
        )
        return render(
            request,
            "login.html",
            status=401,
            next=_safe_next(next),
            error=message,
            username=username,
            demo_logins=_demo_logins(request),
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    hours = request.app.state.settings.security.session_hours
    set_cookie(request, response, COOKIE, token, max_age=hours * 3600)
    return response


@router.post("/logout")
def logout(request: Request, database: DatabaseDep, csrf: Annotated[str, Form()] = "") -> Response:
    token = session_token(request)
    if token:
        check_csrf(request, csrf)
        with database.transaction() as session:
            orgs_service.end_session(session, plaintext=token)
    response = RedirectResponse("/login", status_code=303)
    delete_cookie(request, response, COOKIE)
    return response


@router.get("/lang/{locale}")
def set_language(request: Request, locale: str, next: str | None = None) -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    chosen = i18n.normalise(locale, "zh-CN")
    set_cookie(request, response, LANG_COOKIE, chosen, max_age=365 * 86400, httponly=False)
    return response
