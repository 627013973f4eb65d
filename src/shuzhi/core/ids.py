"""Identifiers: request ids and opaque secrets."""

from __future__ import annotations

import hashlib
import secrets
import uuid


def request_id() -> str:
    return uuid.uuid4().hex


def secret_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(value: str) -> str:
    """SHA-256 hex of a high-entropy secret; such secrets need no slow hash."""
    return hashlib.sha256(value.encode()).hexdigest()
