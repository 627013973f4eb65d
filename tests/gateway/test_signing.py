"""The signature of a gateway call: the canonical request, a worked example whose signature
the test computes itself, and the server's answer to calls signed by hand.

``send`` is the signed call the other gateway test modules make when they need the raw
HTTP answer or a date that follows the server's (movable) clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from shuzhi.core import clock
from shuzhi.gateway import signing
from tests.api.support import assert_problem
from tests.gateway.data import CODE, Gateway

RECORDS = f"/gateway/v1/resources/{CODE}/records"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def stamp(moment: datetime | None = None) -> str:
    """An RFC 3339 UTC date; by default the server clock's now, so a moved clock moves it."""
    return (moment or clock.now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def send(
    gateway: Gateway,
    consumer: str,
    path: str = RECORDS,
    params: Iterable[tuple[str, Any]] = (),
    *,
    method: str = "GET",
    body: bytes = b"",
    date: str | None = None,
    nonce: str | None = None,
    key: str | None = None,
    secret: str | None = None,
    purpose: str | None = None,
    user: str | None = None,
) -> Any:
    """One call signed as ``shuzhi.client`` signs it, dated by the server clock, sent
    through the test app; returns the raw answer whatever its status."""
    client = gateway.client(consumer, purpose=purpose, user=user)
    if key is not None:
        client.key = key
    if secret is not None:
        client.secret = secret
    query = [(name, str(value)) for name, value in params]
    headers = client.signed_headers(
        method, path, query, body, date=date or stamp(), nonce=nonce or secrets.token_hex(16)
    )
    encoded = signing.canonical_query(query)
    return gateway.http.request(
        method, path + (f"?{encoded}" if encoded else ""), headers=headers, content=body or None
    )


def hand_signature(secret: str, text: str) -> str:
    return base64.b64encode(
        hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    ).decode()


# -- the canonical request ----------------------------------------------------------------


def canonical(**overrides: Any) -> str:
    parts: dict[str, Any] = {
        "method": "GET",
        "path": RECORDS,
        "query": [],
        "key": "SZ0123456789ABCDEF0123",
        "date": "2024-05-01T08:00:00Z",
        "nonce": "0123456789abcdef0123456789abcdef",
        "body": b"",
        **overrides,
    }
    return signing.canonical(**parts)


def test_the_method_is_upper_cased() -> None:
    assert canonical(method="get") == canonical(method="GET")
    assert canonical(method="post").startswith("POST\n")


def test_the_query_is_sorted_by_name_then_value() -> None:
    query = [("z", "1"), ("a", "2"), ("a", "10"), ("m", "b"), ("m", "a")]
    assert signing.canonical_query(query) == "a=10&a=2&m=a&m=b&z=1"
    # the order the caller gave does not matter
    assert signing.canonical_query(reversed(query)) == "a=10&a=2&m=a&m=b&z=1"


def test_the_query_is_percent_encoded_as_rfc_3986() -> None:
    assert signing.canonical_query([("gender", "男")]) == "gender=%E7%94%B7"
    assert (
        signing.canonical_query([("q", "文三路 1号")])
        == "q=%E6%96%87%E4%B8%89%E8%B7%AF%201%E5%8F%B7"
    )
    # unreserved characters stay; everything else, '+', '/', '*' and ',' included, is %XX
    assert signing.canonical_query([("k", "aZ09-._~")]) == "k=aZ09-._~"
    assert signing.canonical_query([("k", "a+b/c*d,e&f=g")]) == "k=a%2Bb%2Fc%2Ad%2Ce%26f%3Dg"
    assert signing.canonical_query([("名 字", "")]) == "%E5%90%8D%20%E5%AD%97="


def test_the_body_digest_is_sha256_hex() -> None:
    assert signing.body_digest(b"") == EMPTY_SHA256
    assert canonical().endswith("\n" + EMPTY_SHA256)
    body = '{"attributes":{"full_name":"张三"}}'.encode()
    assert canonical(method="POST", body=body).endswith("\n" + hashlib.sha256(body).hexdigest())


def test_the_raw_query_string_is_read_back_decoded_with_blanks_kept() -> None:
    assert signing.query_pairs("gender=%E7%94%B7&fields=full_name%2Cage&flag=") == [
        ("gender", "男"),
        ("fields", "full_name,age"),
        ("flag", ""),
    ]


def test_a_worked_example() -> None:
    key = "SZ0123456789ABCDEF0123"
    secret = "c2VjcmV0LW9mLXRoZS13b3JrZWQtZXhhbXBsZQ"
    date = "2024-05-01T08:00:00Z"
    nonce = "4f1c2a9e8b7d6c5f4e3a2b1c0d9e8f7a"
    query = [("gender", "男"), ("fields", "full_name,age"), ("address", "文三路 1号"), ("a", "2")]
    expected = "\n".join(
        [
            "GET",
            RECORDS,
            "a=2"
            "&address=%E6%96%87%E4%B8%89%E8%B7%AF%201%E5%8F%B7"
            "&fields=full_name%2Cage"
            "&gender=%E7%94%B7",
            key,
            date,
            nonce,
            EMPTY_SHA256,
        ]
    )
    text = signing.canonical(
        method="get", path=RECORDS, query=query, key=key, date=date, nonce=nonce, body=b""
    )
    assert text == expected
    mac = hmac.new(secret.encode(), expected.encode(), hashlib.sha256).digest()
    assert signing.sign(secret, text) == base64.b64encode(mac).decode()
    assert signing.matches(secret, text, base64.b64encode(mac).decode())
    assert not signing.matches(secret + "x", text, base64.b64encode(mac).decode())


def test_every_part_of_the_request_is_covered() -> None:
    secret = "s"
    base = signing.sign(secret, canonical())
    for changed in (
        {"method": "POST"},
        {"path": RECORDS + "x"},
        {"query": [("limit", "1")]},
        {"key": "SZ0000000000000000000"},
        {"date": "2024-05-01T08:00:01Z"},
        {"nonce": "0123456789abcdef0123456789abcdee"},
        {"body": b"{}"},
    ):
        assert signing.sign(secret, canonical(**changed)) != base, changed


def test_the_client_signs_the_same_canonical_request() -> None:
    from shuzhi.client import Client

    client = Client("http://x", key="SZKEY0000000000000000", secret="sec")
    query = [("gender", "男"), ("fields", "full_name, age")]
    headers = client.signed_headers(
        "get", RECORDS, query, date="2024-05-01T08:00:00Z", nonce="n" * 32
    )
    text = "\n".join(
        [
            "GET",
            RECORDS,
            "fields=full_name%2C%20age&gender=%E7%94%B7",
            "SZKEY0000000000000000",
            "2024-05-01T08:00:00Z",
            "n" * 32,
            EMPTY_SHA256,
        ]
    )
    assert headers[signing.HEADER_SIGNATURE] == hand_signature("sec", text)
    assert headers[signing.HEADER_KEY] == "SZKEY0000000000000000"
    assert headers[signing.HEADER_DATE] == "2024-05-01T08:00:00Z"
    assert headers[signing.HEADER_NONCE] == "n" * 32


# -- the server ------------------------------------------------------------------------------


def test_the_server_accepts_a_call_signed_by_hand(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    key, secret = gateway.keys["zj_health_app"]
    date, nonce = stamp(), secrets.token_hex(16)
    text = "\n".join(
        [
            "GET",
            RECORDS,
            "fields=gender%2C%20age&gender=%E7%94%B7&limit=100",
            key,
            date,
            nonce,
            EMPTY_SHA256,
        ]
    )
    headers = {
        "X-Shuzhi-Key": key,
        "X-Shuzhi-Date": date,
        "X-Shuzhi-Nonce": nonce,
        "X-Shuzhi-Signature": hand_signature(secret, text),
    }
    # the URL gives the parameters in another order and encoding: the server canonicalises
    response = gateway.http.get(
        RECORDS + "?limit=100&gender=男&fields=gender,%20age", headers=headers
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["fields"] == ["gender", "age"]
    assert len(page["data"]) == 20
    assert {row["gender"] for row in page["data"]} == {"男"}


def test_the_server_accepts_a_signed_body(gateway: Gateway) -> None:
    gateway.grant("zj_health_app", rights=["verify"])
    key, secret = gateway.keys["zj_health_app"]
    path = f"/gateway/v1/resources/{CODE}/verify"
    body = '{"attributes": {"gender": "男"}}'.encode()
    date, nonce = stamp(), secrets.token_hex(16)
    text = "\n".join(["POST", path, "", key, date, nonce, hashlib.sha256(body).hexdigest()])
    headers = {
        "X-Shuzhi-Key": key,
        "X-Shuzhi-Date": date,
        "X-Shuzhi-Nonce": nonce,
        "X-Shuzhi-Signature": hand_signature(secret, text),
        "Content-Type": "application/json",
    }
    response = gateway.http.post(path, headers=headers, content=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"match": True}


def test_the_server_refuses_a_lower_case_method_in_the_signature(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    key, secret = gateway.keys["zj_health_app"]
    date, nonce = stamp(), secrets.token_hex(16)
    text = "\n".join(["get", RECORDS, "", key, date, nonce, EMPTY_SHA256])
    headers = {
        "X-Shuzhi-Key": key,
        "X-Shuzhi-Date": date,
        "X-Shuzhi-Nonce": nonce,
        "X-Shuzhi-Signature": hand_signature(secret, text),
    }
    assert_problem(gateway.http.get(RECORDS, headers=headers), 401, "bad-signature")


def test_the_server_refuses_a_signature_over_the_query_as_sent(gateway: Gateway) -> None:
    """A signature over the query as sent, unsorted and not re-encoded, does not match."""
    gateway.grant("zj_health_app")
    key, secret = gateway.keys["zj_health_app"]
    date, nonce = stamp(), secrets.token_hex(16)
    text = "\n".join(["GET", RECORDS, "limit=5&gender=男", key, date, nonce, EMPTY_SHA256])
    headers = {
        "X-Shuzhi-Key": key,
        "X-Shuzhi-Date": date,
        "X-Shuzhi-Nonce": nonce,
        "X-Shuzhi-Signature": hand_signature(secret, text),
    }
    response = gateway.http.get(RECORDS + "?limit=5&gender=男", headers=headers)
    assert_problem(response, 401, "bad-signature")


def test_the_client_calls_through_the_app(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    page = gateway.client("zj_health_app").records(CODE, fields="gender, age", gender="女")
    assert page["fields"] == ["gender", "age"]
    assert len(page["data"]) == 20
    response = send(gateway, "zj_health_app", params=[("fields", "gender"), ("limit", "1")])
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 1
