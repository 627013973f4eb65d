"""Helpers for driving the cockpit over HTTP."""

from __future__ import annotations

import re
from html import unescape

from fastapi.testclient import TestClient

from shuzhi.web.session import COOKIE
from tests.conftest import PASSWORD


def login(client: TestClient, username: str, password: str = PASSWORD) -> None:
    response = client.post(
        "/login", data={"username": username, "password": password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    assert client.cookies.get(COOKIE)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no csrf field on the page"
    return match.group(1)


def flashed(html: str) -> str | None:
    """The one-shot message the page shows after a redirect, if any."""
    match = re.search(r'data-testid="flash">([^<]*)<', html)
    return unescape(match.group(1)) if match else None
