"""The worked example in docs/how-to/gateway.md is what the gateway computes."""

from __future__ import annotations

from pathlib import Path

from shuzhi.gateway import signing

DOC = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "gateway.md"
KEY = "SZ4F2A9C0D1E3B5A7C9E1F"
SECRET = "q0vVb3c8H0q9yJm2t3Xo5dE8rQ1uN6kLzP4sW7aGfYc"
PATH = "/gateway/v1/resources/gat_resident_population"


def test_the_documented_read_signs_as_documented() -> None:
    text = signing.canonical(
        method="GET",
        path=f"{PATH}/records",
        query=[("region", "330106"), ("limit", "50"), ("gender", "女"), ("age__gte", "18")],
        key=KEY,
        date="2026-11-29T06:00:00Z",
        nonce="5f1c9a7e3b2d4c6a8e0f1a2b3c4d5e6f",
        body=b"",
    )
    doc = DOC.read_text(encoding="utf-8")
    assert f"```\n{text}\n```" in doc
    assert signing.sign(SECRET, text) in doc


def test_the_documented_verification_signs_as_documented() -> None:
    body = '{"attributes": {"citizen_id": "11010519491231002X", "name": "张三"}}'.encode()
    text = signing.canonical(
        method="POST",
        path=f"{PATH}/verify",
        query=[],
        key=KEY,
        date="2026-11-29T06:00:05Z",
        nonce="0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        body=body,
    )
    doc = DOC.read_text(encoding="utf-8")
    assert body.decode() in doc
    assert signing.body_digest(body) in doc
    assert signing.sign(SECRET, text) in doc
