"""The HTTP surface outside the catalog: health, metrics, errors, orgs, changes, regions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from shuzhi.core import clock
from shuzhi.core.errors import ShuzhiError
from shuzhi.core.permissions import SYSTEM
from shuzhi.orgs import queries as orgs_queries
from shuzhi.orgs import service as orgs_service
from shuzhi.regions import service as regions_service
from shuzhi.server import create_app
from tests.api.support import assert_problem, auth
from tests.conftest import PASSWORD, World, resource_doc


@pytest.fixture
def client(sqlite_world: World) -> Iterator[TestClient]:
    with TestClient(create_app(database=sqlite_world.database)) as client:
        yield client


# operations ---------------------------------------------------------------------------


def test_healthz_and_readyz(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "sqlite"}


def test_metrics_count_requests_by_route(client: TestClient) -> None:
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = [line for line in response.text.splitlines() if line.startswith("shuzhi_http")]
    assert any(
        line.startswith("shuzhi_http_requests_total{")
        and 'route="/healthz"' in line
        and 'status="200"' in line
        for line in lines
    )


def test_metrics_label_api_requests_by_their_full_route(
    client: TestClient, sqlite_world: World
) -> None:
    client.get("/api/v1/regions/330100", headers=auth(sqlite_world, "viewer"))
    text = client.get("/metrics").text
    assert 'route="/api/v1/regions/{code}"' in text


def test_openapi_lists_the_catalog_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/catalog/resources" in paths
    assert {"get", "post"} <= set(paths["/api/v1/catalog/resources"])
    assert "/api/v1/catalog/resources/{code}/transitions/{name}" in paths
    assert "/api/v1/catalog/apply" in paths


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert len(first) >= 8
    assert first != second


def test_a_request_id_sent_by_the_client_is_echoed(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "trace-0001-abcd"})
    assert response.headers["X-Request-ID"] == "trace-0001-abcd"


def test_an_unusable_request_id_is_replaced(client: TestClient) -> None:
    for sent in ("short", "x" * 65):
        returned = client.get("/healthz", headers={"X-Request-ID": sent}).headers["X-Request-ID"]
        assert returned != sent
        assert 8 <= len(returned) <= 64


def test_the_request_id_reaches_problems_and_the_change_log(
    client: TestClient, sqlite_world: World
) -> None:
    missing = client.get(
        "/api/v1/catalog/resources/gat_missing",
        headers={**auth(sqlite_world, "admin"), "X-Request-ID": "req-missing-0001"},
    )
    assert missing.json()["request_id"] == "req-missing-0001"

    created = client.post(
        "/api/v1/catalog/resources",
        json=resource_doc(),
        headers={**auth(sqlite_world, "gat_officer"), "X-Request-ID": "req-create-0001"},
    )
    assert created.status_code == 201
    changes = client.get(
        "/api/v1/changes",
        params={"object_id": "gat_population"},
        headers=auth(sqlite_world, "auditor"),
    ).json()
    assert [(c["action"], c["request_id"]) for c in changes["data"]] == [
        ("catalog_resource.create", "req-create-0001")
    ]


# authentication -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer shz_this-token-was-never-issued"},
    ],
    ids=["none", "empty", "basic", "malformed", "unknown"],
)
def test_requests_without_a_valid_token_are_401(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/departments", headers=headers)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_token_is_not_accepted_under_another_scheme(
    client: TestClient, sqlite_world: World
) -> None:
    response = client.get(
        "/api/v1/users/me", headers={"Authorization": f"Token {sqlite_world.tokens['admin']}"}
    )
    assert_problem(response, 401, "unauthenticated")


# departments --------------------------------------------------------------------------


NINGBO = {"code": "nb_gaj", "name": "宁波市公安局", "region": "330200", "parent": "zj_gat"}


def test_departments_are_listed_to_any_signed_in_user(
    client: TestClient, sqlite_world: World
) -> None:
    response = client.get("/api/v1/departments", headers=auth(sqlite_world, "viewer"))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert sorted(d["code"] for d in body["data"]) == ["hz_gaj", "zj_dsj", "zj_gat", "zj_wjw"]
    hz = next(d for d in body["data"] if d["code"] == "hz_gaj")
    assert (hz["parent"], hz["region"]) == ("zj_gat", "330100")


def test_the_admin_creates_a_department(client: TestClient, sqlite_world: World) -> None:
    response = client.post("/api/v1/departments", json=NINGBO, headers=auth(sqlite_world, "admin"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["code"], body["region"], body["region_name"], body["parent"]) == (
        "nb_gaj",
        "330200",
        "宁波市",
        "zj_gat",
    )
    fetched = client.get("/api/v1/departments/nb_gaj", headers=auth(sqlite_world, "viewer"))
    assert fetched.json()["name"] == "宁波市公安局"
    again = client.post("/api/v1/departments", json=NINGBO, headers=auth(sqlite_world, "admin"))
    assert_problem(again, 409, "conflict")


def test_a_data_officer_cannot_create_a_department(client: TestClient, sqlite_world: World) -> None:
    response = client.post(
        "/api/v1/departments", json=NINGBO, headers=auth(sqlite_world, "gat_officer")
    )
    assert_problem(response, 403, "forbidden")
    missing = client.get("/api/v1/departments/nb_gaj", headers=auth(sqlite_world, "admin"))
    assert_problem(missing, 404, "not-found")


def test_a_department_in_an_unknown_region_is_404_naming_the_region(
    client: TestClient, sqlite_world: World
) -> None:
    response = client.post(
        "/api/v1/departments",
        json={**NINGBO, "region": "339999"},
        headers=auth(sqlite_world, "admin"),
    )
    body = assert_problem(response, 404, "not-found")
    assert "339999" in body["detail"]
    assert body["field"] == "region"


@pytest.mark.parametrize("blank", ["   ", "\t", "\u3000\u3000"])
def test_a_department_name_of_spaces_is_422(
    client: TestClient, sqlite_world: World, blank: str
) -> None:
    admin = auth(sqlite_world, "admin")
    created = client.post("/api/v1/departments", json={**NINGBO, "name": blank}, headers=admin)
    assert assert_problem(created, 422, "validation")["field"] == "name"
    renamed = client.patch("/api/v1/departments/zj_gat", json={"name": blank}, headers=admin)
    assert assert_problem(renamed, 422, "validation")["field"] == "name"
    assert client.get("/api/v1/departments/zj_gat", headers=admin).json()["name"] == "浙江省公安厅"


def test_a_department_name_is_kept_without_its_surrounding_spaces(
    client: TestClient, sqlite_world: World
) -> None:
    body = {**NINGBO, "code": " nb_gaj ", "name": "  宁波市公安局 "}
    created = client.post("/api/v1/departments", json=body, headers=auth(sqlite_world, "admin"))
    assert created.status_code == 201, created.text
    assert (created.json()["code"], created.json()["name"]) == ("nb_gaj", "宁波市公安局")


# users and grants ---------------------------------------------------------------------


def new_user(department: str = "zj_gat", username: str = "gat_clerk") -> dict[str, str]:
    return {
        "username": username,
        "display_name": "公安厅办事员",
        "password": PASSWORD,
        "department": department,
    }


def test_users_me(client: TestClient, sqlite_world: World) -> None:
    response = client.get("/api/v1/users/me", headers=auth(sqlite_world, "gat_officer"))
    assert response.status_code == 200
    body = response.json()
    assert (body["username"], body["department"], body["active"]) == (
        "gat_officer",
        "zj_gat",
        True,
    )
    assert [(g["role"], g["department"]) for g in body["grants"]] == [("data_officer", "zj_gat")]
    assert "password" not in response.text
    assert "password_hash" not in body


def test_a_department_admin_creates_a_user_and_grants_a_role(
    client: TestClient, sqlite_world: World
) -> None:
    headers = auth(sqlite_world, "gat_admin")
    created = client.post("/api/v1/users", json=new_user(), headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["grants"] == []
    assert PASSWORD not in created.text

    granted = client.post(
        "/api/v1/users/gat_clerk/grants",
        json={"role": "data_officer", "department": "zj_gat"},
        headers=headers,
    )
    assert granted.status_code == 201, granted.text
    assert [(g["role"], g["department"]) for g in granted.json()["grants"]] == [
        ("data_officer", "zj_gat")
    ]
    fetched = client.get("/api/v1/users/gat_clerk", headers=auth(sqlite_world, "admin"))
    assert [g["role"] for g in fetched.json()["grants"]] == ["data_officer"]


def test_a_department_admin_cannot_create_users_elsewhere(
    client: TestClient, sqlite_world: World
) -> None:
    response = client.post(
        "/api/v1/users", json=new_user("zj_wjw"), headers=auth(sqlite_world, "gat_admin")
    )
    assert_problem(response, 403, "forbidden")
    missing = client.get("/api/v1/users/gat_clerk", headers=auth(sqlite_world, "admin"))
    assert_problem(missing, 404, "not-found")


def test_a_department_admin_cannot_grant_more_than_it_holds(
    client: TestClient, sqlite_world: World
) -> None:
    headers = auth(sqlite_world, "gat_admin")
    client.post("/api/v1/users", json=new_user(), headers=headers)
    for grant in (
        {"role": "platform_admin"},
        {"role": "platform_admin", "department": "zj_gat"},
        {"role": "data_officer", "department": "zj_wjw"},
    ):
        response = client.post("/api/v1/users/gat_clerk/grants", json=grant, headers=headers)
        assert_problem(response, 403, "forbidden")
    user = client.get("/api/v1/users/gat_clerk", headers=headers).json()
    assert user["grants"] == []


def test_a_weak_password_is_refused_naming_the_field(
    client: TestClient, sqlite_world: World
) -> None:
    response = client.post(
        "/api/v1/users",
        json={**new_user(), "password": "password"},
        headers=auth(sqlite_world, "admin"),
    )
    body = assert_problem(response, 422, "validation")
    assert body["field"] == "password"


def test_a_display_name_of_spaces_is_422(client: TestClient, sqlite_world: World) -> None:
    response = client.post(
        "/api/v1/users",
        json={**new_user(), "display_name": "  "},
        headers=auth(sqlite_world, "admin"),
    )
    assert assert_problem(response, 422, "validation")["field"] == "display_name"


def test_a_password_is_kept_exactly_as_typed(client: TestClient, sqlite_world: World) -> None:
    spaced = f"  {PASSWORD} "
    created = client.post(
        "/api/v1/users",
        json={**new_user(), "display_name": " 办事员 ", "password": spaced},
        headers=auth(sqlite_world, "admin"),
    )
    assert created.status_code == 201, created.text
    assert created.json()["display_name"] == "办事员"
    with sqlite_world.database.transaction() as session:
        assert orgs_service.authenticate(session, username="gat_clerk", password=spaced)
    with pytest.raises(ShuzhiError), sqlite_world.database.transaction() as session:
        orgs_service.authenticate(session, username="gat_clerk", password=PASSWORD)


def test_a_department_admin_deactivates_and_activates_a_user(
    client: TestClient, sqlite_world: World
) -> None:
    admin = auth(sqlite_world, "gat_admin")
    officer = auth(sqlite_world, "gat_officer")

    off = client.patch("/api/v1/users/gat_officer", json={"active": False}, headers=admin)
    assert off.status_code == 200, off.text
    assert (off.json()["username"], off.json()["active"]) == ("gat_officer", False)
    assert_problem(client.get("/api/v1/users/me", headers=officer), 401, "unauthenticated")

    on = client.patch("/api/v1/users/gat_officer", json={"active": True}, headers=admin)
    assert on.json()["active"] is True
    assert client.get("/api/v1/users/me", headers=officer).status_code == 200

    changes = client.get(
        "/api/v1/changes", params={"object_id": "gat_officer"}, headers=auth(sqlite_world, "admin")
    ).json()["data"]
    assert [(c["action"], c["actor"]) for c in changes][:2] == [
        ("user.activate", "gat_admin"),
        ("user.deactivate", "gat_admin"),
    ]


def test_a_user_outside_ones_scope_is_not_found_for_deactivation(
    client: TestClient, sqlite_world: World
) -> None:
    gat_admin = auth(sqlite_world, "gat_admin")
    outside = client.patch("/api/v1/users/wjw_officer", json={"active": False}, headers=gat_admin)
    missing = client.patch("/api/v1/users/nobody_here", json={"active": False}, headers=gat_admin)
    assert_problem(outside, 404, "not-found")
    assert_problem(missing, 404, "not-found")
    wjw = client.get("/api/v1/users/me", headers=auth(sqlite_world, "wjw_officer"))
    assert wjw.json()["active"] is True


@pytest.mark.parametrize("body", [{}, {"active": "maybe"}, {"active": False, "role": "x"}])
def test_a_user_update_that_is_not_just_active_is_422(
    client: TestClient, sqlite_world: World, body: dict[str, object]
) -> None:
    response = client.patch(
        "/api/v1/users/gat_officer", json=body, headers=auth(sqlite_world, "admin")
    )
    assert_problem(response, 422, "validation")
    assert client.get("/api/v1/users/me", headers=auth(sqlite_world, "gat_officer")).is_success


def test_a_data_officer_cannot_create_users(client: TestClient, sqlite_world: World) -> None:
    response = client.post(
        "/api/v1/users", json=new_user(), headers=auth(sqlite_world, "gat_officer")
    )
    assert_problem(response, 403, "forbidden")


def test_grant_endpoints_do_not_tell_who_exists(client: TestClient, sqlite_world: World) -> None:
    """As GET /users/{name} does, the grant endpoints answer a caller about a user it does
    not manage as they answer about a user who does not exist."""
    viewer = auth(sqlite_world, "viewer")
    for method in ("POST", "DELETE"):
        existing = client.request(
            method, "/api/v1/users/admin/grants", json={"role": "viewer"}, headers=viewer
        )
        missing = client.request(
            method, "/api/v1/users/no_such_user/grants", json={"role": "viewer"}, headers=viewer
        )
        assert existing.status_code == missing.status_code, (
            method,
            existing.json()["detail"],
            missing.json()["detail"],
        )


# tokens -------------------------------------------------------------------------------


def test_a_token_is_shown_once_works_and_stops_working_when_revoked(
    client: TestClient, sqlite_world: World
) -> None:
    headers = auth(sqlite_world, "gat_officer")
    created = client.post("/api/v1/tokens", json={"name": "etl"}, headers=headers)
    assert created.status_code == 201, created.text
    secret = created.json()["token"]
    token_id = created.json()["id"]
    assert secret.startswith(created.json()["prefix"])
    mine = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/users/me", headers=mine).json()["username"] == "gat_officer"

    listed = client.get("/api/v1/tokens", headers=headers)
    assert listed.status_code == 200
    assert sorted(t["name"] for t in listed.json()["data"]) == ["etl", "tests"]
    assert secret not in listed.text
    assert all("token" not in t for t in listed.json()["data"])

    revoked = client.delete(f"/api/v1/tokens/{token_id}", headers=headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    refused = client.get("/api/v1/users/me", headers=mine)
    assert_problem(refused, 401, "unauthenticated")
    # the other token of the same user still works
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200


def test_a_user_cannot_revoke_another_departments_token(
    client: TestClient, sqlite_world: World
) -> None:
    owner = auth(sqlite_world, "gat_officer")
    token_id = client.get("/api/v1/tokens", headers=owner).json()["data"][0]["id"]
    response = client.delete(
        f"/api/v1/tokens/{token_id}", headers=auth(sqlite_world, "wjw_officer")
    )
    # not found rather than forbidden: a probe must not learn which ids exist, or whose
    body = assert_problem(response, 404, "not-found")
    assert "gat_officer" not in body["detail"]
    assert client.get("/api/v1/users/me", headers=owner).status_code == 200


@pytest.mark.parametrize("token_id", ["0", "-1", "2147483648", "99999999999999999999"])
def test_a_token_id_out_of_range_is_422(
    client: TestClient, sqlite_world: World, token_id: str
) -> None:
    response = client.delete(f"/api/v1/tokens/{token_id}", headers=auth(sqlite_world, "admin"))
    body = assert_problem(response, 422, "validation")
    assert body["field"] == "path.token_id"


def test_a_token_name_of_spaces_is_422(client: TestClient, sqlite_world: World) -> None:
    response = client.post(
        "/api/v1/tokens", json={"name": "  "}, headers=auth(sqlite_world, "viewer")
    )
    assert assert_problem(response, 422, "validation")["field"] == "name"


# change log ---------------------------------------------------------------------------


def test_the_auditor_reads_the_change_log(client: TestClient, sqlite_world: World) -> None:
    client.post("/api/v1/departments", json=NINGBO, headers=auth(sqlite_world, "admin"))
    response = client.get("/api/v1/changes", headers=auth(sqlite_world, "auditor"))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] >= len(body["data"]) > 0
    newest = body["data"][0]
    assert (newest["action"], newest["object_id"], newest["actor"]) == (
        "department.create",
        "nb_gaj",
        "admin",
    )
    assert newest["after"]["name"] == "宁波市公安局"

    filtered = client.get(
        "/api/v1/changes",
        params={"action": "department.create", "by": "system"},
        headers=auth(sqlite_world, "auditor"),
    ).json()
    assert sorted(c["object_id"] for c in filtered["data"]) == [
        "hz_gaj",
        "zj_dsj",
        "zj_gat",
        "zj_wjw",
    ]
    assert filtered["count"] == 4


@pytest.mark.parametrize("user", ["viewer", "gat_officer"])
def test_the_change_log_is_forbidden_without_audit_read(
    client: TestClient, sqlite_world: World, user: str
) -> None:
    response = client.get("/api/v1/changes", headers=auth(sqlite_world, user))
    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize("offset", ["-1", "1000001", "99999999999999999999"])
def test_a_change_log_offset_out_of_range_is_422(
    client: TestClient, sqlite_world: World, offset: str
) -> None:
    response = client.get(
        "/api/v1/changes", params={"offset": offset}, headers=auth(sqlite_world, "auditor")
    )
    assert assert_problem(response, 422, "validation")["field"] == "query.offset"


def test_the_change_log_pages_as_far_as_the_offset_cap(
    client: TestClient, sqlite_world: World
) -> None:
    response = client.get(
        "/api/v1/changes", params={"offset": 1_000_000}, headers=auth(sqlite_world, "auditor")
    )
    assert response.status_code == 200
    assert response.json()["data"] == []
    assert response.json()["count"] > 0


# regions ------------------------------------------------------------------------------


def test_regions_list_by_level_and_parent(client: TestClient, sqlite_world: World) -> None:
    headers = auth(sqlite_world, "viewer")
    cities = client.get("/api/v1/regions", params={"level": "city"}, headers=headers).json()
    assert cities["count"] == 11
    assert {"330100", "330200"} <= {r["code"] for r in cities["data"]}
    assert {r["parent_code"] for r in cities["data"]} == {"330000"}
    hangzhou = client.get("/api/v1/regions", params={"parent": "330100"}, headers=headers).json()
    assert "330102" in {r["code"] for r in hangzhou["data"]}
    assert {r["parent_code"] for r in hangzhou["data"]} == {"330100"}


def test_the_region_list_pages_and_counts_every_match(
    client: TestClient, sqlite_world: World
) -> None:
    headers = auth(sqlite_world, "viewer")
    pages = [
        client.get(
            "/api/v1/regions",
            params={"level": "county", "limit": 40, "offset": offset},
            headers=headers,
        ).json()
        for offset in (0, 40, 80)
    ]
    assert [page["count"] for page in pages] == [90, 90, 90]
    assert [len(page["data"]) for page in pages] == [40, 40, 10]
    assert len({r["code"] for page in pages for r in page["data"]}) == 90


def test_the_region_list_counts_every_match_past_500(
    client: TestClient, sqlite_world: World
) -> None:
    """A county with 501 towns: the count says 501, not the 500 of a capped query."""
    rows = "".join(f"330102{n:03d},镇{n},town,330102\n" for n in range(1, 502))
    with sqlite_world.database.transaction() as session:
        regions_service.load_csv(session, actor=SYSTEM, text="code,name,level,parent\n" + rows)
    listed = client.get(
        "/api/v1/regions", params={"parent": "330102"}, headers=auth(sqlite_world, "viewer")
    ).json()
    assert listed["count"] == 501


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 5001}, {"offset": -1}, {"offset": 1_000_001}]
)
def test_region_paging_out_of_range_is_422(
    client: TestClient, sqlite_world: World, params: dict[str, int]
) -> None:
    response = client.get("/api/v1/regions", params=params, headers=auth(sqlite_world, "viewer"))
    assert assert_problem(response, 422, "validation")["field"] == f"query.{next(iter(params))}"


@pytest.mark.parametrize("q", ["%", "_", "33%", "西%"])
def test_region_search_terms_are_not_wildcards(
    client: TestClient, sqlite_world: World, q: str
) -> None:
    found = client.get("/api/v1/regions", params={"q": q}, headers=auth(sqlite_world, "viewer"))
    assert found.json() == {"data": [], "count": 0}


def test_department_and_region_search_terms_are_not_wildcards(
    client: TestClient, sqlite_world: World
) -> None:
    viewer = auth(sqlite_world, "viewer")
    assert client.get("/api/v1/departments", params={"q": "%"}, headers=viewer).json()["count"] == 0
    assert client.get("/api/v1/regions", params={"q": "%"}, headers=viewer).json()["count"] == 0


def test_region_search_by_name_part(client: TestClient, sqlite_world: World) -> None:
    found = client.get(
        "/api/v1/regions", params={"q": "西湖"}, headers=auth(sqlite_world, "viewer")
    ).json()
    assert ([r["code"] for r in found["data"]], found["count"]) == (["330106"], 1)


def test_region_tree_subtree_and_ancestors(client: TestClient, sqlite_world: World) -> None:
    headers = auth(sqlite_world, "viewer")
    [root] = client.get("/api/v1/regions/tree", params={"root": "330100"}, headers=headers).json()
    assert root["code"] == "330100"
    assert "330102" in {child["code"] for child in root["children"]}

    [province] = client.get("/api/v1/regions/tree", headers=headers).json()
    assert province["code"] == "330000"
    assert len(province["children"]) == 11

    subtree = client.get("/api/v1/regions/330100/subtree", headers=headers).json()
    codes = [r["code"] for r in subtree["data"]]
    assert codes[0] == "330100"
    assert "330102" in codes
    assert "330200" not in codes
    assert all(code.startswith("3301") for code in codes)

    ancestors = client.get("/api/v1/regions/330102/ancestors", headers=headers).json()
    assert [r["code"] for r in ancestors["data"]] == ["330000", "330100"]

    region = client.get("/api/v1/regions/330102", headers=headers).json()
    assert (region["name"], region["parent_code"]) == ("上城区", "330100")


def test_an_unknown_region_is_404(client: TestClient, sqlite_world: World) -> None:
    for path in ("/api/v1/regions/339999", "/api/v1/regions/339999/ancestors"):
        response = client.get(path, headers=auth(sqlite_world, "viewer"))
        assert_problem(response, 404, "not-found")


def test_regions_need_a_token(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/regions"), 401, "unauthenticated")


def test_a_tokens_last_use_is_recorded_at_most_every_few_minutes(
    client: TestClient, sqlite_world: World
) -> None:
    start = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)

    def last_used() -> datetime | None:
        with sqlite_world.database.session() as session:
            account = orgs_queries.user(session, "viewer")
            return orgs_queries.tokens_of(session, account.id)[0].last_used_at

    try:
        for minutes, expected in ((0, start), (4, start), (6, start + timedelta(minutes=6))):
            now = start + timedelta(minutes=minutes)
            clock.set_clock(lambda now=now: now)
            assert client.get("/api/v1/users/me", headers=auth(sqlite_world, "viewer")).is_success
            assert last_used() == expected
    finally:
        clock.set_clock(None)


def test_the_body_that_granted_a_role_also_revokes_it(sqlite_world: World) -> None:
    """``grant_role`` treats ``"department": ""`` as no department and stores NULL;
    ``revoke_role`` compares the empty string with NULL and answers 404."""
    world = sqlite_world
    body = {"role": "viewer", "department": "", "region": ""}
    with TestClient(create_app(database=world.database)) as client:
        granted = client.post(
            "/api/v1/users/gat_officer/grants", json=body, headers=auth(world, "admin")
        )
        assert granted.status_code == 201, granted.text
        assert {"role": "viewer", "department": None, "region": None}.items() <= (
            granted.json()["grants"][-1].items()
        )
        revoked = client.request(
            "DELETE", "/api/v1/users/gat_officer/grants", json=body, headers=auth(world, "admin")
        )
    assert revoked.status_code == 200, revoked.text
    assert [g["role"] for g in revoked.json()["grants"]] == ["data_officer"]
