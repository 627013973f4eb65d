"""Helpers shared by the API tests."""

from __future__ import annotations

from typing import Any

from tests.conftest import World

PROBLEM = "application/problem+json"


def auth(world: World, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[user]}"}


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    """A problem+json answer (RFC 9457) with this status and type; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def assert_clean_error(response: Any) -> None:
    """A 4xx answer, never a 500; API errors as problem+json."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.request.url.path.startswith("/api/") and response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM), response.text[:300]
