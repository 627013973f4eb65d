"""Cockpit forms for operators: new departments and catalog YAML uploads."""

from __future__ import annotations

import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from shuzhi.catalog.models import Resource
from shuzhi.core.standards import credit_code_check
from shuzhi.orgs.models import Department
from shuzhi.web.session import LANG_COOKIE
from tests.conftest import World, resource_doc
from tests.web.support import csrf_of, flashed, login


def count(world: World, model: type) -> int:
    with world.database.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def department_form(csrf: str, **overrides: object) -> dict[str, object]:
    body = "11330000MB0123456"
    form: dict[str, object] = {
        "csrf": csrf,
        "code": "zj_tyj",
        "name": "浙江省体育局",
        "region": "330000",
        "parent": "",
        "systems": ["digital_society", "digital_culture"],
        "credit_code": body + credit_code_check(body),
    }
    return {**form, **overrides}


def test_a_platform_admin_creates_a_department(client: TestClient, sqlite_world: World) -> None:
    login(client, "admin")
    page = client.get("/departments")
    assert 'data-testid="create-department"' in page.text

    done = client.post(
        "/departments", data=department_form(csrf_of(page.text)), follow_redirects=False
    )

    assert done.headers["location"] == "/departments"
    assert flashed(client.get("/departments").text) == "已保存。"
    with sqlite_world.database.session() as session:
        created = session.scalar(select(Department).where(Department.code == "zj_tyj"))
        assert created is not None
        assert created.systems == ["digital_society", "digital_culture"]


def test_bad_department_input_is_reported_and_creates_nothing(
    client: TestClient, sqlite_world: World
) -> None:
    login(client, "admin")
    csrf = csrf_of(client.get("/departments").text)
    before = count(sqlite_world, Department)

    for overrides, fragment in (
        ({"credit_code": "11330000MB01234567"}, "GB 32100"),
        ({"region": "339999"}, "339999"),
        ({"code": "Bad Code"}, "code"),
        ({"code": "zj_gat"}, "部门 zj_gat 已存在"),
    ):
        page = client.post("/departments", data=department_form(csrf, **overrides))
        assert fragment in page.text, overrides

    assert count(sqlite_world, Department) == before


def test_a_data_officer_cannot_create_departments(client: TestClient, sqlite_world: World) -> None:
    login(client, "gat_officer")
    page = client.get("/departments")
    assert 'data-testid="create-department"' not in page.text
    before = count(sqlite_world, Department)

    refused = client.post("/departments", data=department_form(csrf_of(page.text)))

    assert "gat_officer 无权对“部门 zj_tyj”执行 orgs.manage_departments" in refused.text
    assert count(sqlite_world, Department) == before
    # the same refusal, for a reader of English, in the words the API and the CLI use
    client.cookies.set(LANG_COOKIE, "en")
    refused = client.post("/departments", data=department_form(csrf_of(page.text)))
    assert flashed(refused.text) == (
        "gat_officer may not orgs.manage_departments on department zj_tyj"
    )
    assert count(sqlite_world, Department) == before


def upload(client: TestClient, csrf: str, name: str, text: str) -> str:
    response = client.post(
        "/catalog/apply",
        data={"csrf": csrf},
        files={"file": (name, text.encode(), "application/yaml")},
    )
    assert response.status_code == 200
    return response.text


def test_a_data_officer_applies_a_yaml_file(client: TestClient, sqlite_world: World) -> None:
    login(client, "gat_officer")
    csrf = csrf_of(client.get("/catalog").text)
    document = yaml.safe_dump({"resources": [resource_doc()]}, allow_unicode=True)

    first = upload(client, csrf, "gat.yaml", document)
    again = upload(client, csrf, "gat.yaml", document)

    assert "新建 1 条" in first
    assert "新建 0 条，更新 0 条，未变 1 条" in again
    assert count(sqlite_world, Resource) == 1


def test_a_bad_yaml_file_is_refused_whole(client: TestClient, sqlite_world: World) -> None:
    login(client, "gat_officer")
    csrf = csrf_of(client.get("/catalog").text)
    good = resource_doc(code="gat_one")
    bad = resource_doc(code="gat_two", grade="L9")
    document = yaml.safe_dump({"resources": [good, bad]}, allow_unicode=True)

    page = upload(client, csrf, "mixed.yaml", document)

    assert "mixed.yaml：数据资源 gat_two：" in page
    assert count(sqlite_world, Resource) == 0


def test_a_viewer_gets_no_upload_and_cannot_apply(client: TestClient, sqlite_world: World) -> None:
    login(client, "viewer")
    page = client.get("/catalog")
    assert 'data-testid="apply-yaml"' not in page.text
    document = yaml.safe_dump({"resources": [resource_doc()]}, allow_unicode=True)

    refused = upload(client, csrf_of(page.text), "gat.yaml", document)

    assert "viewer 无权对“zj_gat 的数据资源”执行 catalog.edit" in refused
    assert count(sqlite_world, Resource) == 0


def test_a_yaml_file_nested_too_deeply_is_refused_on_the_page(
    client: TestClient, sqlite_world: World
) -> None:
    login(client, "gat_officer")
    csrf = csrf_of(client.get("/catalog").text)

    page = upload(client, csrf, "deep.yaml", "resources: " + "[" * 5000 + "]" * 5000)

    assert (flashed(page) or "").startswith("deep.yaml")
    assert 'class="flash err" role="alert"' in page
    assert count(sqlite_world, Resource) == 0
