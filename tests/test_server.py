"""The middleware stack every request passes: refusals at the door, unexpected errors,
security headers, and what start-up insists on."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shuzhi.catalog import queries as catalog_queries
from shuzhi.core.errors import ConfigurationError
from shuzhi.core.settings import Settings, load_settings, reset_settings
from shuzhi.server import create_app
from shuzhi.web.flash import COOKIE as FLASH_COOKIE
from shuzhi.web.session import COOKIE, LANG_COOKIE
from tests.api.support import assert_clean_error, assert_problem, auth
from tests.conftest import PASSWORD, World
from tests.web.support import csrf_of, login

HTML = "text/html"


@pytest.fixture
def client(sqlite_world: World) -> Iterator[TestClient]:
    # raise_server_exceptions stays on: nothing may escape the middleware
    with TestClient(create_app(database=sqlite_world.database)) as test_client:
        yield test_client


def production(monkeypatch: pytest.MonkeyPatch, *, secret: bool = True) -> Settings:
    monkeypatch.setenv("SHUZHI_ENVIRONMENT", "production")
    if secret:
        monkeypatch.setenv("SHUZHI_SECURITY__SECRET_KEY", "k" * 48)
    reset_settings()
    return load_settings()


def broken(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("boom")


# NUL characters --------------------------------------------------------------------------


def test_a_nul_in_an_api_query_is_a_422_problem(client: TestClient, sqlite_world: World) -> None:
    response = client.get(
        "/api/v1/catalog/resources", params={"q": "a\x00b"}, headers=auth(sqlite_world, "viewer")
    )
    body = assert_problem(response, 422, "validation")
    assert "NUL" in body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_a_nul_in_a_json_body_is_a_422_problem(client: TestClient, sqlite_world: World) -> None:
    response = client.post(
        "/api/v1/tokens", json={"name": "a\x00b"}, headers=auth(sqlite_world, "viewer")
    )
    assert_problem(response, 422, "validation")


def test_an_escaped_backslash_before_u0000_is_not_a_nul(
    client: TestClient, sqlite_world: World
) -> None:
    """The JSON text \\\\u0000 is a backslash and 'u0000', which PostgreSQL stores."""
    name = "\\u0000"
    response = client.post(
        "/api/v1/tokens",
        content=json.dumps({"name": name}).encode(),
        headers={**auth(sqlite_world, "viewer"), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == name


def test_a_nul_in_a_cockpit_form_or_query_is_an_html_422(client: TestClient) -> None:
    login_form = client.post("/login", data={"username": "a\x00b", "password": "x"})
    login(client, "viewer")
    page = client.get("/catalog", params={"q": "a\x00b"})
    for response in (login_form, page):
        assert response.status_code == 422
        assert response.headers["content-type"].startswith(HTML)
        assert 'data-testid="error"' in response.text
        assert "X-Request-ID" in response.headers


def test_a_nul_in_the_path_is_refused(client: TestClient) -> None:
    login(client, "viewer")
    assert client.get("/catalog/a%00b").status_code == 422


def test_form_posts_without_nul_still_reach_their_handler(client: TestClient) -> None:
    response = client.post(
        "/login", data={"username": "viewer", "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.cookies.get(COOKIE)


def test_a_nul_in_a_search_is_refused_on_each_backend(any_client: TestClient, world: World) -> None:
    """PostgreSQL refuses NUL in text; a search holding one must not reach it."""
    response = any_client.get(
        "/api/v1/catalog/resources", params={"q": "a\x00b"}, headers=auth(world, "viewer")
    )
    assert_clean_error(response)


def test_a_nul_in_a_login_name_is_refused_on_each_backend(any_client: TestClient) -> None:
    response = any_client.post("/login", data={"username": "a\x00b", "password": "x"})
    assert_clean_error(response)


# unexpected errors -------------------------------------------------------------------------


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def http_log() -> Iterator[list[logging.LogRecord]]:
    """Records of shuzhi.http, caught even when logs.configure has stopped propagation."""
    logger, handler = logging.getLogger("shuzhi.http"), Records()
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def test_an_unexpected_api_error_is_a_logged_counted_problem(
    client: TestClient,
    sqlite_world: World,
    monkeypatch: pytest.MonkeyPatch,
    http_log: list[logging.LogRecord],
) -> None:
    monkeypatch.setattr(catalog_queries, "stats", broken)
    response = client.get(
        "/api/v1/catalog/stats",
        headers={**auth(sqlite_world, "viewer"), "X-Request-ID": "req-broken-0001"},
    )

    body = assert_problem(response, 500, "internal")
    assert "boom" not in response.text  # no internals for the caller
    assert response.headers["X-Request-ID"] == body["request_id"] == "req-broken-0001"
    assert 'route="/api/v1/catalog/stats",status="500"' in client.get("/metrics").text
    [record] = [r for r in http_log if r.exc_info]
    assert record.request_id == "req-broken-0001"
    assert isinstance(record.exc_info[1], RuntimeError)


def test_an_unexpected_cockpit_error_is_the_html_error_page(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(client, "viewer")
    monkeypatch.setattr(catalog_queries, "stats", broken)
    response = client.get("/")

    assert response.status_code == 500
    assert response.headers["content-type"].startswith(HTML)
    assert 'data-testid="error"' in response.text
    assert response.headers["X-Request-ID"] in response.text  # to quote when reporting it
    assert "boom" not in response.text


# validation errors ---------------------------------------------------------------------


def test_bad_cockpit_parameters_get_the_html_error_page(client: TestClient) -> None:
    login(client, "viewer")
    response = client.post("/account/tokens/not-a-number/revoke", data={})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(HTML)
    assert 'data-testid="error"' in response.text


def test_bad_api_parameters_stay_problem_json(client: TestClient, sqlite_world: World) -> None:
    response = client.get(
        "/api/v1/catalog/resources", params={"limit": "many"}, headers=auth(sqlite_world, "viewer")
    )
    assert_problem(response, 422, "validation")


# headers -----------------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(
    client: TestClient, sqlite_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    responses = [
        client.get("/login"),
        client.get("/static/app.css"),
        client.get("/healthz"),
        client.get("/api/v1/regions", headers=auth(sqlite_world, "viewer")),
        client.get("/no/such/page"),
        client.get("/catalog", follow_redirects=False),
    ]
    monkeypatch.setattr(catalog_queries, "stats", broken)
    responses.append(client.get("/api/v1/catalog/stats", headers=auth(sqlite_world, "viewer")))
    expected = {
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    for response in responses:
        for name, value in expected.items():
            assert response.headers.get(name) == value, (response.url, name)


# start-up and environment ----------------------------------------------------------------


def test_production_without_a_secret_key_does_not_start(
    sqlite_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = production(monkeypatch, secret=False)
    app = create_app(database=sqlite_world.database, settings=settings)
    with pytest.raises(ConfigurationError, match="SECRET_KEY"), TestClient(app):
        pass


def write_demo_logins(data_dir: Path) -> None:
    """What `shuzhi demo build` leaves behind about its logins."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "demo.json").write_text(
        json.dumps(
            {
                "password": "Demo-Pass-2026",
                "logins": [{"username": "demo_lister", "role": "viewer", "department": "x"}],
            }
        ),
        encoding="utf-8",
    )


@pytest.mark.parametrize(("environment", "listed"), [("development", True), ("production", False)])
def test_demo_logins_are_listed_in_development_only(
    sqlite_world: World, monkeypatch: pytest.MonkeyPatch, environment: str, listed: bool
) -> None:
    settings = production(monkeypatch) if environment == "production" else load_settings()
    write_demo_logins(settings.data_dir)
    with TestClient(create_app(database=sqlite_world.database, settings=settings)) as client:
        assert ("demo_lister" in client.get("/login").text) is listed


def set_cookie_headers(response: Any) -> dict[str, str]:
    headers = response.headers.get_list("set-cookie")
    return {header.split("=", 1)[0]: header.lower() for header in headers}


@pytest.mark.parametrize(
    ("environment", "secure_setting", "secure"),
    [
        ("development", "false", False),
        ("development", "true", True),
        ("production", "false", True),
    ],
)
def test_cookies_are_secure_when_configured_or_in_production(
    sqlite_world: World,
    monkeypatch: pytest.MonkeyPatch,
    environment: str,
    secure_setting: str,
    secure: bool,
) -> None:
    monkeypatch.setenv("SHUZHI_SECURITY__SECURE_COOKIES", secure_setting)
    settings = production(monkeypatch) if environment == "production" else load_settings()
    app = create_app(database=sqlite_world.database, settings=settings)
    # over https, as production is served: the client sends Secure cookies back
    with TestClient(app, base_url="https://testserver") as client:
        responses = [
            client.post(
                "/login", data={"username": "viewer", "password": PASSWORD}, follow_redirects=False
            ),
            client.get("/lang/en", follow_redirects=False),
        ]
        csrf = csrf_of(client.get("/account").text)
        responses.append(
            client.post(
                "/account/tokens/999999/revoke", data={"csrf": csrf}, follow_redirects=False
            )
        )
        responses.append(client.get("/account"))  # shows the flash and deletes its cookie
    cookies: dict[str, list[str]] = {}
    for response in responses:
        for name, header in set_cookie_headers(response).items():
            cookies.setdefault(name, []).append(header)
    assert {COOKIE, LANG_COOKIE, FLASH_COOKIE} <= set(cookies)
    assert len(cookies[FLASH_COOKIE]) == 2  # set, then deleted
    for name, headers in cookies.items():
        for header in headers:
            assert ("; secure" in header) is secure, (name, header)
