from __future__ import annotations

from typing import Annotated
from urllib.parse import urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from shuzhi.orgs import service as orgs_service
from shuzhi.web import i18n
from shuzhi.web.app import locale_of, render
from shuzhi.web.session import COOKIE, LANG_COOKIE, check_csrf, session_token
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


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return render(
        request,
        "login.html",
        next=_safe_next(next),
        error=None,
        demo_logins=getattr(request.app.state, "demo_logins", None),
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
        _ = i18n.translator(locale_of(request))
        message = (
            _("Too many wrong passwords; try again after {time} UTC.").format(
                time=f"{outcome.locked_until:%H:%M}"
            )
            if outcome.locked_until
            else _("Wrong username or password.")
        )
        return render(
            request,
            "login.html",
            status=401,
            next=_safe_next(next),
            error=message,
            username=username,
            demo_logins=getattr(request.app.state, "demo_logins", None),
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    settings = request.app.state.settings
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.security.secure_cookies,
        max_age=settings.security.session_hours * 3600,
    )
    return response


@router.post("/logout")
def logout(request: Request, database: DatabaseDep, csrf: Annotated[str, Form()] = "") -> Response:
    token = session_token(request)
    if token:
        check_csrf(request, csrf)
        with database.transaction() as session:
            orgs_service.end_session(session, plaintext=token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/lang/{locale}")
def set_language(locale: str, next: str | None = None) -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        LANG_COOKIE, i18n.normalise(locale, "zh-CN"), max_age=365 * 86400, samesite="lax"
    )
    return response
