"""A small client that signs gateway calls for Python callers.

    from shuzhi.client import Client

    gateway = Client("https://data.example.gov.cn", key="SZ…", secret="…",
                     purpose="330100-QT-0001-2026-000123", user="wang.li")
    page = gateway.records("gat_resident_population", region_code="330106", limit=50)
    for row in gateway.iter_records("gat_resident_population", fields="name,gender"):
        ...
    gateway.verify("gat_resident_population", {"citizen_id": "…", "name": "…"})

It needs only the standard library. ``session`` may be any object with an httpx-style
``request(method, url, headers=..., content=...)`` (an ``httpx.Client`` or a test client);
without one, ``urllib`` sends the call.
"""

from __future__ import annotations

import json as jsonlib
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from shuzhi.gateway import signing

SAFE_IN_HEADER = "-._~:/@+=, "

Params = Mapping[str, Any] | list[tuple[str, Any]] | None


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = field(repr=False)

    def json(self) -> Any:
        return jsonlib.loads(self.body)


class GatewayError(Exception):
    """A refused call: ``status`` and the problem+json ``problem`` (``type`` names why)."""

    def __init__(self, response: Response) -> None:
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.body[:200].decode(errors="replace")}
        self.status = response.status
        self.problem = problem if isinstance(problem, dict) else {"detail": str(problem)}
        self.type = self.problem.get("type", "")
        super().__init__(f"{self.status} {self.type}: {self.problem.get('detail', '')}")


def _pairs(params: Params) -> list[tuple[str, str]]:
    if not params:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    found: list[tuple[str, str]] = []
    for name, value in items:
        if value is None:
            continue
        if isinstance(value, list | tuple | set):
            value = ",".join(str(item) for item in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        found.append((str(name), str(value)))
    return found


class Client:
    def __init__(
        self,
        base_url: str,
        *,
        key: str,
        secret: str,
        purpose: str | None = None,
        user: str | None = None,
        timeout: float = 30.0,
        session: Any = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.secret = secret
        self.purpose = purpose
        self.user = user
        self.timeout = timeout
        self.session = session

    def signed_headers(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        body: bytes = b"",
        *,
        date: str | None = None,
        nonce: str | None = None,
    ) -> dict[str, str]:
        date = date or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        nonce = nonce or secrets.token_hex(16)
        text = signing.canonical(
            method=method, path=path, query=query, key=self.key, date=date, nonce=nonce, body=body
        )
        headers = {
            signing.HEADER_KEY: self.key,
            signing.HEADER_DATE: date,
            signing.HEADER_NONCE: nonce,
            signing.HEADER_SIGNATURE: signing.sign(self.secret, text),
        }
        # headers carry Latin-1 only: Chinese purposes and names travel percent-encoded
        if self.purpose:
            headers[signing.HEADER_PURPOSE] = quote(self.purpose, safe=SAFE_IN_HEADER)
        if self.user:
            headers[signing.HEADER_USER] = quote(self.user, safe=SAFE_IN_HEADER)
        if body:
            headers["Content-Type"] = "application/json"
        return headers

    def request(
        self, method: str, path: str, *, params: Params = None, json: Any = None
    ) -> Response:
        """Send one signed call; raise ``GatewayError`` unless it succeeds."""
        query = _pairs(params)
        # the server checks the path as sent: encode it once, here, and sign that
        path = quote(path, safe="/-._~!$&'()*+,;=:@%")
        body = b"" if json is None else jsonlib.dumps(json, ensure_ascii=False).encode()
        headers = self.signed_headers(method, path, query, body)
        encoded = signing.canonical_query(query)
        url = self.base_url + path + (f"?{encoded}" if encoded else "")
        response = self._send(method.upper(), url, headers, body)
        if response.status >= 400:
            raise GatewayError(response)
        return response

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Response:
        if self.session is not None:
            answer = self.session.request(method, url, headers=headers, content=body or None)
            return Response(answer.status_code, dict(answer.headers), answer.content)
        request = urllib.request.Request(url, data=body or None, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return Response(answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers), error.read())

    # -- the operations ------------------------------------------------------------------

    def records(self, code: str, **params: Any) -> dict[str, Any]:
        """One page: ``fields``, ``sort``, ``limit``, ``cursor`` and filters such as
        ``age__gte=18`` or ``gender__in=["1", "2"]``."""
        return self.request("GET", f"/gateway/v1/resources/{code}/records", params=params).json()

    def records_csv(self, code: str, **params: Any) -> str:
        params["format"] = "csv"
        path = f"/gateway/v1/resources/{code}/records"
        return self.request("GET", path, params=params).body.decode()

    def iter_records(self, code: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every row the query matches, page after page."""
        while True:
            page = self.records(code, **params)
            yield from page["data"]
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def verify(self, code: str, attributes: Mapping[str, Any]) -> bool:
        path = f"/gateway/v1/resources/{code}/verify"
        return bool(
            self.request("POST", path, json={"attributes": dict(attributes)}).json()["match"]
        )

    def grants(self) -> list[dict[str, Any]]:
        return self.request("GET", "/gateway/v1/grants").json()["data"]

    def application(self, application_id: int) -> dict[str, Any]:
        return self.request("GET", f"/gateway/v1/applications/{application_id}").json()
