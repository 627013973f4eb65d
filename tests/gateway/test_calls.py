"""Signed reads and verifications through the app: granted fields only, masked as
granted, inside the grant's region, filtered, sorted and paged, and logged."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from shuzhi.client import Client, GatewayError
from shuzhi.core.settings import reset_settings
from tests.gateway.data import CODE, NAMES, PEOPLE, Gateway
from tests.gateway.test_ledger import entries
from tests.gateway.test_signing import RECORDS, send
from tests.lake.data import ingest, write_csv

BY_BORN = {person["born"]: person for person in PEOPLE}  # a birth date names one person
PERSONAL = ("id_card", "full_name", "mobile", "address")
EVERY_ROW = 500


def reload(gateway: Gateway, tmp_path: Path, version: int) -> None:
    """Load the people again with one age changed, which makes a new snapshot."""
    rows = [[person[name] for name in NAMES] for person in PEOPLE]
    rows[0][NAMES.index("age")] = str(100 + version)
    path = write_csv(tmp_path / f"people-{version}.csv", rows, headers=NAMES)
    ingest(gateway.db, path, code=CODE)


def all_rows(client: Client, **params: Any) -> list[dict[str, Any]]:
    page = client.records(CODE, limit=EVERY_ROW, **params)
    assert page["next_cursor"] is None
    return page["data"]


def born(rows: list[dict[str, Any]]) -> list[str]:
    return [row["born"] for row in rows]


def refused(call: Any, status: int, slug: str) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        call()
    assert caught.value.status == status, caught.value.problem
    assert caught.value.type == f"/problems/{slug}"
    return caught.value


@pytest.fixture
def health(gateway: Gateway) -> Client:
    """The provincial system with every field, none in clear, over the whole province, and
    room for quick calls."""
    gateway.grant(
        "zj_health_app", rights=["read", "verify"], decision={"requests_per_second": 1000}
    )
    return gateway.client("zj_health_app")


# -- fields and masking ----------------------------------------------------------------------


def test_a_read_returns_only_the_granted_fields(gateway: Gateway) -> None:
    gateway.grant("zj_health_app", fields=["full_name", "gender", "age"])
    client = gateway.client("zj_health_app")
    page = client.records(CODE, limit=EVERY_ROW)
    assert page["resource"] == CODE
    assert page["fields"] == ["full_name", "gender", "age"]
    assert len(page["data"]) == len(PEOPLE)
    assert all(set(row) == {"full_name", "gender", "age"} for row in page["data"])

    narrow = client.records(CODE, fields="age")
    assert all(set(row) == {"age"} for row in narrow["data"])
    for name in ("id_card", "mobile", "born"):
        problem = refused(
            lambda name=name: client.records(CODE, fields=name), 403, "field-not-granted"
        )
        assert problem.problem["field"] == name
    refused(lambda: client.records(CODE, fields="age,nosuch"), 422, "validation")


def test_l3_fields_are_masked_by_default(any_gateway: Gateway) -> None:
    any_gateway.grant("zj_health_app")
    page = any_gateway.client("zj_health_app").records(CODE, limit=EVERY_ROW)
    assert page["masking"] == {
        "id_card": "token",
        "full_name": "masked",
        "mobile": "masked",
        "address": "masked",
        "region": "clear",
        "gender": "clear",
        "age": "clear",
        "born": "clear",
    }
    assert len(page["data"]) == len(PEOPLE)
    tokens = set()
    for row in page["data"]:
        person = BY_BORN[row["born"]]
        assert row["full_name"] == person["full_name"][0] + "**"
        assert row["mobile"] == person["mobile"][:3] + "****" + person["mobile"][-4:]
        assert row["address"] == "浙江省杭州市西湖区****"
        assert len(row["id_card"]) == 32 and int(row["id_card"], 16) >= 0
        assert row["id_card"] != person["id_card"]
        tokens.add(row["id_card"])
        # the clear fields, in their types
        assert row["region"] == person["region"]
        assert row["gender"] == person["gender"]
        assert row["age"] == int(person["age"])
    assert len(tokens) == len(PEOPLE)
    for person in PEOPLE:
        for name in PERSONAL:
            assert person[name] not in str(page)


def test_a_field_approved_in_clear_comes_clear(gateway: Gateway) -> None:
    gateway.grant(
        "zj_health_app",
        clear_fields=["mobile", "full_name"],
        decision={"clear_fields": ["mobile"]},
    )
    page = gateway.client("zj_health_app").records(CODE, limit=EVERY_ROW)
    assert page["masking"]["mobile"] == "clear"
    assert page["masking"]["full_name"] == "masked"  # asked for, not approved
    assert page["masking"]["id_card"] == "token"
    for row in page["data"]:
        person = BY_BORN[row["born"]]
        assert row["mobile"] == person["mobile"]
        assert row["full_name"] == person["full_name"][0] + "**"


def test_a_token_field_approved_in_clear_comes_clear(gateway: Gateway) -> None:
    gateway.grant("zj_health_app", clear_fields=["id_card"])
    page = gateway.client("zj_health_app").records(CODE, limit=EVERY_ROW)
    assert page["masking"]["id_card"] == "clear"
    assert sorted(row["id_card"] for row in page["data"]) == sorted(
        person["id_card"] for person in PEOPLE
    )


def test_tokens_are_stable_for_a_consumer_and_differ_between_consumers(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    gateway.grant("hz_police_app", region="330106")
    health, police = gateway.client("zj_health_app"), gateway.client("hz_police_app")

    def tokens(client: Client) -> dict[str, str]:
        return {row["born"]: row["id_card"] for row in all_rows(client)}

    first, again, theirs = tokens(health), tokens(health), tokens(police)
    assert first == again
    assert len(theirs) == 10
    assert all(theirs[key] != first[key] for key in theirs)
    assert not set(theirs.values()) & set(first.values())
    # a filtered read gives a row the same token as the full read
    one = health.records(CODE, born=PEOPLE[5]["born"])["data"]
    assert [row["id_card"] for row in one] == [first[PEOPLE[5]["born"]]]


# -- region scope ---------------------------------------------------------------------------


def test_a_district_grant_sees_only_its_district(any_gateway: Gateway) -> None:
    any_gateway.grant("hz_police_app", region="330106")
    rows = all_rows(any_gateway.client("hz_police_app"))
    assert len(rows) == 10
    assert {row["region"] for row in rows} == {"330106"}
    assert sorted(born(rows)) == sorted(p["born"] for p in PEOPLE if p["region"] == "330106")


def test_a_city_grant_sees_the_city_subtree(gateway: Gateway) -> None:
    gateway.grant("hz_police_app")  # the Hangzhou department's own region, 330100
    rows = all_rows(gateway.client("hz_police_app"))
    assert {row["region"] for row in rows} == {"330100", "330102", "330105", "330106"}
    assert len(rows) == 30
    assert not [row for row in rows if row["region"] == "330200"]
    assert all_rows(gateway.client("hz_police_app"), region="330200") == []


def test_a_provincial_grant_sees_every_row(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    assert len(all_rows(gateway.client("zj_health_app"))) == len(PEOPLE)
    gateway.grant("zj_health_app", region="330200")
    rows = all_rows(gateway.client("zj_health_app"))
    assert {row["region"] for row in rows} == {"330200"}
    assert len(rows) == 10


# -- filters and sorting -----------------------------------------------------------------------


def expected(predicate: Any) -> list[str]:
    return sorted(person["born"] for person in PEOPLE if predicate(person))


@pytest.mark.parametrize(
    ("params", "predicate"),
    [
        ({"gender": "男"}, lambda p: p["gender"] == "男"),
        ({"gender__eq": "女"}, lambda p: p["gender"] == "女"),
        ({"gender__ne": "女"}, lambda p: p["gender"] != "女"),
        ({"age__gt": "60"}, lambda p: int(p["age"]) > 60),
        ({"age__gte": "60"}, lambda p: int(p["age"]) >= 60),
        ({"age__lt": "40"}, lambda p: int(p["age"]) < 40),
        ({"age__lte": "40"}, lambda p: int(p["age"]) <= 40),
        # compared as numbers: as text, "100" would sort before every age
        ({"age__lt": "100"}, lambda p: True),
        ({"age__gt": "9"}, lambda p: True),
        ({"age__in": "34,50,73,999"}, lambda p: p["age"] in ("34", "50", "73")),
        ({"born__lt": "1960-01-01"}, lambda p: p["born"] < "1960-01-01"),
        ({"born__gte": "1985-06-01"}, lambda p: p["born"] >= "1985-06-01"),
        ({"region__in": "330102,330200"}, lambda p: p["region"] in ("330102", "330200")),
        (
            {"gender": "女", "age__gte": "40", "age__lt": "60", "region__ne": "330200"},
            lambda p: p["gender"] == "女" and 40 <= int(p["age"]) < 60 and p["region"] != "330200",
        ),
        ({"gender": "男' OR '1'='1"}, lambda p: False),
    ],
)
def test_filters_on_clear_fields(health: Client, params: dict[str, str], predicate: Any) -> None:
    rows = all_rows(health, **params)
    assert sorted(born(rows)) == expected(predicate)


def test_filters_on_a_masked_field_are_refused(health: Client) -> None:
    for params in (
        {"mobile": PEOPLE[0]["mobile"]},
        {"full_name__in": "赵小一,钱小二"},
        {"id_card__gt": "3"},
        {"address__ne": "x"},
    ):
        problem = refused(
            lambda params=params: health.records(CODE, **params), 403, "field-not-granted"
        )
        assert problem.problem["field"] == next(iter(params)).partition("__")[0]


def test_filters_on_a_field_outside_the_grant_are_refused(gateway: Gateway) -> None:
    gateway.grant("zj_health_app", fields=["gender", "age"])
    client = gateway.client("zj_health_app")
    refused(lambda: client.records(CODE, region="330106"), 403, "field-not-granted")
    refused(lambda: client.records(CODE, sort="born"), 403, "field-not-granted")


def test_sorting_on_a_masked_field_is_refused(health: Client) -> None:
    for sort in ("mobile", "-full_name", "age,id_card", "+address"):
        refused(lambda sort=sort: health.records(CODE, sort=sort), 403, "field-not-granted")


@pytest.mark.parametrize(
    "params",
    [
        {"age__like": "3%"},
        {"age__between": "1,2"},
        {"nosuch": "1"},
        {"nosuch__gt": "1"},
        {"age": "forty"},
        {"age__in": "34,,50"},
        {"born": "2024-13-01"},
        {"sort": "nosuch"},
        {"format": "xml"},
        {"limit": "-1"},
        {"limit": "0"},
        {"limit": "ten"},
    ],
)
def test_unknown_operators_fields_and_values_are_422(
    health: Client, params: dict[str, str]
) -> None:
    refused(lambda: health.records(CODE, **params), 422, "validation")


def test_a_parameter_given_twice_is_422(gateway: Gateway, health: Client) -> None:
    answer = send(gateway, "zj_health_app", params=[("gender", "男"), ("gender", "女")])
    assert answer.status_code == 422
    answer = send(gateway, "zj_health_app", params=[("limit", "1"), ("limit", "2")])
    assert answer.status_code == 422


def test_sorting_ascending_and_descending(health: Client) -> None:
    ages = [row["age"] for row in all_rows(health, sort="age")]
    assert ages == sorted(ages) and len(set(ages)) > 10
    assert [row["age"] for row in all_rows(health, sort="-age")] == sorted(ages, reverse=True)
    rows = all_rows(health, sort="gender,-born", fields="gender,born")
    keys = [(row["gender"], row["born"]) for row in rows]
    men = [born for gender, born in keys if gender == "男"]
    assert [gender for gender, _ in keys] == sorted(gender for gender, _ in keys)
    assert men == sorted(men, reverse=True)


# -- paging ------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 7, 10, 39, 40])
def test_cursors_walk_every_row_exactly_once(health: Client, limit: int) -> None:
    walked = list(health.iter_records(CODE, limit=limit))
    assert len(walked) == len(PEOPLE)
    assert sorted(born(walked)) == sorted(BY_BORN)


def test_cursors_walk_a_region_scope(gateway: Gateway) -> None:
    gateway.grant("hz_police_app", region="330106")
    walked = list(gateway.client("hz_police_app").iter_records(CODE, limit=3))
    assert sorted(born(walked)) == expected(lambda p: p["region"] == "330106")


def test_cursors_keep_the_filter_and_sort(health: Client) -> None:
    pages = []
    params: dict[str, Any] = {"gender": "女", "sort": "-age", "limit": 3}
    while True:
        page = health.records(CODE, **params)
        pages.append(page["data"])
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert [len(page) for page in pages] == [3] * 6 + [2]
    rows = [row for page in pages for row in page]
    assert {row["gender"] for row in rows} == {"女"}
    assert [row["age"] for row in rows] == sorted((row["age"] for row in rows), reverse=True)
    assert sorted(born(rows)) == expected(lambda p: p["gender"] == "女")


def test_a_cursor_from_another_query_is_422(health: Client) -> None:
    cursor = health.records(CODE, limit=5)["next_cursor"]
    assert cursor
    for params in ({"limit": 6}, {"limit": 5, "gender": "男"}, {"limit": 5, "sort": "age"}):
        problem = refused(
            lambda params=params: health.records(CODE, cursor=cursor, **params), 422, "validation"
        )
        assert problem.problem["field"] == "cursor"
    # the same query goes on
    assert len(health.records(CODE, limit=5, cursor=cursor)["data"]) == 5


def test_a_forged_cursor_is_422(health: Client) -> None:
    cursor = health.records(CODE, limit=5)["next_cursor"]
    body, _, mac = cursor.partition(".")
    for forged in (body + ".0" * 12, body[:-2] + "AA." + mac, "nonsense", "."):
        refused(
            lambda forged=forged: health.records(CODE, limit=5, cursor=forged), 422, "validation"
        )


def test_a_cursor_keeps_its_snapshot_while_it_is_kept(
    gateway: Gateway, health: Client, tmp_path: Path
) -> None:
    first = health.records(CODE, limit=30)
    reload(gateway, tmp_path, 1)
    rest = health.records(CODE, limit=30, cursor=first["next_cursor"])
    assert rest["snapshot"] == first["snapshot"]
    assert len(first["data"]) + len(rest["data"]) == len(PEOPLE)
    assert health.records(CODE, limit=30)["snapshot"] != first["snapshot"]


def test_a_cursor_into_a_pruned_snapshot_is_410(
    gateway: Gateway, health: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cursor = health.records(CODE, limit=5)["next_cursor"]
    monkeypatch.setenv("SHUZHI_LAKE__SNAPSHOTS_KEPT", "1")
    reset_settings()
    reload(gateway, tmp_path, 1)
    refused(lambda: health.records(CODE, limit=5, cursor=cursor), 410, "cursor-expired")
    [entry] = [item for item in entries(gateway) if item["status"] == 410]
    assert (entry["outcome"], entry["rows"]) == ("cursor-expired", 0)
    # starting again works
    assert len(list(health.iter_records(CODE, limit=15))) == len(PEOPLE)


# -- CSV -------------------------------------------------------------------------------------


def test_csv_has_a_header_and_the_next_cursor_in_a_header(gateway: Gateway, health: Client) -> None:
    response = health.request(
        "GET", RECORDS, params={"format": "csv", "limit": 25, "fields": "full_name,age,born"}
    )
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.body.decode())))
    assert table[0] == ["full_name", "age", "born"]
    assert len(table) == 26
    for name, age, when in table[1:]:
        person = BY_BORN[when]
        assert (name, age) == (person["full_name"][0] + "**", person["age"])
    cursor = response.headers["x-shuzhi-next-cursor"]
    rest = health.records_csv(CODE, limit=25, fields="full_name,age,born", cursor=cursor)
    tail = list(csv.reader(io.StringIO(rest)))
    assert tail[0] == ["full_name", "age", "born"]
    assert len(tail) == 1 + len(PEOPLE) - 25
    assert {row[2] for row in table[1:] + tail[1:]} == set(BY_BORN)
    last = health.request(
        "GET",
        RECORDS,
        params={"format": "csv", "limit": 25, "fields": "full_name,age,born", "cursor": cursor},
    )
    assert "x-shuzhi-next-cursor" not in last.headers
    assert entries(gateway)[-1]["response_sha256"] == hashlib.sha256(last.body).hexdigest()


# -- verification ----------------------------------------------------------------------------


def test_verify_answers_match_true_or_false(health: Client) -> None:
    person = PEOPLE[7]
    assert health.verify(CODE, {"id_card": person["id_card"], "full_name": person["full_name"]})
    assert health.verify(CODE, {"mobile": person["mobile"], "age": int(person["age"])})
    assert not health.verify(CODE, {"id_card": person["id_card"], "full_name": "某某某"})
    assert not health.verify(CODE, {"id_card": PEOPLE[8]["id_card"], "mobile": person["mobile"]})
    assert health.verify(CODE, {"born": person["born"], "gender": person["gender"]})


def test_verify_stays_inside_the_region(gateway: Gateway) -> None:
    gateway.grant("hz_police_app", region="330106", rights=["verify"])
    client = gateway.client("hz_police_app")
    inside = next(p for p in PEOPLE if p["region"] == "330106")
    outside = next(p for p in PEOPLE if p["region"] == "330200")
    assert client.verify(CODE, {"id_card": inside["id_card"]})
    assert not client.verify(CODE, {"id_card": outside["id_card"]})


def test_verify_needs_the_verify_right(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")  # read only
    client = gateway.client("zj_health_app")
    refused(
        lambda: client.verify(CODE, {"id_card": PEOPLE[0]["id_card"]}), 403, "right-not-granted"
    )
    [*_, entry] = entries(gateway)
    assert (entry["operation"], entry["outcome"], entry["status"]) == (
        "verify",
        "right-not-granted",
        403,
    )
    gateway.grant("zj_health_app", rights=["verify"])
    refused(lambda: client.records(CODE), 403, "right-not-granted")
    assert client.verify(CODE, {"id_card": PEOPLE[0]["id_card"]})


def test_verify_only_on_granted_fields(gateway: Gateway) -> None:
    gateway.grant("zj_health_app", fields=["id_card", "age"], rights=["verify"])
    client = gateway.client("zj_health_app")
    refused(lambda: client.verify(CODE, {"mobile": PEOPLE[0]["mobile"]}), 403, "field-not-granted")
    refused(lambda: client.verify(CODE, {"nosuch": "1"}), 422, "validation")
    refused(lambda: client.verify(CODE, {"age": "old"}), 422, "validation")


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"attributes": {}}', b'{"attributes": {"age": [1]}}'],
)
def test_a_malformed_verification_is_422(gateway: Gateway, health: Client, body: bytes) -> None:
    answer = send(
        gateway, "zj_health_app", f"/gateway/v1/resources/{CODE}/verify", method="POST", body=body
    )
    assert answer.status_code == 422, answer.text


# -- the consumer's own grants and applications -------------------------------------------------


def test_my_grants(gateway: Gateway) -> None:
    first = gateway.grant("zj_health_app", fields=["gender"])
    second = gateway.grant("zj_health_app", fields=["gender", "mobile"], clear_fields=["mobile"])
    theirs = gateway.grant("hz_police_app")
    mine = gateway.client("zj_health_app").grants()
    assert [item["id"] for item in mine] == [second, first]
    assert {item["consumer"] for item in mine} == {"zj_health_app"}
    assert [item["state"] for item in mine] == ["active", "revoked"]
    assert {f["name"]: f["mode"] for f in mine[0]["fields"]} == {
        "gender": "clear",
        "mobile": "clear",
    }
    assert theirs not in [item["id"] for item in mine]
    assert [item["id"] for item in gateway.client("hz_police_app").grants()] == [theirs]


def test_my_application(gateway: Gateway) -> None:
    application = gateway.apply("zj_health_app", fields=["gender", "age"], region="330100")
    item = gateway.client("zj_health_app").application(application)
    assert item["id"] == application
    assert item["consumer"] == "zj_health_app"
    assert item["fields"] == ["gender", "age"]
    assert item["region"] == "330100"
    assert item["state"] == "pending"
    assert item["grant_id"] is None
    grant = gateway.approve(application)
    assert gateway.client("zj_health_app").application(application)["grant_id"] == grant


# -- the access log ------------------------------------------------------------------------------


def test_a_read_is_logged_with_what_went_out(any_gateway: Gateway) -> None:
    grant = any_gateway.grant("zj_health_app", fields=["full_name", "gender", "age"])
    client = any_gateway.client(
        "zj_health_app", purpose="330100-QT-0001-2026-000123", user="wang.li"
    )
    response = client.request(
        "GET", RECORDS, params={"gender": "女", "limit": 7, "fields": "full_name,age"}
    )
    [entry] = entries(any_gateway)
    assert entry["purpose"] == "330100-QT-0001-2026-000123"
    assert entry["end_user"] == "wang.li"
    assert entry["consumer_code"] == "zj_health_app"
    assert entry["access_key"] == any_gateway.keys["zj_health_app"][0]
    assert (entry["operation"], entry["target"], entry["grant_id"]) == ("read", CODE, grant)
    assert (entry["method"], entry["path"]) == ("GET", RECORDS)
    assert entry["fields"] == ["full_name", "age"]
    assert entry["masking"] == {"full_name": "masked", "age": "clear"}
    assert (entry["rows"], entry["status"], entry["outcome"]) == (7, 200, "ok")
    assert entry["response_sha256"] == hashlib.sha256(response.body).hexdigest()
    assert entry["request_id"] == response.headers["x-request-id"]


def test_a_verification_and_the_own_endpoints_are_logged(gateway: Gateway) -> None:
    gateway.grant("zj_health_app", rights=["verify"])
    application = gateway.apply("zj_health_app", fields=["gender"])
    client = gateway.client("zj_health_app", purpose="matter-1", user="li.si")
    answers = [
        client.request(
            "POST",
            f"/gateway/v1/resources/{CODE}/verify",
            json={"attributes": {"id_card": PEOPLE[0]["id_card"]}},
        ),
        client.request("GET", "/gateway/v1/grants"),
        client.request("GET", f"/gateway/v1/applications/{application}"),
    ]
    found = entries(gateway)
    assert [entry["operation"] for entry in found] == ["verify", "grants", "application"]
    assert found[0]["fields"] == ["id_card"]
    assert found[0]["rows"] == 0
    for entry, answer in zip(found, answers, strict=True):
        assert (entry["purpose"], entry["end_user"]) == ("matter-1", "li.si")
        assert (entry["status"], entry["outcome"]) == (200, "ok")
        assert entry["response_sha256"] == hashlib.sha256(answer.body).hexdigest()


def test_rows_logged_are_the_rows_sent(gateway: Gateway, health: Client) -> None:
    health.records(CODE, limit=EVERY_ROW, gender="男")
    health.records(CODE, limit=EVERY_ROW, age__gt=200)
    assert [entry["rows"] for entry in entries(gateway)] == [20, 0]


def test_dates_are_typed(health: Client) -> None:
    rows = all_rows(health, born=PEOPLE[0]["born"])
    assert born(rows) == [PEOPLE[0]["born"]]
    assert date.fromisoformat(rows[0]["born"]).year == 1951
    assert list(rows[0]) == NAMES


def test_the_default_fields_come_in_the_resource_order(any_gateway: Gateway) -> None:
    # the grant's fields are a JSON object, whose key order PostgreSQL's JSONB does not keep
    any_gateway.grant("zj_health_app")
    client = any_gateway.client("zj_health_app")
    page = client.records(CODE, limit=1)
    assert page["fields"] == NAMES
    assert list(page["data"][0]) == NAMES
    header = client.records_csv(CODE, limit=1).splitlines()[0]
    assert header.split(",") == NAMES
    assert [item["name"] for item in client.grants()[0]["fields"]] == NAMES


def test_a_chinese_purpose_and_user_are_logged_as_written(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    client = gateway.client("zj_health_app", purpose="办理社会救助资格认定 100%", user="王丽")
    client.records(CODE, limit=1)
    entry = entries(gateway)[-1]
    assert (entry["purpose"], entry["end_user"]) == ("办理社会救助资格认定 100%", "王丽")
