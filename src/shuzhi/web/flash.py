"""One-shot messages carried across a redirect, in a short-lived signed cookie.

A form post redirects and says what happened ("Saved.", or why it was refused) in the
``shuzhi_flash`` cookie; the next page shows it once and deletes the cookie. The words
never come from the URL, so a mailed link cannot put a message on the site, and a cookie
not signed with the site's key shows nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from shuzhi.web import i18n
from shuzhi.web.session import delete_cookie, locale_of, set_cookie

COOKIE = "shuzhi_flash"
LIFETIME_S = 60  # the browser follows the redirect at once; a minute covers a slow page
MAX_TEXT = 500  # characters: up to ~2 KiB once encoded, well under what browsers keep
PURPOSE = b"shuzhi-flash\x00"  # the key also signs form tokens; this keeps the two apart

Kind = Literal["ok", "err"]


@dataclass(frozen=True)
class Flash:
    kind: Kind
    text: str


def _signature(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, PURPOSE + payload, hashlib.sha256).hexdigest().encode()


def encode(secret: bytes, flash: Flash, *, now: float | None = None) -> str:
    text = flash.text if len(flash.text) <= MAX_TEXT else flash.text[: MAX_TEXT - 1] + "…"
    expires = int(time.time() if now is None else now) + LIFETIME_S
    body = json.dumps([flash.kind, text, expires], ensure_ascii=False, separators=(",", ":"))
    payload = base64.urlsafe_b64encode(body.encode()).rstrip(b"=")
    return (payload + b"." + _signature(secret, payload)).decode()


def decode(secret: bytes, value: str, *, now: float | None = None) -> Flash | None:
    """The message, if the cookie is ours, untouched and unexpired; otherwise None."""
    payload, _, signature = value.encode().partition(b".")
    if not hmac.compare_digest(signature, _signature(secret, payload)):
        return None
    padding = b"=" * (-len(payload) % 4)
    try:
        kind, text, expires = json.loads(base64.urlsafe_b64decode(payload + padding))
    except (ValueError, TypeError, binascii.Error):
        return None
    if kind not in ("ok", "err") or not isinstance(text, str) or not isinstance(expires, int):
        return None
    if expires < (time.time() if now is None else now):
        return None
    return Flash(kind, text)


def redirect(
    request: Request, url: str, *, ok: str | None = None, error: str | None = None
) -> RedirectResponse:
    """A 303 to ``url`` whose page will show ``ok`` (a success) or ``error`` (a refusal)."""
    if (ok is None) == (error is None):
        raise ValueError("a flash is either ok or error")
    # said now: the cookie carries text, not the message a service made it from
    flash = (
        Flash("ok", ok)
        if ok is not None
        else Flash("err", i18n.say(error or "", locale_of(request)))
    )
    response = RedirectResponse(url, status_code=303)
    value = encode(request.app.state.settings.secret(), flash)
    set_cookie(request, response, COOKIE, value, max_age=LIFETIME_S)
    return response


def take(request: Request) -> Flash | None:
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    return decode(request.app.state.settings.secret(), value)


def forget(request: Request, response: Response) -> None:
    """Once shown (or found forged), the message is gone: a reload does not repeat it."""
    if COOKIE in request.cookies:
        delete_cookie(request, response, COOKIE)
