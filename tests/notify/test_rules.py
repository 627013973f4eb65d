"""The signature scheme as a receiver checks it, the backoff, the host allow-list, and
the delivery moves."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from shuzhi.notify import rules
from shuzhi.notify.rules import MOVES, DeliveryState, sign, verify_signature

SECRET = "s3cr3t"
AT = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
STAMP = "2026-11-29T06:00:00Z"
BODY = '{"event":"notify.test","id":1,"created_at":"2026-11-29T06:00:00Z","data":{}}'


def test_the_signature_is_hex_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{STAMP}.{BODY}".encode(), hashlib.sha256).hexdigest()
    assert sign(SECRET, STAMP, BODY) == f"sha256={expected}"
    assert sign(SECRET, STAMP, BODY.encode()) == sign(SECRET, STAMP, BODY)
    assert rules.timestamp(AT) == STAMP


def test_a_receiver_verifies_the_signature_and_the_time() -> None:
    header = sign(SECRET, STAMP, BODY)
    assert verify_signature(SECRET, STAMP, BODY, header, now=AT + timedelta(seconds=299))
    shouted = header.upper().replace("SHA", "sha")  # upper-case hex is the same digest
    assert verify_signature(SECRET, STAMP, BODY.encode(), shouted, now=AT)
    for secret, stamp, body, signature in (
        ("other", STAMP, BODY, header),
        (SECRET, "2026-11-29T06:00:01Z", BODY, header),
        (SECRET, STAMP, BODY + " ", header),
        (SECRET, STAMP, BODY, header[:-1]),
        (SECRET, STAMP, BODY, "sha256=签名"),
        (SECRET, STAMP, BODY, ""),
    ):
        assert not verify_signature(secret, stamp, body, signature, now=AT)
    # too old or from the future: a replay, or a clock far off
    assert not verify_signature(SECRET, STAMP, BODY, header, now=AT + timedelta(seconds=301))
    assert not verify_signature(SECRET, STAMP, BODY, header, now=AT - timedelta(seconds=301))
    assert not verify_signature(SECRET, "yesterday", BODY, header, now=AT)
    # a request stored and checked later
    assert verify_signature(SECRET, STAMP, BODY, header, tolerance_seconds=None)


def test_the_secret_comes_from_the_platform_key_and_the_salt() -> None:
    one = rules.derive_secret(b"platform key", salt="a" * 32)
    assert one == rules.derive_secret(b"platform key", salt="a" * 32)
    assert one != rules.derive_secret(b"platform key", salt="b" * 32)
    assert one != rules.derive_secret(b"another key", salt="a" * 32)
    assert len(one) == 43 and one.isascii()


def test_the_wait_doubles_after_each_failure() -> None:
    assert [rules.backoff_seconds(attempts=n, base=30) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("hooks.example.org", None, True),
        ("HOOKS.example.org", 443, True),
        ("10.0.0.5", 8443, True),
        ("10.0.0.5", 9000, False),
        ("10.0.0.5", None, False),
        ("evil.example.org", None, False),
    ],
)
def test_the_host_allow_list(host: str, port: int | None, allowed: bool) -> None:
    hosts = ["hooks.example.org", "10.0.0.5:8443"]
    assert rules.host_allowed(host, port, hosts) is allowed
    assert rules.host_allowed(host, port, []) is True


def test_every_move_names_known_states() -> None:
    states = {state.value for state in DeliveryState}
    for move in MOVES.values():
        assert move.sources <= states and move.target in states
    # nothing leaves a settled delivery
    settled = {DeliveryState.delivered.value, DeliveryState.failed.value}
    assert not any(move.sources & settled for move in MOVES.values())
