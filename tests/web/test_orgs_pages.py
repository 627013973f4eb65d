"""Users, grants and the user's own API tokens in the cockpit."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from shuzhi.orgs import queries
from shuzhi.orgs.models import ApiToken
from tests.api.support import assert_clean_error
from tests.conftest import PASSWORD, World
from tests.web.support import csrf_of, flashed, login


def grants(world: World, username: str) -> set[tuple[str, str | None]]:
    with world.database.session() as session:
        account = queries.user(session, username)
        return {
            (g.role_code, g.department.code if g.department else None)
            for g in queries.grants_of(session, account.id)
        }


def user_exists(world: World, username: str) -> bool:
    with world.database.session() as session:
        return any(u.username == username for u in queries.users(session))


def test_a_department_admin_sees_and_manages_only_its_users(
    client: TestClient, sqlite_world: World
) -> None:
    login(client, "gat_admin")
    page = client.get("/users")
    assert page.status_code == 200
    listed = set(re.findall(r'data-user="([^"]+)"', page.text))
    assert {"gat_admin", "gat_officer"} <= listed
    assert "wjw_officer" not in listed
    csrf = csrf_of(page.text)

    created = client.post(
        "/users",
        data={
            "csrf": csrf,
            "username": "gat_new",
            "display_name": "新专员",
            "department": "zj_gat",
            "role": "data_officer",
            "password": PASSWORD,
        },
        follow_redirects=False,
    )
    assert created.status_code == 303 and created.headers["location"] == "/users"
    assert flashed(client.get("/users").text) == "已保存。"
    assert grants(sqlite_world, "gat_new") == {("data_officer", "zj_gat")}


def test_a_department_admin_cannot_reach_outside_its_department(
    client: TestClient, sqlite_world: World
) -> None:
    login(client, "gat_admin")
    csrf = csrf_of(client.get("/users").text)

    outside = client.post(
        "/users",
        data={
            "csrf": csrf,
            "username": "wjw_new",
            "display_name": "x",
            "department": "zj_wjw",
            "password": PASSWORD,
        },
        follow_redirects=False,
    )
    assert outside.headers["location"] == "/users"
    refusal = client.get("/users").text
    assert 'role="alert"' in refusal
    assert "wjw_new" in (flashed(refusal) or "")
    assert not user_exists(sqlite_world, "wjw_new")

    escalate = client.post(
        "/users/gat_officer/grants",
        data={"csrf": csrf, "role": "platform_admin", "department": "zj_gat"},
        follow_redirects=True,
    )
    assert "不能在该范围授予 platform_admin" in escalate.text
    assert ("platform_admin", "zj_gat") not in grants(sqlite_world, "gat_officer")


def test_grant_and_revoke_through_the_page(client: TestClient, sqlite_world: World) -> None:
    login(client, "admin")
    csrf = csrf_of(client.get("/users").text)

    client.post(
        "/users/viewer/grants", data={"csrf": csrf, "role": "data_officer", "department": "zj_wjw"}
    )
    assert ("data_officer", "zj_wjw") in grants(sqlite_world, "viewer")

    client.post(
        "/users/viewer/grants/revoke",
        data={"csrf": csrf, "role": "data_officer", "department": "zj_wjw", "region": ""},
    )
    assert ("data_officer", "zj_wjw") not in grants(sqlite_world, "viewer")


def test_users_page_is_forbidden_to_those_who_manage_no_one(client: TestClient) -> None:
    login(client, "viewer")
    assert client.get("/users").status_code == 403
    assert 'href="/users"' not in client.get("/").text


def test_an_api_token_is_shown_once_works_and_can_be_revoked(client: TestClient) -> None:
    login(client, "gat_officer")
    csrf = csrf_of(client.get("/account").text)

    made = client.post("/account/tokens", data={"csrf": csrf, "name": "同步脚本", "days": "7"})
    token = re.search(r'data-testid="new-token">(shz_[^<]+)<', made.text).group(1)
    assert "同步脚本" in made.text  # listed with the others at once
    assert token not in client.get("/account").text

    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/users/me", headers=headers).json()["username"] == "gat_officer"

    listed = client.get("/api/v1/tokens", headers=headers).json()["data"]
    mine = next(t for t in listed if t["name"] == "同步脚本")
    assert f"/account/tokens/{mine['id']}/revoke" in client.get("/account").text
    client.post(f"/account/tokens/{mine['id']}/revoke", data={"csrf": csrf})
    assert client.get("/api/v1/users/me", headers=headers).status_code == 401


def test_token_forms_need_the_csrf_field(client: TestClient, sqlite_world: World) -> None:
    login(client, "gat_officer")
    response = client.post("/account/tokens", data={"name": "x"})
    assert response.status_code == 403
    with sqlite_world.database.session() as session:
        account = queries.user(session, "gat_officer")
        assert [t.name for t in queries.tokens_of(session, account.id)] == ["tests"]


def api_token_names(world: World, username: str) -> list[str]:
    with world.database.session() as session:
        account = queries.user(session, username)
        return [t.name for t in queries.tokens_of(session, account.id)]


def test_a_bad_token_form_is_refused_with_the_reason(
    client: TestClient, sqlite_world: World
) -> None:
    login(client, "gat_officer")
    csrf = csrf_of(client.get("/account").text)

    for form, field in (
        ({"name": "x", "days": "²"}, "days"),
        ({"name": "x", "days": "0"}, "days"),
        ({"name": "x", "days": "99999999"}, "days"),
        ({"name": "n" * 81}, "name"),
    ):
        response = client.post("/account/tokens", data={"csrf": csrf, **form})
        assert response.status_code == 200, form
        assert (flashed(response.text) or "").startswith(f"{field}:"), form

    assert api_token_names(sqlite_world, "gat_officer") == ["tests"]

    made = client.post("/account/tokens", data={"csrf": csrf, "name": "n" * 80, "days": "3650"})
    assert 'data-testid="new-token"' in made.text
    assert "n" * 80 in api_token_names(sqlite_world, "gat_officer")


def test_a_token_name_longer_than_its_column_is_refused_on_each_backend(
    any_client: TestClient, world: World
) -> None:
    """PostgreSQL refuses a value wider than its column and SQLite stores it: the form
    must refuse the name itself, on either backend."""
    login(any_client, "viewer")
    csrf = csrf_of(any_client.get("/account").text)
    response = any_client.post("/account/tokens", data={"csrf": csrf, "name": "n" * 300})
    assert_clean_error(response)
    with world.database.session() as session:
        names = session.scalars(select(ApiToken.name).where(ApiToken.kind == "api"))
        assert all(len(name) <= 80 for name in names)


def test_a_token_id_out_of_range_is_refused(client: TestClient) -> None:
    login(client, "gat_officer")
    csrf = csrf_of(client.get("/account").text)
    for token_id in ("0", "2147483648", "99999999999999999999"):
        response = client.post(f"/account/tokens/{token_id}/revoke", data={"csrf": csrf})
        assert response.status_code == 422, token_id
        assert 'data-testid="error"' in response.text

    unknown = client.post("/account/tokens/2147483647/revoke", data={"csrf": csrf})
    assert unknown.status_code == 200
    assert 'role="alert"' in unknown.text


def test_a_non_ascii_csrf_field_is_refused(client: TestClient, sqlite_world: World) -> None:
    login(client, "gat_officer")
    for path in ("/account/tokens", "/logout"):
        response = client.post(path, data={"csrf": "é", "name": "x"}, follow_redirects=False)
        assert response.status_code == 403, path
    assert api_token_names(sqlite_world, "gat_officer") == ["tests"]


def test_the_departments_page_has_one_new_department_form_outside_its_title(
    client: TestClient,
) -> None:
    login(client, "admin")
    page = client.get("/departments").text
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert title.strip() == "部门 · 数治"
    assert page.count('data-testid="create-department"') == 1
