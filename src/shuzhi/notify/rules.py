"""Notify's rules: the states of a webhook delivery and the moves between them, what a
webhook may be registered as, and the signature every delivery carries.

The signature scheme, for receivers::

    X-Shuzhi-Timestamp: 2026-11-29T06:00:00Z
    X-Shuzhi-Signature: sha256=<lowercase hex HMAC-SHA256(secret, "{timestamp}.{body}")>

where ``secret`` is the webhook's secret as shown at registration (its ASCII text is the
key), ``timestamp`` the header's value, and ``body`` the request body exactly as received
(UTF-8 JSON). A receiver recomputes the signature, compares it in constant time, and
refuses a timestamp far from its own clock (a replayed request). ``verify_signature``
does all three with the standard library only.

For a while after the secret is rotated (``loop.webhook_overlap_hours``) the header
carries two signatures, the new secret's first, separated by a comma::

    X-Shuzhi-Signature: sha256=<with the new secret>, sha256=<with the old one>

A receiver accepts the delivery when one of them is its secret's, so it can switch to the
new secret at any time within the overlap without refusing a delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from shuzhi.core.enums import LabeledEnum

HEADER_EVENT = "X-Shuzhi-Event"
HEADER_DELIVERY = "X-Shuzhi-Delivery"
HEADER_TIMESTAMP = "X-Shuzhi-Timestamp"
HEADER_SIGNATURE = "X-Shuzhi-Signature"
SIGNATURE_PREFIX = "sha256="
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# how far a receiver's verify_signature lets a timestamp be from its clock by default
TOLERANCE_SECONDS = 300

WEBHOOK_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,79}$")
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
EVERY_EVENT = "*"
TEST_EVENT = "notify.test"
EVENTS_MAX = 50


class DeliveryState(LabeledEnum):
    pending = ("pending", "待发送", "pending")
    # claimed by a worker; ``next_at`` is when its claim lapses
    sending = ("sending", "发送中", "sending")
    delivered = ("delivered", "已送达", "delivered")
    failed = ("failed", "已放弃", "failed")


@dataclass(frozen=True)
class Move:
    """A change of a delivery's state: FROM states → TO state. Deliveries move by the
    worker's UPDATE statements, each guarded by ``WHERE state IN sources``."""

    name: str
    sources: frozenset[str]
    target: str


_P, _S = DeliveryState.pending.value, DeliveryState.sending.value

CLAIM = Move("claim", frozenset({_P, _S}), _S)  # a sending one only once its claim lapsed
DELIVER = Move("deliver", frozenset({_S}), DeliveryState.delivered.value)
RETRY = Move("retry", frozenset({_S}), _P)
GIVE_UP = Move("give_up", frozenset({_S}), DeliveryState.failed.value)
# the webhook was switched off: what still waits is not sent
CANCEL = Move("cancel", frozenset({_P}), DeliveryState.failed.value)

MOVES = {move.name: move for move in (CLAIM, DELIVER, RETRY, GIVE_UP, CANCEL)}


def backoff_seconds(*, attempts: int, base: int) -> int:
    """The wait after the ``attempts``-th failure: ``base``, then doubled each time."""
    return base * 2 ** max(attempts - 1, 0)


def host_allowed(host: str, port: int | None, allowed_hosts: list[str]) -> bool:
    """Whether ``host`` (with ``port``) is on the allow-list; an empty list allows any."""
    if not allowed_hosts:
        return True
    for entry in allowed_hosts:
        name, _, wanted = entry.strip().lower().partition(":")
        if name == host.lower() and (not wanted or (port is not None and wanted == str(port))):
            return True
    return False


# -- the secret and the signature -------------------------------------------------------


def derive_secret(secret_key: bytes, *, salt: str) -> str:
    """The secret of a webhook, computed from the platform key and the webhook's salt: the
    database alone cannot give it back, and changing the platform key retires it."""
    mac = hmac.new(secret_key, f"notify-webhook\n{salt}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC to the second, as ``X-Shuzhi-Timestamp`` carries it."""
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def sign(secret: str, timestamp: str, body: str | bytes, *, previous: str | None = None) -> str:
    """The ``X-Shuzhi-Signature`` header of a body sent at ``timestamp``; with the
    ``previous`` secret's signature after it, while a rotation overlaps."""
    text = timestamp.encode() + b"." + _as_bytes(body)
    header = SIGNATURE_PREFIX + hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()
    return header if previous is None else f"{header}, {sign(previous, timestamp, body)}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: str | bytes,
    header: str,
    *,
    tolerance_seconds: float | None = TOLERANCE_SECONDS,
    now: datetime | None = None,
) -> bool:
    """For receivers: whether ``header`` (one signature, or several separated by commas
    while a rotation overlaps) signs ``body`` at ``timestamp`` with ``secret``, and the
    timestamp lies within ``tolerance_seconds`` of ``now`` (the system clock; None skips
    the check, for a stored request checked later)."""
    if tolerance_seconds is not None:
        try:
            sent = datetime.strptime(timestamp, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
        except (TypeError, ValueError):
            return False
        if abs(((now or datetime.now(UTC)) - sent).total_seconds()) > tolerance_seconds:
            return False
    # compare_digest takes ASCII text only; anything else is no signature of ours
    if not header.isascii():
        return False
    expected = sign(secret, timestamp, body)
    # every one compared, so that the time taken does not tell which matched
    matches = [hmac.compare_digest(expected, part.strip().lower()) for part in header.split(",")]
    return any(matches)
