"""The signature of a gateway call, shared by the server and ``shuzhi.client``.

    X-Shuzhi-Signature = base64(HMAC-SHA256(secret, canonical))

where ``canonical`` joins with newlines: the method in upper case, the path, the query
string with its parameters sorted by name and then value and percent-encoded as RFC 3986
(``A-Z a-z 0-9 - . _ ~`` kept, everything else ``%XX`` of its UTF-8 bytes), the access key,
the date (RFC 3339, UTC), the nonce, and the lowercase hex SHA-256 of the body (of nothing
for a call without one). Standard library only, so the client needs nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote

HEADER_KEY = "X-Shuzhi-Key"
HEADER_DATE = "X-Shuzhi-Date"
HEADER_NONCE = "X-Shuzhi-Nonce"
HEADER_SIGNATURE = "X-Shuzhi-Signature"
HEADER_PURPOSE = "X-Shuzhi-Purpose"
HEADER_USER = "X-Shuzhi-User"


def _encode(text: str) -> str:
    return quote(text, safe="-._~")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{_encode(name)}={_encode(value)}" for name, value in sorted(pairs))


def query_pairs(query_string: str) -> list[tuple[str, str]]:
    """The parameters of a raw query string, decoded, blanks kept."""
    return parse_qsl(query_string, keep_blank_values=True)


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    key: str,
    date: str,
    nonce: str,
    body: bytes,
) -> str:
    return "\n".join(
        (method.upper(), path, canonical_query(query), key, date, nonce, body_digest(body))
    )


def sign(secret: str, text: str) -> str:
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def matches(secret: str, text: str, signature: str) -> bool:
    # compare_digest takes ASCII text only; anything else is no signature of ours
    return signature.isascii() and hmac.compare_digest(sign(secret, text), signature)
