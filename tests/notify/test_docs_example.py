"""The worked example in docs/how-to/notifications.md is what shuzhi signs, and its
standard-library receiver agrees with ``verify_signature``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from shuzhi.notify.rules import sign, verify_signature

DOC = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "notifications.md"
SECRET = "whk7Qm2pX9vR4tLs8NcB1eYd6uJa3Fg5Hz0KoWiPqEr"
TIMESTAMP = "2026-11-29T06:00:00Z"


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _body() -> str:
    match = re.search(r"body\n\n```\n(\{.*\})\n```", _doc())
    assert match, "the worked example's body is not in the document"
    return match.group(1)


def test_the_documented_delivery_signs_as_documented() -> None:
    doc, body = _doc(), _body()
    assert f"Secret `{SECRET}`, timestamp `{TIMESTAMP}`" in doc
    assert f"```\n{TIMESTAMP}.{body}\n```" in doc
    header = sign(SECRET, TIMESTAMP, body.encode())
    assert f"X-Shuzhi-Signature: {header}\n" in doc
    assert verify_signature(SECRET, TIMESTAMP, body.encode(), header, tolerance_seconds=None)


def test_the_documented_standard_library_receiver_agrees() -> None:
    match = re.search(r"```python\n(import hashlib\n.*?)```", _doc(), re.DOTALL)
    assert match, "the standard-library receiver is not in the document"
    namespace: dict = {}
    exec(match.group(1), namespace)
    verify = namespace["verify"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = _body().encode()
    assert verify(SECRET, now, body, sign(SECRET, now, body))
    assert not verify(SECRET, now, body, sign("another", now, body))
    assert not verify(SECRET, TIMESTAMP, body, sign(SECRET, TIMESTAMP, body))  # long past
