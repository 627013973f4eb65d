"""The catalog over HTTP: errors as problem+json, visibility, lifecycle, search, apply."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from shuzhi.server import create_app
from tests.api.support import assert_clean_error, assert_problem
from tests.conftest import World, resource_doc

RESOURCES = "/api/v1/catalog/resources"


@pytest.fixture
def client(sqlite_world: World) -> Iterator[TestClient]:
    with TestClient(create_app(database=sqlite_world.database)) as client:
        yield client


@pytest.fixture
def as_user(sqlite_world: World) -> Any:
    def headers(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {sqlite_world.tokens[user]}"}

    return headers


def update_body(**overrides: Any) -> dict[str, Any]:
    body = resource_doc(**overrides)
    del body["code"]
    return body


def create(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post(RESOURCES, json=resource_doc(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def fire(
    client: TestClient,
    headers: dict[str, str],
    name: str,
    code: str = "gat_population",
    comment: str | None = None,
) -> Any:
    return client.post(
        f"{RESOURCES}/{code}/transitions/{name}",
        json={"comment": comment} if comment else None,
        headers=headers,
    )


# create, read, update -----------------------------------------------------------------


def test_create_returns_the_draft(client: TestClient, as_user: Any) -> None:
    body = create(client, as_user("gat_officer"))
    assert (body["code"], body["state"], body["version"]) == ("gat_population", "draft", 1)
    assert (body["provider"], body["provider_name"]) == ("zj_gat", "浙江省公安厅")
    assert body["region_name"] == "浙江省"
    assert [f["name"] for f in body["fields"]] == [
        "id_card",
        "full_name",
        "region_code",
        "registered_on",
    ]
    assert body["transitions"] == ["submit"]
    fetched = client.get(f"{RESOURCES}/gat_population", headers=as_user("gat_officer"))
    assert fetched.status_code == 200
    assert fetched.json()["fields"] == body["fields"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"grade": "L9"}, "grade"),
        ({"code": "Bad Code"}, "code"),
        ({"system": "digital_weather"}, "system"),
        ({"fields": [{"name": "id", "type": "uuid"}]}, "fields.0.type"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_schema_violation_is_422_naming_the_field(
    client: TestClient, as_user: Any, overrides: dict[str, Any], field: str
) -> None:
    response = client.post(
        RESOURCES, json=resource_doc(**overrides), headers=as_user("gat_officer")
    )
    body = assert_problem(response, 422, "validation")
    assert body["field"] == field
    assert body["detail"].startswith(field)
    assert client.get(RESOURCES, headers=as_user("admin")).json()["count"] == 0


def test_a_rule_spanning_fields_is_422(client: TestClient, as_user: Any) -> None:
    response = client.post(
        RESOURCES,
        json=resource_doc(grade="L4", open="unconditional"),
        headers=as_user("gat_officer"),
    )
    body = assert_problem(response, 422, "validation")
    assert "L4" in body["detail"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "   "}, "name"),
        ({"fields": [{"name": f"f{n}"} for n in range(501)]}, "fields"),
        ({"tags": [f"t{n}" for n in range(51)]}, "tags"),
        ({"tags": ["签" * 41]}, "tags.0"),
    ],
    ids=["blank-name", "too-many-fields", "too-many-tags", "long-tag"],
)
def test_an_oversized_or_blank_document_is_422(
    client: TestClient, as_user: Any, overrides: dict[str, Any], field: str
) -> None:
    officer = as_user("gat_officer")
    created = client.post(RESOURCES, json=resource_doc(**overrides), headers=officer)
    assert assert_problem(created, 422, "validation")["field"] == field
    create(client, officer)
    replaced = client.put(
        f"{RESOURCES}/gat_population", json=update_body(**overrides), headers=officer
    )
    assert assert_problem(replaced, 422, "validation")["field"] == field


def test_an_unknown_resource_is_404(client: TestClient, as_user: Any) -> None:
    response = client.get(f"{RESOURCES}/gat_missing", headers=as_user("admin"))
    body = assert_problem(response, 404, "not-found")
    assert "gat_missing" in body["detail"]
    for method, path in (
        ("GET", f"{RESOURCES}/gat_missing/history"),
        ("POST", f"{RESOURCES}/gat_missing/transitions/submit"),
    ):
        assert_problem(client.request(method, path, headers=as_user("admin")), 404, "not-found")
    put = client.put(f"{RESOURCES}/gat_missing", json=update_body(), headers=as_user("admin"))
    assert_problem(put, 404, "not-found")


def test_a_duplicate_code_is_409(client: TestClient, as_user: Any) -> None:
    create(client, as_user("gat_officer"))
    response = client.post(
        RESOURCES, json=resource_doc(name="另一个资源"), headers=as_user("gat_officer")
    )
    assert_problem(response, 409, "conflict")
    fetched = client.get(f"{RESOURCES}/gat_population", headers=as_user("gat_officer")).json()
    assert fetched["name"] == "浙江省常住人口基本信息"


def test_an_unknown_provider_is_404_naming_it(client: TestClient, as_user: Any) -> None:
    response = client.post(
        RESOURCES, json=resource_doc(provider="zj_nowhere"), headers=as_user("admin")
    )
    body = assert_problem(response, 404, "not-found")
    assert "zj_nowhere" in body["detail"]


def test_put_replaces_a_draft_and_bumps_its_version(client: TestClient, as_user: Any) -> None:
    headers = as_user("gat_officer")
    create(client, headers)
    same = client.put(f"{RESOURCES}/gat_population", json=update_body(), headers=headers)
    assert same.status_code == 200
    assert same.json()["version"] == 1

    changed = client.put(
        f"{RESOURCES}/gat_population", json=update_body(summary="新的摘要"), headers=headers
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["summary"], changed.json()["version"]) == ("新的摘要", 2)


def test_an_illegal_transition_is_409(client: TestClient, as_user: Any) -> None:
    create(client, as_user("gat_officer"))
    response = fire(client, as_user("admin"), "approve")
    body = assert_problem(response, 409, "invalid-transition")
    assert "draft" in body["detail"]
    state = client.get(f"{RESOURCES}/gat_population", headers=as_user("admin")).json()["state"]
    assert state == "draft"


def test_an_unknown_transition_is_404(client: TestClient, as_user: Any) -> None:
    create(client, as_user("gat_officer"))
    assert_problem(fire(client, as_user("admin"), "publish_now"), 404, "not-found")


def test_a_missing_permission_is_403(client: TestClient, as_user: Any) -> None:
    create(client, as_user("gat_officer"))
    assert fire(client, as_user("gat_officer"), "submit").status_code == 200
    response = fire(client, as_user("gat_officer"), "approve")
    assert_problem(response, 403, "forbidden")
    state = client.get(f"{RESOURCES}/gat_population", headers=as_user("admin")).json()["state"]
    assert state == "pending_review"


def test_another_department_cannot_create_for_zj_gat(client: TestClient, as_user: Any) -> None:
    response = client.post(RESOURCES, json=resource_doc(), headers=as_user("wjw_officer"))
    assert_problem(response, 403, "forbidden")
    assert_problem(
        client.get(f"{RESOURCES}/gat_population", headers=as_user("admin")), 404, "not-found"
    )


# visibility and ownership -------------------------------------------------------------


@pytest.mark.parametrize("user", ["wjw_officer", "viewer"])
def test_outsiders_neither_see_nor_change_a_draft(
    client: TestClient, as_user: Any, user: str
) -> None:
    create(client, as_user("gat_officer"))
    outsider = as_user(user)

    assert_problem(client.get(f"{RESOURCES}/gat_population", headers=outsider), 404, "not-found")
    assert_problem(
        client.get(f"{RESOURCES}/gat_population/history", headers=outsider), 404, "not-found"
    )
    assert client.get(RESOURCES, headers=outsider).json() == {"data": [], "count": 0}
    put = client.put(
        f"{RESOURCES}/gat_population", json=update_body(summary="越权修改"), headers=outsider
    )
    assert_problem(put, 404, "not-found")
    assert_problem(fire(client, outsider, "submit"), 404, "not-found")

    after = client.get(f"{RESOURCES}/gat_population", headers=as_user("gat_officer")).json()
    assert (after["state"], after["version"]) == ("draft", 1)
    assert after["summary"] == "常住人口的身份与居住信息"
    history = client.get(f"{RESOURCES}/gat_population/history", headers=as_user("gat_officer"))
    assert history.json() == []


@pytest.mark.parametrize("user", ["wjw_officer", "viewer"])
def test_outsiders_read_but_cannot_change_a_published_resource(
    client: TestClient, as_user: Any, user: str
) -> None:
    create(client, as_user("gat_officer"))
    fire(client, as_user("gat_officer"), "submit")
    fire(client, as_user("admin"), "approve")
    outsider = as_user(user)

    fetched = client.get(f"{RESOURCES}/gat_population", headers=outsider)
    assert fetched.status_code == 200
    assert fetched.json()["transitions"] == []
    put = client.put(
        f"{RESOURCES}/gat_population", json=update_body(summary="越权修改"), headers=outsider
    )
    assert_problem(put, 403, "forbidden")
    assert_problem(fire(client, outsider, "withdraw", comment="越权撤回"), 403, "forbidden")

    after = client.get(f"{RESOURCES}/gat_population", headers=as_user("admin")).json()
    assert (after["state"], after["version"]) == ("published", 1)


def test_the_full_lifecycle(client: TestClient, as_user: Any) -> None:
    officer, admin = as_user("gat_officer"), as_user("admin")
    create(client, officer)
    submitted = fire(client, officer, "submit")
    assert submitted.status_code == 200, submitted.text
    assert (submitted.json()["state"], submitted.json()["transitions"]) == (
        "pending_review",
        ["recall"],
    )
    assert set(client.get(f"{RESOURCES}/gat_population", headers=admin).json()["transitions"]) == {
        "recall",
        "approve",
        "reject",
    }
    approved = fire(client, admin, "approve", comment="符合要求")
    assert approved.json()["state"] == "published"
    assert client.get(f"{RESOURCES}/gat_population", headers=as_user("viewer")).status_code == 200

    published = client.put(
        f"{RESOURCES}/gat_population", json=update_body(summary="发布后修改"), headers=officer
    )
    assert_problem(published, 409, "invalid-transition")

    history = client.get(f"{RESOURCES}/gat_population/history", headers=as_user("viewer"))
    assert history.status_code == 200
    assert [
        (h["transition"], h["from_state"], h["to_state"], h["actor"], h["comment"])
        for h in history.json()
    ] == [
        ("submit", "draft", "pending_review", "gat_officer", None),
        ("approve", "pending_review", "published", "admin", "符合要求"),
    ]

    body = assert_problem(fire(client, officer, "withdraw"), 422, "validation")
    assert body["field"] == "comment"
    assert fire(client, officer, "withdraw", comment="口径调整").json()["state"] == "withdrawn"
    assert_problem(
        client.get(f"{RESOURCES}/gat_population", headers=as_user("viewer")), 404, "not-found"
    )
    assert fire(client, officer, "revise").json()["state"] == "draft"
    revised = client.put(
        f"{RESOURCES}/gat_population", json=update_body(summary="重新编辑"), headers=officer
    )
    assert revised.json()["version"] == 2


def test_reject_and_resubmit(client: TestClient, as_user: Any) -> None:
    officer, admin = as_user("gat_officer"), as_user("admin")
    create(client, officer)
    fire(client, officer, "submit")
    assert_problem(fire(client, admin, "reject"), 422, "validation")
    assert fire(client, admin, "reject", comment="缺少说明").json()["state"] == "rejected"
    edited = client.put(
        f"{RESOURCES}/gat_population", json=update_body(summary="补充说明"), headers=officer
    )
    assert edited.json()["version"] == 2
    assert fire(client, officer, "submit").json()["state"] == "pending_review"
    history = client.get(f"{RESOURCES}/gat_population/history", headers=officer).json()
    assert [h["transition"] for h in history] == ["submit", "reject", "submit"]
    assert history[1]["comment"] == "缺少说明"


# search -------------------------------------------------------------------------------


@pytest.fixture
def catalog(client: TestClient, as_user: Any) -> TestClient:
    officer = as_user("gat_officer")
    create(client, officer)
    create(
        client,
        officer,
        code="gat_household",
        name="家庭户基本信息",
        summary="以户为单位登记的人口信息",
        grade="L2",
        tags=["家庭"],
    )
    create(
        client,
        officer,
        code="hz_traffic_violation",
        name="杭州市交通违法记录",
        summary="道路交通违法行为",
        provider="hz_gaj",
        region="330100",
        system="digital_rule_of_law",
        grade="L2",
        tags=["交通"],
    )
    create(
        client,
        as_user("wjw_officer"),
        code="wjw_birth",
        name="出生医学证明信息",
        summary="新生儿出生登记",
        provider="zj_wjw",
        tags=["卫生"],
        sharing="unconditional",
        sharing_conditions="",
    )
    fire(client, as_user("wjw_officer"), "submit", "wjw_birth")
    fire(client, as_user("admin"), "approve", "wjw_birth")
    return client


def codes(client: TestClient, headers: dict[str, str], **params: Any) -> list[str]:
    response = client.get(RESOURCES, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [r["code"] for r in response.json()["data"]]


def test_search_with_terms_and_filters(catalog: TestClient, as_user: Any) -> None:
    admin = as_user("admin")
    assert codes(catalog, admin, q="人口") == ["gat_population", "gat_household"]
    assert codes(catalog, admin, q="人口 户籍") == ["gat_population"]
    assert codes(catalog, admin, q="公民身份号码 出生") == ["wjw_birth"]
    assert codes(catalog, admin, provider="hz_gaj") == ["hz_traffic_violation"]
    assert codes(catalog, admin, region="330100") == ["hz_traffic_violation"]
    assert codes(catalog, admin, region="330200") == []
    assert codes(catalog, admin, grade="L2", system="digital_society") == ["gat_household"]
    assert codes(catalog, admin, sharing="unconditional") == ["wjw_birth"]
    assert codes(catalog, admin, state="published") == ["wjw_birth"]
    assert codes(catalog, as_user("viewer"), q="信息") == ["wjw_birth"]


def test_search_by_an_unknown_region_is_404(catalog: TestClient, as_user: Any) -> None:
    response = catalog.get(RESOURCES, params={"region": "339999"}, headers=as_user("admin"))
    assert_problem(response, 404, "not-found")


def test_search_pages_with_limit_and_offset(catalog: TestClient, as_user: Any) -> None:
    admin = as_user("admin")
    seen = []
    for offset in (0, 3):
        page = catalog.get(RESOURCES, params={"limit": 3, "offset": offset}, headers=admin).json()
        assert page["count"] == 4
        seen.extend(r["code"] for r in page["data"])
    assert seen == ["gat_household", "gat_population", "hz_traffic_violation", "wjw_birth"]
    filtered = catalog.get(
        RESOURCES, params={"provider": "zj_gat", "limit": 1}, headers=admin
    ).json()
    assert (filtered["count"], len(filtered["data"])) == (2, 1)


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"offset": 1_000_001}, {"offset": 10**20}],
)
def test_paging_out_of_range_is_422(
    catalog: TestClient, as_user: Any, params: dict[str, int]
) -> None:
    response = catalog.get(RESOURCES, params=params, headers=as_user("admin"))
    body = assert_problem(response, 422, "validation")
    assert body["field"] == f"query.{next(iter(params))}"


# apply --------------------------------------------------------------------------------


def document(*resources: dict[str, Any]) -> str:
    return yaml.safe_dump({"resources": list(resources)}, allow_unicode=True)


def apply(client: TestClient, headers: dict[str, str], text: str, source: str = "gat.yaml") -> Any:
    return client.post(
        "/api/v1/catalog/apply",
        content=text.encode(),
        params={"source": source},
        headers={**headers, "Content-Type": "application/yaml"},
    )


def test_apply_a_yaml_document(client: TestClient, as_user: Any) -> None:
    officer = as_user("gat_officer")
    text = document(resource_doc(), resource_doc(code="gat_household", name="家庭户基本信息"))
    response = apply(client, officer, text)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "created": ["gat_population", "gat_household"],
        "updated": [],
        "unchanged": [],
    }
    fetched = client.get(f"{RESOURCES}/gat_household", headers=officer).json()
    assert (fetched["name"], fetched["state"]) == ("家庭户基本信息", "draft")

    again = apply(client, officer, text).json()
    assert again["unchanged"] == ["gat_population", "gat_household"]
    assert again["created"] == again["updated"] == []


def test_a_bad_document_is_422_naming_the_resource_and_creates_nothing(
    client: TestClient, as_user: Any
) -> None:
    officer = as_user("gat_officer")
    text = document(resource_doc(), resource_doc(code="gat_household", grade="L9"))
    body = assert_problem(apply(client, officer, text, source="bad.yaml"), 422, "validation")
    assert body["detail"].startswith("bad.yaml: resource gat_household")
    assert "grade" in body["detail"]
    assert client.get(RESOURCES, headers=officer).json()["count"] == 0
    assert_problem(client.get(f"{RESOURCES}/gat_population", headers=officer), 404, "not-found")


def test_a_document_with_an_unknown_provider_creates_nothing(
    client: TestClient, as_user: Any
) -> None:
    officer = as_user("gat_officer")
    text = document(resource_doc(), resource_doc(code="gat_household", provider="zj_nowhere"))
    body = assert_problem(apply(client, officer, text), 404, "not-found")
    assert "gat_household" in body["detail"]
    assert "zj_nowhere" in body["detail"]
    assert client.get(RESOURCES, headers=officer).json()["count"] == 0


def test_malformed_yaml_is_422(client: TestClient, as_user: Any) -> None:
    body = assert_problem(
        apply(client, as_user("gat_officer"), "resources: [oops", source="broken.yaml"),
        422,
        "validation",
    )
    assert body["detail"].startswith("broken.yaml")


def test_a_deeply_nested_document_is_422(client: TestClient, as_user: Any) -> None:
    text = "resources: " + "[" * 5000 + "]" * 5000
    response = apply(client, as_user("gat_officer"), text)
    assert_clean_error(response)
    assert response.status_code == 422


def test_apply_needs_the_grant(client: TestClient, as_user: Any) -> None:
    response = apply(client, as_user("wjw_officer"), document(resource_doc()))
    assert_problem(response, 403, "forbidden")
    assert client.get(RESOURCES, headers=as_user("admin")).json()["count"] == 0


def test_a_put_from_a_stale_version_is_409(client: TestClient, as_user: Any) -> None:
    officer = as_user("gat_officer")
    create(client, officer)
    url = f"{RESOURCES}/gat_population"
    first = client.put(url, json=update_body(name="第二版", version=1), headers=officer)
    assert first.status_code == 200 and first.json()["version"] == 2

    stale = client.put(url, json=update_body(name="第三版", version=1), headers=officer)

    assert_problem(stale, 409, "conflict")
    assert client.get(url, headers=officer).json()["name"] == "第二版"
