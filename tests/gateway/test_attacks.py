"""Calls that must be refused: each gets its status and problem type, leaks no value, and
leaves an access-log entry with that outcome and no rows."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shuzhi.core import clock
from shuzhi.core.permissions import SYSTEM
from shuzhi.gateway import service, signing
from tests.api.support import assert_problem
from tests.gateway.data import CODE, PEOPLE, Gateway
from tests.gateway.test_ledger import entries, verification
from tests.gateway.test_signing import RECORDS, send, stamp

VERIFY = f"/gateway/v1/resources/{CODE}/verify"
PERSONAL = ("id_card", "full_name", "mobile", "address")


@pytest.fixture
def move_clock() -> Iterator[Callable[[timedelta], datetime]]:
    """Pin the server clock at now plus an offset; the real clock comes back afterwards."""
    start = clock.now().replace(microsecond=0)

    def move(by: timedelta) -> datetime:
        moment = start + by
        clock.set_clock(lambda: moment)
        return moment

    move(timedelta(0))
    try:
        yield move
    finally:
        clock.set_clock(None)


def leaks(body: bytes) -> list[str]:
    text = body.decode(errors="replace")
    return [person[name] for person in PEOPLE for name in PERSONAL if person[name] in text]


def assert_refused(gateway: Gateway, response: Any, status: int, slug: str) -> dict[str, Any]:
    """Refused as ``slug``, nothing personal in the answer, and logged as such; returns the
    log entry."""
    assert_problem(response, status, slug)
    assert leaks(response.content) == []
    entry = entries(gateway)[-1]
    assert (entry["status"], entry["outcome"], entry["rows"]) == (status, slug, 0)
    assert entry["masking"] == {}
    assert entry["response_sha256"] == hashlib.sha256(response.content).hexdigest()
    assert entry["request_id"] == response.headers["x-request-id"]
    return entry


def person_in(region: str) -> dict[str, str]:
    return next(person for person in PEOPLE if person["region"] == region)


def body_of(attributes: dict[str, Any]) -> bytes:
    return json.dumps({"attributes": attributes}, ensure_ascii=False).encode()


# -- grants ------------------------------------------------------------------------------------


def test_no_grant(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    entry = assert_refused(gateway, send(gateway, "hz_police_app"), 403, "no-grant")
    assert entry["consumer_code"] == "hz_police_app"
    assert entry["grant_id"] is None
    answer = send(
        gateway,
        "hz_police_app",
        VERIFY,
        method="POST",
        body=body_of({"id_card": PEOPLE[0]["id_card"]}),
    )
    assert_refused(gateway, answer, 403, "no-grant")


def test_a_field_outside_the_grant(gateway: Gateway) -> None:
    grant = gateway.grant("zj_health_app", fields=["gender", "age"], rights=["read", "verify"])
    for fields in ("full_name", "gender,mobile", "id_card,age"):
        answer = send(gateway, "zj_health_app", params=[("fields", fields)])
        entry = assert_refused(gateway, answer, 403, "field-not-granted")
        assert entry["grant_id"] == grant
        assert entry["fields"] == fields.split(",")
    answer = send(gateway, "zj_health_app", params=[("region", "330106")])
    assert_refused(gateway, answer, 403, "field-not-granted")
    answer = send(
        gateway,
        "zj_health_app",
        VERIFY,
        method="POST",
        body=body_of({"full_name": PEOPLE[0]["full_name"]}),
    )
    assert_refused(gateway, answer, 403, "field-not-granted")


def test_a_masked_field_cannot_be_guessed_by_filter_or_sort(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    person = PEOPLE[3]
    for params in (
        [("id_card", person["id_card"])],
        [("mobile__gte", "139")],
        [("full_name__in", person["full_name"])],
        [("sort", "-id_card")],
    ):
        answer = send(gateway, "zj_health_app", params=params)
        assert_refused(gateway, answer, 403, "field-not-granted")


def test_rows_outside_the_region_never_come(gateway: Gateway) -> None:
    gateway.grant("hz_police_app", region="330106", rights=["read", "verify"])
    for params in (
        [("region", "330200")],
        [("region__in", "330200,330102")],
        [("region__ne", "330106")],
    ):
        answer = send(gateway, "hz_police_app", params=params)
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"] == []
        entry = entries(gateway)[-1]
        assert (entry["outcome"], entry["rows"]) == ("ok", 0)
    widened = send(gateway, "hz_police_app", params=[("region__in", "330106,330200")])
    assert {row["region"] for row in widened.json()["data"]} == {"330106"}
    outsider = person_in("330200")
    answer = send(
        gateway,
        "hz_police_app",
        VERIFY,
        method="POST",
        body=body_of({"id_card": outsider["id_card"]}),
    )
    assert answer.json() == {"match": False}


def test_another_consumers_application_is_not_found(gateway: Gateway) -> None:
    theirs = gateway.apply("hz_police_app", fields=["gender"])
    mine = gateway.apply("zj_health_app", fields=["gender"])
    answer = send(gateway, "zj_health_app", f"/gateway/v1/applications/{theirs}")
    assert_refused(gateway, answer, 404, "not-found")
    assert "hz_police_app" not in answer.text
    assert_refused(
        gateway, send(gateway, "zj_health_app", "/gateway/v1/applications/999"), 404, "not-found"
    )
    assert send(gateway, "zj_health_app", f"/gateway/v1/applications/{mine}").status_code == 200
    for bad in ("abc", "-1", "1234567890"):
        answer = send(gateway, "zj_health_app", f"/gateway/v1/applications/{bad}")
        assert_refused(gateway, answer, 422, "validation")


def test_an_expired_grant(gateway: Gateway, move_clock: Callable[[timedelta], datetime]) -> None:
    today = clock.now().date()
    gateway.grant("zj_health_app", valid_until=today.isoformat())
    assert send(gateway, "zj_health_app").status_code == 200
    move_clock(timedelta(days=1))
    entry = assert_refused(gateway, send(gateway, "zj_health_app"), 403, "grant-inactive")
    assert entry["consumer_code"] == "zj_health_app"
    answer = send(gateway, "zj_health_app", params=[("limit", "1")])
    assert_refused(gateway, answer, 403, "grant-inactive")


def test_a_grant_not_yet_in_force(
    gateway: Gateway, move_clock: Callable[[timedelta], datetime]
) -> None:
    today = clock.now().date()
    gateway.grant("zj_health_app", valid_from=(today + timedelta(days=3)).isoformat())
    assert_refused(gateway, send(gateway, "zj_health_app"), 403, "grant-inactive")
    move_clock(timedelta(days=3))
    assert send(gateway, "zj_health_app").status_code == 200


def test_a_suspended_grant(gateway: Gateway) -> None:
    grant = gateway.grant("zj_health_app", rights=["read", "verify"])
    with gateway.db.transaction() as session:
        service.change_grant(session, actor=SYSTEM, grant_id=grant, name="suspend", comment="核查")
    assert_refused(gateway, send(gateway, "zj_health_app"), 403, "grant-inactive")
    answer = send(gateway, "zj_health_app", VERIFY, method="POST", body=body_of({"gender": "男"}))
    assert_refused(gateway, answer, 403, "grant-inactive")
    with gateway.db.transaction() as session:
        service.change_grant(session, actor=SYSTEM, grant_id=grant, name="resume")
    assert send(gateway, "zj_health_app").status_code == 200


@pytest.mark.parametrize("how", ["revoke", "expire job"])
def test_a_revoked_or_expired_grant(
    gateway: Gateway, move_clock: Callable[[timedelta], datetime], how: str
) -> None:
    today = clock.now().date()
    grant = gateway.grant("zj_health_app", valid_until=today.isoformat())
    assert send(gateway, "zj_health_app").status_code == 200
    if how == "revoke":
        with gateway.db.transaction() as session:
            service.change_grant(session, actor=SYSTEM, grant_id=grant, name="revoke", comment="x")
    else:
        move_clock(timedelta(days=1))
        assert service.expire_grants(gateway.db) == 1
    assert_refused(gateway, send(gateway, "zj_health_app"), 403, "grant-inactive")
    # a new grant supersedes it
    gateway.grant("zj_health_app", fields=["gender"])
    assert send(gateway, "zj_health_app").json()["fields"] == ["gender"]


@pytest.mark.parametrize("refusal", ["suspended", "right-not-granted"])
def test_a_refusal_by_the_grant_names_it_in_the_log(gateway: Gateway, refusal: str) -> None:
    grant = gateway.grant("zj_health_app")
    if refusal == "suspended":
        with gateway.db.transaction() as session:
            service.change_grant(session, actor=SYSTEM, grant_id=grant, name="suspend", comment="x")
        answer = send(gateway, "zj_health_app")
        slug = "grant-inactive"
    else:
        answer = send(gateway, "zj_health_app", VERIFY, method="POST", body=body_of({"age": 1}))
        slug = "right-not-granted"
    entry = assert_refused(gateway, answer, 403, slug)
    assert entry["grant_id"] == grant


# -- signatures ---------------------------------------------------------------------------------


def signed_headers(
    gateway: Gateway, consumer: str, path: str = RECORDS, **options: Any
) -> dict[str, str]:
    client = gateway.client(consumer)
    return client.signed_headers(
        "GET", path, [], date=options.get("date", stamp()), nonce=options.get("nonce")
    )


def test_a_replayed_nonce(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    headers = signed_headers(gateway, "zj_health_app")
    first = gateway.http.get(RECORDS, headers=headers)
    assert first.status_code == 200
    replay = gateway.http.get(RECORDS, headers=headers)
    entry = assert_refused(gateway, replay, 401, "replayed-nonce")
    assert entry["access_key"] == gateway.keys["zj_health_app"][0]
    assert replay.headers["www-authenticate"] == "Shuzhi-HMAC-SHA256"


def test_a_refused_call_uses_up_its_nonce(gateway: Gateway) -> None:
    headers = signed_headers(gateway, "zj_health_app")
    assert_refused(gateway, gateway.http.get(RECORDS, headers=headers), 403, "no-grant")
    gateway.grant("zj_health_app")
    assert_refused(gateway, gateway.http.get(RECORDS, headers=headers), 401, "replayed-nonce")


def test_a_nonce_is_per_key(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    gateway.grant("hz_police_app")
    nonce = secrets.token_hex(16)
    assert send(gateway, "zj_health_app", nonce=nonce).status_code == 200
    assert send(gateway, "hz_police_app", nonce=nonce).status_code == 200
    assert_refused(gateway, send(gateway, "zj_health_app", nonce=nonce), 401, "replayed-nonce")


def test_a_replay_after_the_nonces_are_forgotten_is_stale(
    gateway: Gateway, move_clock: Callable[[timedelta], datetime]
) -> None:
    gateway.grant("zj_health_app")
    move_clock(timedelta(0))
    headers = signed_headers(gateway, "zj_health_app")
    assert gateway.http.get(RECORDS, headers=headers).status_code == 200
    move_clock(timedelta(seconds=181))
    assert service.prune_counters(gateway.db) >= 1
    assert_refused(gateway, gateway.http.get(RECORDS, headers=headers), 401, "stale-date")


def test_a_stale_date(gateway: Gateway, move_clock: Callable[[timedelta], datetime]) -> None:
    gateway.grant("zj_health_app")
    now = move_clock(timedelta(0))
    for offset in (-91, 91, -3600, 86400):
        answer = send(gateway, "zj_health_app", date=stamp(now + timedelta(seconds=offset)))
        entry = assert_refused(gateway, answer, 401, "stale-date")
        assert entry["consumer_code"] is None
    for offset in (-90, 90, 0):
        answer = send(gateway, "zj_health_app", date=stamp(now + timedelta(seconds=offset)))
        assert answer.status_code == 200, (offset, answer.text)


@pytest.mark.parametrize("date", ["yesterday", "2024-05-01T08:00:00", "", "2024-13-01T00:00:00Z"])
def test_a_malformed_date(gateway: Gateway, date: str) -> None:
    gateway.grant("zj_health_app")
    answer = send(gateway, "zj_health_app", date=date or " ")
    slug = "unsigned" if not date else "stale-date"
    assert_refused(gateway, answer, 401, slug)


def test_a_date_with_an_offset_is_understood(
    gateway: Gateway, move_clock: Callable[[timedelta], datetime]
) -> None:
    gateway.grant("zj_health_app")
    now = move_clock(timedelta(0))
    for hours in (8, -5, 0):
        date = now.astimezone(timezone(timedelta(hours=hours))).isoformat()
        assert send(gateway, "zj_health_app", date=date).status_code == 200, date
    assert send(gateway, "zj_health_app", date=stamp(now).replace("Z", "z")).status_code == 200


def test_a_bad_signature(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    assert_refused(
        gateway, send(gateway, "zj_health_app", secret="not-the-secret"), 401, "bad-signature"
    )
    # signed for one page size, sent with another
    headers = gateway.client("zj_health_app").signed_headers("GET", RECORDS, [("limit", "1")])
    answer = gateway.http.get(RECORDS + "?limit=500", headers=headers)
    assert_refused(gateway, answer, 401, "bad-signature")
    # signed for one body, sent with another
    body = body_of({"gender": "男"})
    headers = gateway.client("zj_health_app").signed_headers("POST", VERIFY, [], body)
    answer = gateway.http.post(VERIFY, headers=headers, content=body_of({"gender": "女"}))
    assert_refused(gateway, answer, 401, "bad-signature")
    # signed for another path
    headers = gateway.client("zj_health_app").signed_headers("GET", "/gateway/v1/grants", [])
    assert_refused(gateway, gateway.http.get(RECORDS, headers=headers), 401, "bad-signature")
    # the other consumer's secret
    other = gateway.keys["hz_police_app"][1]
    assert_refused(gateway, send(gateway, "zj_health_app", secret=other), 401, "bad-signature")


def test_an_unknown_key(gateway: Gateway) -> None:
    answer = send(gateway, "zj_health_app", key="SZ0000000000000000000000")
    entry = assert_refused(gateway, answer, 401, "unknown-key")
    assert entry["access_key"] == "SZ0000000000000000000000"
    assert entry["consumer_code"] is None


def test_a_revoked_key(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    assert send(gateway, "zj_health_app").status_code == 200
    with gateway.db.transaction() as session:
        service.revoke_credential(
            session, actor=SYSTEM, access_key=gateway.keys["zj_health_app"][0]
        )
    assert_refused(gateway, send(gateway, "zj_health_app"), 401, "revoked-key")


def test_a_disabled_consumer(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    with gateway.db.transaction() as session:
        service.set_consumer_active(session, actor=SYSTEM, code="zj_health_app", active=False)
    assert_refused(gateway, send(gateway, "zj_health_app"), 401, "revoked-key")


def test_an_unsigned_call(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    assert_refused(gateway, gateway.http.get(RECORDS), 401, "unsigned")
    full = signed_headers(gateway, "zj_health_app")
    for missing in (
        signing.HEADER_KEY,
        signing.HEADER_DATE,
        signing.HEADER_NONCE,
        signing.HEADER_SIGNATURE,
    ):
        headers = {name: value for name, value in full.items() if name != missing}
        answer = gateway.http.get(RECORDS, headers=headers)
        body = assert_refused(gateway, answer, 401, "unsigned")
        assert body["consumer_code"] is None
    answer = gateway.http.post(VERIFY, content=body_of({"gender": "男"}))
    assert_refused(gateway, answer, 401, "unsigned")
    assert_refused(gateway, gateway.http.get("/gateway/v1/grants"), 401, "unsigned")


@pytest.mark.parametrize(
    "nonce", ["short", "x" * 65, "a" * 15 + "!", "abc def ghi jkl mno", "ä" * 16]
)
def test_a_malformed_nonce(gateway: Gateway, nonce: str) -> None:
    gateway.grant("zj_health_app")
    headers = signed_headers(gateway, "zj_health_app")
    headers[signing.HEADER_NONCE] = nonce
    answer = gateway.http.get(RECORDS, headers={k: v.encode() for k, v in headers.items()})
    assert_refused(gateway, answer, 401, "unsigned")


def test_a_non_ascii_signature_is_a_bad_signature(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    headers = {k: v.encode() for k, v in signed_headers(gateway, "zj_health_app").items()}
    headers[signing.HEADER_SIGNATURE] = "é".encode("latin-1")
    assert_refused(gateway, gateway.http.get(RECORDS, headers=headers), 401, "bad-signature")


# -- parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        [("gender", "男' OR '1'='1")],
        [("gender", "男'; DROP TABLE gateway_grant; --")],
        [("region__in", "330106') OR ('1'='1")],
        [("gender__ne", "x' OR 1=1 --"), ("age__lt", "0")],
    ],
)
def test_sql_in_a_filter_value_is_just_a_value(
    gateway: Gateway, params: list[tuple[str, str]]
) -> None:
    gateway.grant("zj_health_app")
    answer = send(gateway, "zj_health_app", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == []
    assert entries(gateway)[-1]["rows"] == 0
    # the tables are still there
    assert send(gateway, "zj_health_app", params=[("limit", "1")]).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        [("gender' OR '1'='1", "x")],
        [("fields", "gender FROM x; --")],
        [("fields", 'gender"')],
        [("sort", "age; DROP TABLE gateway_grant")],
        [("sort", "age DESC, 1")],
    ],
)
def test_sql_in_a_name_is_refused(gateway: Gateway, params: list[tuple[str, str]]) -> None:
    gateway.grant("zj_health_app")
    assert_refused(gateway, send(gateway, "zj_health_app", params=params), 422, "validation")


@pytest.mark.parametrize("limit", ["501", "100000", "99999999999999999999999"])
def test_a_page_over_the_limit(gateway: Gateway, limit: str) -> None:
    gateway.grant("zj_health_app")
    answer = send(gateway, "zj_health_app", params=[("limit", limit)])
    entry = assert_refused(gateway, answer, 422, "validation")
    assert entry["grant_id"] is not None
    assert send(gateway, "zj_health_app", params=[("limit", "500")]).status_code == 200


def test_a_superscript_limit_is_422(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    assert_refused(
        gateway, send(gateway, "zj_health_app", params=[("limit", "²")]), 422, "validation"
    )


def test_a_superscript_application_id_is_422(gateway: Gateway) -> None:
    # the path as sent, percent-encoded, is the path signed
    answer = send(gateway, "zj_health_app", "/gateway/v1/applications/%C2%B2")
    assert_refused(gateway, answer, 422, "validation")


def test_a_field_asked_twice_comes_once(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    answer = send(gateway, "zj_health_app", params=[("fields", "age,age,gender, age")])
    assert answer.status_code == 200, answer.text
    assert answer.json()["fields"] == ["age", "gender"]
    assert entries(gateway)[-1]["fields"] == ["age", "gender"]


def test_a_non_ascii_cursor_is_422(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    answer = send(gateway, "zj_health_app", params=[("cursor", "abc.é")])
    assert_refused(gateway, answer, 422, "validation")


def test_a_signed_body_over_64_kib_is_too_large(gateway: Gateway) -> None:
    gateway.grant("zj_health_app", rights=["verify"])
    body = body_of({"gender": "男" + " " * (70 * 1024)})
    answer = send(gateway, "zj_health_app", VERIFY, method="POST", body=body)
    assert_refused(gateway, answer, 413, "too-large")


# -- limits ------------------------------------------------------------------------------------


def test_requests_per_second(gateway: Gateway, move_clock: Callable[[timedelta], datetime]) -> None:
    gateway.grant("zj_health_app", decision={"requests_per_second": 2})
    move_clock(timedelta(0))
    assert send(gateway, "zj_health_app", params=[("limit", "1")]).status_code == 200
    assert send(gateway, "zj_health_app", params=[("limit", "1")]).status_code == 200
    third = send(gateway, "zj_health_app", params=[("limit", "1")])
    assert_refused(gateway, third, 429, "rate-limited")
    assert third.headers["retry-after"] == "1"
    move_clock(timedelta(seconds=1))
    assert send(gateway, "zj_health_app", params=[("limit", "1")]).status_code == 200


def test_refused_calls_do_not_use_the_rate(
    gateway: Gateway, move_clock: Callable[[timedelta], datetime]
) -> None:
    gateway.grant("zj_health_app", fields=["gender"], decision={"requests_per_second": 2})
    move_clock(timedelta(0))
    for _ in range(3):
        assert send(gateway, "zj_health_app", params=[("fields", "age")]).status_code == 403
    assert send(gateway, "zj_health_app").status_code == 200


def test_rows_per_day(gateway: Gateway, move_clock: Callable[[timedelta], datetime]) -> None:
    gateway.grant("zj_health_app", decision={"rows_per_day": 10, "requests_per_second": 100})
    move_clock(timedelta(0))
    assert len(send(gateway, "zj_health_app", params=[("limit", "6")]).json()["data"]) == 6
    over = send(gateway, "zj_health_app", params=[("limit", "6")])  # would make 12
    assert_refused(gateway, over, 429, "rate-limited")
    assert int(over.headers["retry-after"]) >= 1
    assert len(send(gateway, "zj_health_app", params=[("limit", "4")]).json()["data"]) == 4
    spent = send(gateway, "zj_health_app", params=[("limit", "1")])
    assert_refused(gateway, spent, 429, "rate-limited")
    assert 1 <= int(spent.headers["retry-after"]) <= 86_401
    move_clock(timedelta(days=1))
    assert len(send(gateway, "zj_health_app", params=[("limit", "10")]).json()["data"]) == 10


def test_limits_are_per_grant(
    gateway: Gateway, move_clock: Callable[[timedelta], datetime]
) -> None:
    gateway.grant("zj_health_app", decision={"requests_per_second": 1})
    gateway.grant("hz_police_app", decision={"requests_per_second": 1})
    move_clock(timedelta(0))
    assert send(gateway, "zj_health_app").status_code == 200
    assert send(gateway, "hz_police_app").status_code == 200
    assert send(gateway, "zj_health_app").status_code == 429


# -- credentials -----------------------------------------------------------------------------


def test_rotation_keeps_the_old_key_for_the_overlap(
    gateway: Gateway, move_clock: Callable[[timedelta], datetime]
) -> None:
    gateway.grant("zj_health_app", decision={"requests_per_second": 100})
    old_key, old_secret = gateway.keys["zj_health_app"]
    with gateway.db.transaction() as session:
        credential, new_secret = service.rotate_credential(
            session, actor=SYSTEM, access_key=old_key
        )
        new_key = credential.access_key
    assert new_key != old_key
    old = {"key": old_key, "secret": old_secret}
    new = {"key": new_key, "secret": new_secret}
    assert send(gateway, "zj_health_app", **old).status_code == 200
    assert send(gateway, "zj_health_app", **new).status_code == 200
    move_clock(timedelta(hours=23, minutes=59))
    assert send(gateway, "zj_health_app", **old).status_code == 200
    move_clock(timedelta(hours=24, seconds=1))
    entry = assert_refused(gateway, send(gateway, "zj_health_app", **old), 401, "revoked-key")
    assert entry["access_key"] == old_key
    assert send(gateway, "zj_health_app", **new).status_code == 200
    # the new secret does not sign for the old key, nor the old for the new
    assert_refused(
        gateway,
        send(gateway, "zj_health_app", key=new_key, secret=old_secret),
        401,
        "bad-signature",
    )


def test_the_chain_stays_intact_through_the_attacks(gateway: Gateway) -> None:
    gateway.grant("zj_health_app", fields=["gender"])
    send(gateway, "zj_health_app", params=[("fields", "age")])
    send(gateway, "zj_health_app", secret="x")
    send(gateway, "hz_police_app")
    gateway.http.get(RECORDS)
    assert verification(gateway).intact
    assert verification(gateway).entries == 4


def test_the_rate_holds_for_concurrent_calls(
    any_gateway: Gateway, move_clock: Callable[[timedelta], datetime]
) -> None:
    any_gateway.grant("zj_health_app", decision={"requests_per_second": 3, "rows_per_day": 7})
    move_clock(timedelta(0))

    def read(limit: str) -> int:
        return send(any_gateway, "zj_health_app", params=[("limit", limit)]).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sorted(pool.map(read, ["1"] * 8)) == [200] * 3 + [429] * 5
    assert sum(entry["rows"] for entry in entries(any_gateway)) == 3
    # the day's rows hold too: 3 read, 4 left, so one page of 3 and no more
    move_clock(timedelta(seconds=1))
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert sorted(pool.map(read, ["3"] * 3)) == [200, 429, 429]
    assert sum(entry["rows"] for entry in entries(any_gateway)) == 6
    assert verification(any_gateway).intact
