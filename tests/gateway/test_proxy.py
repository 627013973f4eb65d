"""业务协同 through the gateway, against a real department service on loopback: what is
forwarded, what is not, and how every kind of upstream failure comes back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from shuzhi.client import GatewayError
from shuzhi.core.errors import ValidationFailed
from shuzhi.core.permissions import SYSTEM
from shuzhi.core.settings import reset_settings
from shuzhi.gateway import service
from shuzhi.gateway.models import AccessLog
from shuzhi.gateway.proxy import path_allowed
from shuzhi.gateway.schemas import ServiceCreate
from tests.gateway.data import CODE, Gateway

SEEN: list[dict[str, Any]] = []


class Upstream(BaseHTTPRequestHandler):
    """A department's service: echoes what reached it, and misbehaves on request."""

    def log_message(self, *_: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "upstream=secret")
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        SEEN.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
        if self.path.startswith("/api/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path.startswith("/api/slow"):
            time.sleep(2.5)
            self._answer(200, b"{}")
        elif self.path.startswith("/api/big"):
            self._answer(200, b"x" * (3 * 1024))
        elif self.path.startswith("/api/fail"):
            self._answer(500, b'{"error": "database down"}')
        elif self.path.startswith("/api/missing"):
            self._answer(404, b'{"error": "no such licence"}')
        else:
            echo = {"method": self.command, "path": self.path, "body": body.decode()}
            self._answer(200, json.dumps(echo, ensure_ascii=False).encode())

    do_GET = do_POST = do_PUT = do_DELETE = _handle


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    SEEN.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUZHI_GATEWAY__SERVICE_HOSTS", '["127.0.0.1"]')
    reset_settings()


def register(gateway: Gateway, upstream: str, **overrides: Any) -> None:
    data = {
        "resource": CODE,
        "base_url": f"{upstream}/api",
        "methods": ["GET", "POST"],
        "paths": ["/licences/*", "/echo", "/redirect", "/slow", "/big", "/fail", "/missing"],
        "timeout_seconds": 1,
        "max_response_kb": 2,
        **overrides,
    }
    with gateway.db.transaction() as session:
        service.register_service(session, actor=SYSTEM, data=ServiceCreate(**data))


def callable_service(gateway: Gateway, upstream: str) -> None:
    register(gateway, upstream)
    gateway.grant("zj_health_app", fields=[], rights=["call"])


def log(gateway: Gateway) -> AccessLog:
    with gateway.db.session() as session:
        return session.scalars(select(AccessLog).order_by(AccessLog.seq.desc())).first()


def call(gateway: Gateway, method: str, path: str, **options: Any) -> Any:
    client = gateway.client("zj_health_app", purpose="330000-QT-0001-9", user="li.na")
    return client.request(method, f"/gateway/v1/services/{CODE}{path}", **options)


def test_a_granted_call_reaches_the_service_with_who_and_why_but_no_signature(
    gateway: Gateway, upstream: str, allowed: None
) -> None:
    callable_service(gateway, upstream)
    answer = call(gateway, "GET", "/licences/91330100", params={"b": "2", "a": "1"})
    echoed = answer.json()
    assert echoed["path"] == "/api/licences/91330100?a=1&b=2"
    headers = {name.lower(): value for name, value in SEEN[-1]["headers"].items()}
    assert headers["x-shuzhi-consumer"] == "zj_health_app"
    assert headers["x-shuzhi-purpose"] == "330000-QT-0001-9"
    assert headers["x-shuzhi-user"] == "li.na"
    assert "x-shuzhi-signature" not in headers and "x-shuzhi-key" not in headers
    assert "set-cookie" not in {name.lower() for name in answer.headers}
    posted = call(gateway, "POST", "/echo", json={"申请人": "张三"}).json()
    assert posted["method"] == "POST" and json.loads(posted["body"]) == {"申请人": "张三"}
    entry = log(gateway)
    assert (entry.operation, entry.target, entry.status, entry.outcome) == (
        "call",
        CODE,
        200,
        "ok",
    )


@pytest.mark.parametrize(
    ("method", "path", "status", "slug"),
    [
        ("DELETE", "/echo", 405, "method-not-allowed"),
        ("GET", "/admin", 403, "path-not-allowed"),
        ("GET", "/licences/1/extra", 403, "path-not-allowed"),
        ("GET", "/licences/%2E%2E/admin", 403, "path-not-allowed"),
        ("GET", "/redirect", 502, "upstream-error"),
        ("GET", "/slow", 504, "upstream-timeout"),
        ("GET", "/big", 502, "upstream-error"),
        ("GET", "/fail", 502, "upstream-error"),
    ],
)
def test_refusals_and_upstream_failures_are_problems_naming_the_service(
    gateway: Gateway, upstream: str, allowed: None, method: str, path: str, status: int, slug: str
) -> None:
    callable_service(gateway, upstream)
    with pytest.raises(GatewayError) as refused:
        call(gateway, method, path)
    assert (refused.value.status, refused.value.type) == (status, f"/problems/{slug}")
    if status >= 502:
        assert CODE in refused.value.problem["detail"]
        assert "127.0.0.1" in refused.value.problem["detail"]
    if path == "/redirect":
        # the redirect was not followed anywhere
        assert [seen["path"] for seen in SEEN] == ["/api/redirect"]
    if status in (403, 405):
        assert SEEN == []  # refused before anything went upstream
    entry = log(gateway)
    assert (entry.status, entry.outcome, entry.rows) == (status, slug, 0)


def test_an_upstream_4xx_comes_back_as_it_is(
    gateway: Gateway, upstream: str, allowed: None
) -> None:
    callable_service(gateway, upstream)
    with pytest.raises(GatewayError) as refused:
        call(gateway, "GET", "/missing")
    assert refused.value.status == 404
    assert refused.value.problem == {"error": "no such licence"}
    assert log(gateway).outcome == "upstream-404"


def test_a_service_needs_its_own_call_grant(gateway: Gateway, upstream: str, allowed: None) -> None:
    register(gateway, upstream)
    gateway.grant("zj_health_app")  # a read grant, not a call grant
    with pytest.raises(GatewayError) as refused:
        call(gateway, "GET", "/echo")
    assert refused.value.type == "/problems/right-not-granted"
    assert SEEN == []


def test_only_hosts_on_the_allow_list_can_be_registered(
    gateway: Gateway, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationFailed, match="allow-list"):
        register(gateway, upstream)  # nothing allowed by default
    monkeypatch.setenv("SHUZHI_GATEWAY__SERVICE_HOSTS", '["127.0.0.1:1"]')
    reset_settings()
    with pytest.raises(ValidationFailed, match="allow-list"):
        register(gateway, upstream)  # the right host on another port
    monkeypatch.setenv("SHUZHI_GATEWAY__SERVICE_HOSTS", '["127.0.0.1"]')
    reset_settings()
    for bad in ("ftp://127.0.0.1/x", "http://user:pw@127.0.0.1/x", "http://127.0.0.1/x?a=1"):
        with pytest.raises(ValidationFailed, match="base_url"):
            register(gateway, upstream, base_url=bad)


def test_applying_to_call_needs_a_registered_service(gateway: Gateway) -> None:
    with pytest.raises(ValidationFailed, match="no service registered"):
        gateway.apply("zj_health_app", fields=[], rights=["call"])
    with pytest.raises(ValidationFailed, match="fields"):
        gateway.apply("zj_health_app", fields=[], rights=["read"])


@pytest.mark.parametrize(
    ("path", "patterns", "allowed_"),
    [
        ("/a/b", ["/a/*"], True),
        ("/a/b/c", ["/a/*"], False),
        ("/a/b/c", ["/a/**"], True),
        ("/a", ["/a/**"], True),
        ("/b", ["/a/**"], False),
        ("/x/1/y", ["/x/*/y"], True),
        ("/", ["/**"], True),
    ],
)
def test_path_patterns(path: str, patterns: list[str], allowed_: bool) -> None:
    assert path_allowed(path, patterns) is allowed_
