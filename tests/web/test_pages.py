"""The cockpit pages, driven over HTTP as a browser without JavaScript drives them."""

from __future__ import annotations

import ast
import io
import re
import string
from html import unescape
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import select

from shuzhi import web
from shuzhi.brain import service as brain
from shuzhi.brain.compute import SourceInfo, validate
from shuzhi.brain.rules import WARNING
from shuzhi.brain.schemas import IndicatorSpec
from shuzhi.catalog import service as catalog
from shuzhi.catalog.models import Resource
from shuzhi.catalog.rules import LIFECYCLE
from shuzhi.catalog.schemas import ResourceCreate
from shuzhi.core.errors import Conflict, Message, NotFound, ValidationFailed
from shuzhi.core.models import ChangeLog
from shuzhi.core.permissions import SYSTEM
from shuzhi.gateway.rules import APPLICATION, GRANT, CredentialState
from shuzhi.lake.connectors import transcode
from shuzhi.loop.rules import MILESTONE, PROBLEM
from shuzhi.orgs import service as orgs
from shuzhi.orgs.schemas import DepartmentCreate, DepartmentUpdate
from shuzhi.server import create_app
from shuzhi.web import i18n
from shuzhi.web.app import NAV
from shuzhi.web.session import COOKIE, LANG_COOKIE
from shuzhi.web.views.deps import MAX_PAGE
from tests.conftest import PASSWORD, World, resource_doc
from tests.web.support import csrf_of, flashed, login

WEB = Path(web.__file__).resolve().parent
SRC = WEB.parent


# helpers ------------------------------------------------------------------------------


def input_value(html: str, name: str) -> str | None:
    """The value of the first <input> of this name on the page."""
    tag = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', html)
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0)) if tag else None
    return unescape(value.group(1)) if value else None


def add_resource(world: World, state: str = "draft", **overrides: object) -> str:
    """A resource of zj_gat made through the services, moved to ``state``."""
    data = ResourceCreate.model_validate(resource_doc(**overrides))
    path = {
        "draft": [],
        "pending_review": ["submit"],
        "published": ["submit", "approve"],
    }[state]
    with world.database.transaction() as session:
        catalog.create(session, actor=SYSTEM, data=data)
        for name in path:
            catalog.transition(session, actor=SYSTEM, code=data.code, name=name)
    return data.code


def resource_row(world: World, code: str) -> tuple[str, int, str] | None:
    with world.database.session() as session:
        row = session.scalar(select(Resource).where(Resource.code == code))
        return (row.state, row.version, row.name) if row else None


def form_for(csrf: str, **overrides: object) -> dict[str, object]:
    """What the new-resource form posts: two field rows, the first the primary key."""
    form: dict[str, object] = {
        "csrf": csrf,
        "code": "gat_vehicles",
        "name": "机动车登记信息",
        "summary": "机动车登记与过户",
        "provider": "zj_gat",
        "region": "330000",
        "system": "digital_government",
        "classification": "department",
        "format": "table",
        "update_cycle": "daily",
        "sharing": "conditional",
        "sharing_conditions": "仅限交通执法使用",
        "open": "prohibited",
        "grade": "L3",
        "national_level": "general",
        "tags": "车辆，登记, 交通",
        "field_name": ["plate_no", "owner_name"],
        "field_title": ["号牌号码", "所有人"],
        "field_type": ["string", "string"],
        "field_pii": ["none", "name"],
        "field_description": ["", "机动车所有人姓名"],
        "field_primary_key": ["0"],
        "field_required": ["1"],
    }
    form.update(overrides)
    return form


# login and language ---------------------------------------------------------------------


def test_pages_send_an_anonymous_visitor_to_login(client: TestClient) -> None:
    response = client.get("/catalog", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/catalog"

    page = client.get("/catalog")
    assert page.status_code == 200
    assert 'name="next" value="/catalog"' in page.text


def test_a_wrong_password_gets_401_and_no_session(client: TestClient) -> None:
    response = client.post("/login", data={"username": "gat_officer", "password": "Wrong-Horse-42"})
    assert response.status_code == 401
    assert "用户名或密码错误。" in response.text
    assert input_value(response.text, "username") == "gat_officer"
    assert COOKIE not in response.cookies
    assert client.get("/catalog", follow_redirects=False).status_code == 303


def test_the_right_password_sets_the_cookie_and_goes_next(client: TestClient) -> None:
    response = client.post(
        "/login",
        data={"username": "gat_officer", "password": PASSWORD, "next": "/departments"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/departments"
    assert response.cookies.get(COOKIE, "").startswith("shz_")
    assert "httponly" in response.headers["set-cookie"].lower()
    assert client.get("/catalog").status_code == 200


def test_login_never_redirects_off_site(client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/x"):
        response = client.post(
            "/login",
            data={"username": "viewer", "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/"


def test_pages_speak_chinese_by_default_and_english_on_request(client: TestClient) -> None:
    login(client, "viewer")
    page = client.get("/catalog")
    assert '<html lang="zh-CN">' in page.text
    assert "数据目录" in page.text

    english = client.get("/catalog?lang=en")
    assert '<html lang="en">' in english.text
    assert "<h1>Catalog</h1>" in english.text
    assert "数据目录" not in english.text
    assert english.cookies.get(LANG_COOKIE) == "en"
    assert "<h1>Catalog</h1>" in client.get("/catalog").text  # the cookie remembers

    switched = client.get("/lang/zh-CN?next=/catalog", follow_redirects=False)
    assert switched.status_code == 303
    assert switched.headers["location"] == "/catalog"
    assert "数据目录" in client.get("/catalog").text


# catalog --------------------------------------------------------------------------------


def test_catalog_lists_and_searches(client: TestClient, sqlite_world: World) -> None:
    add_resource(sqlite_world, "published")
    add_resource(
        sqlite_world,
        "published",
        code="gat_vehicles",
        name="机动车登记信息",
        summary="机动车登记与过户",
        tags=["车辆"],
    )
    login(client, "viewer")

    page = client.get("/catalog")
    assert page.status_code == 200
    assert 'data-testid="results"' in page.text
    assert "/catalog/gat_population" in page.text
    assert "/catalog/gat_vehicles" in page.text

    partial = client.get("/catalog/results", params={"q": "人口"})
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert "/catalog/gat_population" in partial.text
    assert "/catalog/gat_vehicles" not in partial.text
    assert re.search(r'data-testid="count">1 条结果', partial.text)

    nothing = client.get("/catalog/results", params={"q": "不存在的词"})
    assert "没有符合条件的资源。" in nothing.text

    filtered = client.get("/catalog", params={"state": "draft"})
    assert "/catalog/gat_population" not in filtered.text


@pytest.mark.parametrize(
    ("page", "shown"),
    [("abc", 1), ("²", 1), ("0", 1), ("-3", 1), ("2", 2), ("99999999999999999999", MAX_PAGE)],
)
def test_a_page_number_typed_by_hand_is_read_safely(
    client: TestClient, sqlite_world: World, page: str, shown: int
) -> None:
    add_resource(sqlite_world, "published")
    login(client, "auditor")
    for path in ("/catalog", "/catalog/results"):
        response = client.get(path, params={"page": page})
        assert response.status_code == 200, path
        assert re.search(r'data-testid="count">1 条结果', response.text)
    changes = client.get("/changes", params={"page": page})
    assert changes.status_code == 200
    assert re.search(rf"<span>{shown} / \d+</span>", changes.text)


def test_a_viewer_sees_published_resources_but_not_drafts(
    client: TestClient, sqlite_world: World
) -> None:
    add_resource(sqlite_world, "draft")
    login(client, "viewer")
    assert "/catalog/gat_population" not in client.get("/catalog").text
    assert client.get("/catalog/gat_population").status_code == 404


def test_the_resource_page_shows_fields_state_and_actions(
    client: TestClient, sqlite_world: World
) -> None:
    add_resource(sqlite_world, "draft")
    login(client, "gat_officer")

    page = client.get("/catalog/gat_population")
    assert page.status_code == 200
    assert "浙江省常住人口基本信息" in page.text
    assert re.search(r'data-testid="state">草稿<', page.text)
    assert "公民身份号码" in page.text
    assert 'data-testid="edit"' in page.text
    assert 'data-testid="transition-submit"' in page.text
    assert 'data-testid="transition-approve"' not in page.text  # officers do not review


def test_create_a_resource_through_the_form(client: TestClient, sqlite_world: World) -> None:
    login(client, "gat_officer")
    form_page = client.get("/catalog/new")
    assert form_page.status_code == 200
    assert '<option value="zj_gat" selected>' in form_page.text

    response = client.post(
        "/catalog/new", data=form_for(csrf_of(form_page.text)), follow_redirects=False
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/catalog/gat_vehicles"

    page = client.get(response.headers["location"])
    assert flashed(page.text) == "已保存。"
    assert "机动车登记信息" in page.text
    with sqlite_world.database.session() as session:
        resource = session.scalar(select(Resource).where(Resource.code == "gat_vehicles"))
        assert resource is not None
        assert resource.state == "draft"
        assert resource.tags == ["交通", "登记", "车辆"]
        fields = [(f.name, f.primary_key, f.nullable, f.pii) for f in resource.fields]
        assert fields == [("plate_no", True, False, "none"), ("owner_name", False, False, "name")]
        creator = session.scalar(
            select(ChangeLog.actor_name).where(
                ChangeLog.action == "catalog_resource.create", ChangeLog.object_id == "gat_vehicles"
            )
        )
        assert creator == "gat_officer"


def test_edit_a_draft_through_the_form(client: TestClient, sqlite_world: World) -> None:
    add_resource(sqlite_world, "draft")
    login(client, "gat_officer")

    edit_page = client.get("/catalog/gat_population/edit")
    assert edit_page.status_code == 200
    assert input_value(edit_page.text, "name") == "浙江省常住人口基本信息"
    # the form as the page renders it, with the name changed
    form = form_for(
        csrf_of(edit_page.text),
        code="gat_population",
        name="浙江省常住人口信息（修订）",
        field_name=["id_card", "full_name"],
        field_title=["公民身份号码", "姓名"],
        field_type=["string", "string"],
        field_pii=["id_card", "name"],
        field_description=["", ""],
    )
    response = client.post("/catalog/gat_population/edit", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert resource_row(sqlite_world, "gat_population") == (
        "draft",
        2,
        "浙江省常住人口信息（修订）",
    )


def test_an_edit_from_a_page_opened_before_another_edit_is_refused(
    client: TestClient, sqlite_world: World
) -> None:
    add_resource(sqlite_world, "draft")
    login(client, "gat_officer")
    edit_page = client.get("/catalog/gat_population/edit").text
    assert input_value(edit_page, "version") == "1"
    form = form_for(csrf_of(edit_page), code="gat_population", version="1")

    first = client.post("/catalog/gat_population/edit", data={**form, "name": "第一个标签页"})
    second = client.post("/catalog/gat_population/edit", data={**form, "name": "第二个标签页"})

    assert first.status_code == 200
    assert second.status_code == 409
    assert "现为第 2 版而非第 1 版" in unescape(second.text)
    assert input_value(second.text, "name") == "第二个标签页"  # what was typed is kept
    assert resource_row(sqlite_world, "gat_population") == ("draft", 2, "第一个标签页")


def test_lifecycle_through_the_forms(client: TestClient, sqlite_world: World) -> None:
    add_resource(sqlite_world, "draft")
    login(client, "gat_officer")
    csrf = csrf_of(client.get("/catalog/gat_population").text)

    submitted = client.post(
        "/catalog/gat_population/transitions/submit", data={"csrf": csrf}, follow_redirects=False
    )
    assert submitted.status_code == 303
    assert submitted.headers["location"] == "/catalog/gat_population"
    assert flashed(client.get("/catalog/gat_population").text) == "操作成功。"
    assert resource_row(sqlite_world, "gat_population")[0] == "pending_review"

    login(client, "admin")
    csrf = csrf_of(client.get("/catalog/gat_population").text)
    no_reason = client.post(
        "/catalog/gat_population/transitions/reject", data={"csrf": csrf, "comment": ""}
    )
    assert no_reason.status_code == 200
    assert 'role="alert"' in no_reason.text
    assert resource_row(sqlite_world, "gat_population")[0] == "pending_review"

    rejected = client.post(
        "/catalog/gat_population/transitions/reject", data={"csrf": csrf, "comment": "口径不清"}
    )
    assert "操作成功。" in rejected.text
    assert "口径不清" in rejected.text  # in the history table
    assert resource_row(sqlite_world, "gat_population")[0] == "rejected"

    illegal = client.post("/catalog/gat_population/transitions/approve", data={"csrf": csrf})
    assert 'role="alert"' in illegal.text
    assert resource_row(sqlite_world, "gat_population")[0] == "rejected"


def test_form_posts_without_the_csrf_token_are_refused(
    client: TestClient, sqlite_world: World
) -> None:
    add_resource(sqlite_world, "draft")
    login(client, "gat_officer")
    other_session = csrf_of(client.get("/catalog/new").text)
    login(client, "gat_officer")  # a new session: the old form token no longer fits

    for path, data in (
        ("/catalog/new", form_for("")),
        ("/catalog/new", form_for(other_session)),
        ("/catalog/gat_population/edit", form_for("", code="gat_population", name="改名")),
        ("/catalog/gat_population/transitions/submit", {}),
    ):
        response = client.post(path, data=data)
        assert response.status_code == 403, path
        assert 'data-testid="error"' in response.text

    assert resource_row(sqlite_world, "gat_vehicles") is None
    assert resource_row(sqlite_world, "gat_population") == ("draft", 1, "浙江省常住人口基本信息")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "name"),
        ({"code": "Bad-Code"}, "code"),
        ({"sharing_conditions": ""}, "sharing_conditions"),
    ],
)
def test_an_invalid_form_comes_back_with_the_error_and_the_typed_values(
    client: TestClient, sqlite_world: World, overrides: dict[str, str], message: str
) -> None:
    login(client, "gat_officer")
    csrf = csrf_of(client.get("/catalog/new").text)
    form = form_for(csrf, summary="我输入的摘要", **overrides)

    response = client.post("/catalog/new", data=form)

    assert response.status_code == 422
    error = re.search(r'data-testid="form-error">([^<]*)<', response.text)
    assert error and message in unescape(error.group(1))
    assert "我输入的摘要" in response.text
    assert input_value(response.text, "field_name") == "plate_no"
    assert input_value(response.text, "code") == form["code"]
    with sqlite_world.database.session() as session:
        assert session.scalar(select(Resource.id)) is None


def test_a_resource_code_already_taken_is_a_409_form(
    client: TestClient, sqlite_world: World
) -> None:
    add_resource(sqlite_world, "draft", code="gat_vehicles")
    login(client, "gat_officer")
    csrf = csrf_of(client.get("/catalog/new").text)
    response = client.post("/catalog/new", data=form_for(csrf))
    assert response.status_code == 409
    assert "数据资源 gat_vehicles 已存在" in response.text


def test_a_user_without_a_grant_cannot_reach_another_departments_draft(
    client: TestClient, sqlite_world: World
) -> None:
    add_resource(sqlite_world, "draft")
    login(client, "wjw_officer")
    csrf = csrf_of(client.get("/catalog").text)

    assert client.get("/catalog/gat_population").status_code == 404
    assert client.get("/catalog/gat_population/edit").status_code == 404
    assert "/catalog/gat_population" not in client.get("/catalog/results").text

    edited = client.post(
        "/catalog/gat_population/edit",
        data=form_for(csrf, code="gat_population", name="越权修改"),
    )
    assert edited.status_code in (403, 404)
    submitted = client.post("/catalog/gat_population/transitions/submit", data={"csrf": csrf})
    assert submitted.status_code in (403, 404)
    # nor may it create resources for zj_gat
    created = client.post("/catalog/new", data=form_for(csrf))
    assert created.status_code == 403

    assert resource_row(sqlite_world, "gat_population") == ("draft", 1, "浙江省常住人口基本信息")
    assert resource_row(sqlite_world, "gat_vehicles") is None


# session, audit, reference pages --------------------------------------------------------


def test_logout_revokes_the_session(client: TestClient, sqlite_world: World) -> None:
    login(client, "gat_officer")
    old_cookie = client.cookies.get(COOKIE)
    csrf = csrf_of(client.get("/catalog").text)

    refused = client.post("/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/catalog", follow_redirects=False).status_code == 200

    response = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"

    with TestClient(create_app(database=sqlite_world.database)) as replay:
        replay.cookies.set(COOKIE, old_cookie)
        again = replay.get("/catalog", follow_redirects=False)
        assert again.status_code == 303
        assert again.headers["location"].startswith("/login")


def test_the_change_log_is_for_auditors(client: TestClient, sqlite_world: World) -> None:
    add_resource(sqlite_world, "draft")
    login(client, "auditor")
    page = client.get("/changes")
    assert page.status_code == 200
    assert "变更日志" in page.text
    assert "catalog_resource.create" in page.text
    assert 'href="/changes"' in page.text

    filtered = client.get("/changes", params={"object_type": "department"})
    assert "department.create" in filtered.text
    assert "catalog_resource.create" not in filtered.text

    login(client, "viewer")
    refused = client.get("/changes")
    assert refused.status_code == 403
    assert 'data-testid="error"' in refused.text
    assert "catalog_resource.create" not in refused.text
    assert 'href="/changes"' not in client.get("/catalog").text


def test_departments_and_regions_render(client: TestClient) -> None:
    login(client, "viewer")
    departments = client.get("/departments")
    assert departments.status_code == 200
    assert "浙江省公安厅" in departments.text
    assert "杭州市公安局" in departments.text

    regions = client.get("/regions", params={"root": "330100"})
    assert regions.status_code == 200
    assert "西湖区" in regions.text
    assert "宁波市" not in regions.text
    assert "宁波市" in client.get("/regions").text


def test_the_home_page_counts_the_catalog(client: TestClient, sqlite_world: World) -> None:
    add_resource(sqlite_world, "published")
    login(client, "viewer")
    page = client.get("/")
    assert page.status_code == 200
    assert re.search(r'data-testid="published">1<', page.text)


# translations ---------------------------------------------------------------------------

MESSAGE = re.compile(r"""\b_\(\s*(["'])(.+?)(?<!\\)\1\s*\)""")


def _messages() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    files = [*sorted((WEB / "templates").rglob("*.html")), *sorted(WEB.rglob("*.py"))]
    for path in files:
        if "node_modules" in path.parts:
            continue
        for match in MESSAGE.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(match.group(2), set()).add(str(path.relative_to(WEB)))
    return found


def test_every_message_has_a_chinese_translation() -> None:
    messages = _messages()
    assert "Log in" in messages  # the scan finds messages in templates
    assert "Choose a YAML file." in messages  # and in code
    missing = {message: files for message, files in messages.items() if message not in i18n.ZH}
    assert missing == {}
    missing_nav = [item.label for item in NAV if item.label not in i18n.ZH]
    assert missing_nav == []


def _service_messages() -> list[tuple[str, set[str] | None, str]]:
    """Every ``Message("template", name=...)`` in the code: its template, the names of the
    values it is given (None when they come from a ``**mapping``) and where it is."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Message"):
                continue
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue  # a name given as a message (a workflow's): checked below
            names = {item.arg for item in node.keywords}
            found.append(
                (first.value, None if None in names else names, f"{path.name}:{node.lineno}")
            )
    return found


def test_every_service_message_has_a_chinese_translation_with_its_values() -> None:
    messages = _service_messages()
    assert len(messages) > 20  # the scan finds them
    formatter = string.Formatter()
    for template, names, where in messages:
        assert template in i18n.ZH, f"{where}: no translation of {template!r}"
        wanted = {name for _, name, _, _ in formatter.parse(i18n.ZH[template]) if name}
        if names is not None:
            assert wanted <= names, f"{where}: {template!r} is not given {wanted - names}"
    machines = (LIFECYCLE, APPLICATION, GRANT, PROBLEM, MILESTONE, WARNING)
    assert [machine.name for machine in machines if machine.name not in i18n.ZH] == []


def test_a_message_is_said_in_the_readers_language() -> None:
    inner = Message("{workflow} {object}", workflow=Message("problem"), object=7)
    said = Message("{actor} may not {action} on {what}", actor="ann", action="x.y", what=inner)
    assert said == "ann may not x.y on problem 7"  # the English, wherever text is wanted
    assert i18n.say(said, "en") == "ann may not x.y on problem 7"
    assert i18n.say(said, "zh-CN") == "ann 无权对“问题 7”执行 x.y"
    # text that is not a message, or a template without a translation, stays as it is
    assert i18n.say("plain words", "zh-CN") == "plain words"
    assert i18n.say(Message("no such {thing}", thing=1), "zh-CN") == "no such 1"


# refusals said wholly in Chinese, their English as it was --------------------------------

CJK = "\u4e00-\u9fff"
# two Chinese characters apart, or Chinese touching a code with no space between them
SPACING_FAULT = re.compile(rf"[{CJK}] [{CJK}]|[{CJK}][A-Za-z0-9_]|[A-Za-z0-9_][{CJK}]")


def test_a_permission_refusal_reads_naturally_whatever_it_names() -> None:
    whats = set()
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "what":
                call = node.value
                if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Message":
                    whats.add((call.args[0].value, tuple(item.arg for item in call.keywords)))
    assert len(whats) > 20  # the scan finds them
    for template, names in sorted(whats):
        values = {name: Message("problem") if name == "object_type" else "x1" for name in names}
        what = Message(template, **values)
        said = Message("{actor} may not {action} on {what}", actor="ann", action="a.b", what=what)
        zh = i18n.say(said, "zh-CN")
        assert zh.startswith("ann 无权对“") and zh.endswith("”执行 a.b"), zh
        assert not SPACING_FAULT.search(zh), zh
    said = Message(
        "{actor} may not {action} on {what}",
        actor="viewer",
        action="catalog.edit",
        what=Message("resources of {provider}", provider="zj_gat"),
    )
    assert said == "viewer may not catalog.edit on resources of zj_gat"
    assert i18n.say(said, "zh-CN") == "viewer 无权对“zj_gat 的数据资源”执行 catalog.edit"


def test_a_credential_state_is_said_by_its_chinese_label() -> None:
    for state, label in [("expired", "已过期"), ("revoked", "已撤销")]:
        refusal = Message(
            "credential {access_key} is {credential_state}",
            access_key="SZ1",
            credential_state=state,
            state_label=CredentialState(state).zh,
        )
        assert refusal == f"credential SZ1 is {state}"
        assert i18n.say(refusal, "zh-CN") == f"访问凭证 SZ1 的状态为“{label}”"


def test_more_bad_target_rows_than_shown_are_counted_in_chinese() -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["指标代码", "行政区划代码", "周期类型", "期间", "目标值"])
    for _ in range(7):
        sheet.append(["cases", "330102", "年", 2025, "很多"])
    out = io.BytesIO()
    book.save(out)
    with pytest.raises(ValidationFailed) as caught:
        brain.parse_targets_workbook(out.getvalue(), source="目标.xlsx")
    refusal = caught.value.detail
    assert refusal.startswith("目标.xlsx: row 2 目标值: ") and refusal.endswith(" (and 2 more)")
    zh = i18n.say(refusal, "zh-CN")
    assert zh.startswith("目标.xlsx：row 2 目标值: ") and zh.endswith("（另有 2 条）")
    assert "(and" not in zh and "more" not in zh


def test_an_undecodable_byte_is_placed_in_chinese(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_bytes(b"a,b\n1,\xff\n")
    with pytest.raises(ValidationFailed) as caught:
        transcode(source, "utf-8", tmp_path / "out.csv", lambda _rows: None)
    refusal = caught.value.detail
    assert refusal == "bad.csv is not valid utf-8 at byte 6; give the right --encoding"
    zh = i18n.say(refusal, "zh-CN")
    assert zh == "bad.csv 不是有效的 utf-8（第 6 字节处）；请指定正确的 --encoding"


def test_an_indicator_in_a_file_is_named_in_chinese() -> None:
    text = "indicators:\n- code: rate\n"
    with pytest.raises(ValidationFailed) as caught:
        brain.parse_file(text, source="x.yaml")
    refusal = caught.value.detail
    assert refusal.startswith("x.yaml: indicator rate: ")
    assert i18n.say(refusal, "zh-CN").startswith("x.yaml：指标 rate：")


def test_a_field_of_the_wrong_type_is_named_in_chinese() -> None:
    spec = IndicatorSpec.model_validate(
        {"code": "rate", "name": "测试比率", "system": "grassroots", "owner": "zj_gat",
         "source": "x", "time": "t", "measure": {"kind": "sum", "field": "v"}}
    )  # fmt: skip
    sources = {"x": SourceInfo("x", {"t": "string", "region_code": "string", "v": "integer"})}
    with pytest.raises(ValidationFailed) as caught:
        validate({"rate": spec}, sources=sources, departments=["zj_gat"])
    refusal = caught.value.detail
    assert refusal == "indicator rate: the time column x.t is string, not date or datetime"
    zh = i18n.say(refusal, "zh-CN")
    assert zh == "指标 rate：时间列 x.t 的类型为 string，而非 date 或 datetime"
    summed = {"x": SourceInfo("x", {"t": "date", "region_code": "string", "v": "string"})}
    with pytest.raises(ValidationFailed) as caught:
        validate({"rate": spec}, sources=summed, departments=["zj_gat"])
    refusal = caught.value.detail
    assert refusal == "indicator rate: the sum field x.v is string, not decimal or integer"
    zh = i18n.say(refusal, "zh-CN")
    assert zh == "指标 rate：求和的信息项 x.v 的类型为 string，而非 decimal 或 integer"


def test_a_goal_in_a_file_is_named_in_chinese(sqlite_world: World) -> None:
    goal = {"code": "g1", "name": "目标一", "owner": "zj_nobody", "starts_on": "2025-01-01",
            "ends_on": "2025-12-31"}  # fmt: skip
    text = yaml.safe_dump({"goals": [goal]}, allow_unicode=True)
    with pytest.raises(NotFound) as caught, sqlite_world.database.transaction() as session:
        brain.apply_goals(session, actor=SYSTEM, text=text, source="g.yaml")
    refusal = caught.value.detail
    assert refusal == "g.yaml: goal g1: unknown owner department zj_nobody"
    assert i18n.say(refusal, "zh-CN") == "g.yaml：目标 g1：未知的责任部门 zj_nobody"


def test_a_clash_names_the_department_in_chinese(sqlite_world: World) -> None:
    credit_code = "91350100M000100Y43"
    with sqlite_world.database.transaction() as session:
        orgs.update_department(
            session, actor=SYSTEM, code="zj_gat", data=DepartmentUpdate(credit_code=credit_code)
        )
    other = DepartmentCreate(
        code="zj_other", name="某某厅", region="330000", credit_code=credit_code
    )
    with pytest.raises(Conflict) as caught, sqlite_world.database.transaction() as session:
        orgs.create_department(session, actor=SYSTEM, data=other)
    refusal = caught.value.detail
    assert refusal.startswith("department zj_other clashes with an existing record: ")
    assert i18n.say(refusal, "zh-CN").startswith("部门 zj_other 与已有记录冲突：")
