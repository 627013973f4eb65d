"""The cockpit's login session: a cookie holding a session token, and form tokens."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from shuzhi.core.errors import Message, PermissionDenied, ShuzhiError
from shuzhi.core.permissions import ANONYMOUS, Actor
from shuzhi.core.settings import Environment, Settings
from shuzhi.orgs import queries as orgs
from shuzhi.orgs import service as orgs_service
from shuzhi.web import i18n

COOKIE = "shuzhi_session"
LANG_COOKIE = "shuzhi_lang"


def locale_of(request: Request) -> str:
    """The reader's language: ``?lang=``, else the cookie, else the site's default."""
    default = request.app.state.settings.web.default_locale
    return i18n.normalise(
        request.query_params.get("lang") or request.cookies.get(LANG_COOKIE), default
    )


def cookies_secure(settings: Settings) -> bool:
    """Production is served over HTTPS, so its cookies are Secure whatever the setting says."""
    return settings.security.secure_cookies or settings.environment is Environment.production


def set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int,
    httponly: bool = True,
) -> None:
    """Every cockpit cookie: same-site, and Secure where the site is served over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=httponly,
        samesite="lax",
        secure=cookies_secure(request.app.state.settings),
    )


def delete_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, httponly=True, samesite="lax", secure=cookies_secure(request.app.state.settings)
    )


def session_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE)


def actor_from_cookie(request: Request, session: Session) -> Actor:
    token = session_token(request)
    if not token:
        return ANONYMOUS
    try:
        account = orgs_service.resolve_token(session, plaintext=token, kind="session")
    except ShuzhiError:
        return ANONYMOUS
    request.state.display_name = account.display_name
    return orgs.actor_for(session, account)


def csrf_token(request: Request) -> str:
    """Bound to the session: a form token is useless without the cookie, and vice versa."""
    secret = request.app.state.settings.secret()
    token = session_token(request) or ""
    return hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, submitted: str | None) -> None:
    # bytes: compare_digest refuses str holding anything but ASCII with a TypeError
    expected = csrf_token(request).encode()
    if not submitted or not hmac.compare_digest(submitted.encode(), expected):
        raise PermissionDenied(
            Message("the form has expired or did not come from this site; reload it")
        )


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token has been checked."""
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    return form
