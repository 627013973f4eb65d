"""The cockpit's gateway pages: applying from the catalog, the providers' inbox and
decisions, grants and how their fields are sent, consumer systems with credentials whose
secret is shown once, and the access log with its chain check, driven over HTTP as a
browser without JavaScript does."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update

from shuzhi.client import Client, GatewayError
from shuzhi.core import clock
from shuzhi.core.permissions import SYSTEM
from shuzhi.core.settings import get_settings
from shuzhi.gateway import oversight, queries, service
from shuzhi.gateway.models import Application, Consumer, Credential, Grant
from shuzhi.gateway.schemas import ApplicationCreate, Decision
from shuzhi.web.flash import COOKIE as FLASH_COOKIE
from tests.conftest import World, add_user, resource_doc
from tests.gateway.data import FIELDS, NAMES, load_people, log_call, make_consumer
from tests.lake.data import publish
from tests.web.support import csrf_of, flashed, login

CODE = "gat_people"
CONSUMER = "zj_health_app"  # a system of the health commission, zj_wjw
APPLY = f"/catalog/{CODE}/apply"
ASKED = ["id_card", "full_name", "region", "gender", "age"]


@pytest.fixture
def province(sqlite_world: World) -> World:
    """A conditional resource of the police department with a region field, a consumer
    system of the health commission, and an officer of a department in neither."""
    publish(
        sqlite_world.database,
        resource_doc(code=CODE, name="浙江省人口基础信息", sharing="conditional", fields=FIELDS),
    )
    make_consumer(sqlite_world.database, CONSUMER, "zj_wjw")
    add_user(
        sqlite_world,
        "dsj_officer",
        department="zj_dsj",
        role="data_officer",
        grant_department="zj_dsj",
    )
    return sqlite_world


def section(html: str, testid: str) -> str:
    """The element carrying this data-testid, up to its end tag."""
    match = re.search(rf'<(\w+)[^>]*data-testid="{testid}"', html)
    assert match, f"no {testid} on the page"
    end = html.index(f"</{match.group(1)}>", match.end())
    return unescape(html[match.start() : end])


def form_error(html: str) -> str:
    match = re.search(r'data-testid="form-error">([^<]*)<', html)
    assert match, "no form error on the page"
    return unescape(match.group(1))


def application_form(csrf: str, **overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "csrf": csrf,
        "consumer": CONSUMER,
        "fields": ASKED,
        "clear_fields": ["full_name"],
        "rights": ["read"],
        "purpose_code": "330000-QT-0001",
        "purpose": "办理社会救助资格认定",
        "legal_basis": "《社会救助暂行办法》第十一条",
        "region": "",
        "valid_from": "",
        "valid_until": "",
    }
    return {**form, **overrides}


def applied(world: World, username: str = "wjw_officer", **overrides: Any) -> int:
    """An application made through the service, as the consumer side would."""
    body: dict[str, Any] = {
        "consumer": CONSUMER,
        "resource": CODE,
        "fields": ASKED,
        "clear_fields": ["id_card", "full_name"],
        "purpose_code": "330000-QT-0001",
        "purpose": "办理社会救助资格认定",
        "legal_basis": "《社会救助暂行办法》第十一条",
        **overrides,
    }
    with world.database.transaction() as session:
        return service.apply(
            session, actor=world.actor(username), data=ApplicationCreate(**body)
        ).id


def granted(world: World, clear: list[str] | None = None) -> int:
    """An application approved by the platform operator; returns the grant's id."""
    application_id = applied(world)
    with world.database.transaction() as session:
        service.decide(
            session,
            actor=SYSTEM,
            application_id=application_id,
            approve=True,
            decision=Decision(clear_fields=clear or []),
        )
    with world.database.session() as session:
        made = queries.grant_of_application(session, application_id)
        assert made is not None
        return made.id


def state_of(world: World, model: type[Application] | type[Grant], item_id: int) -> str:
    with world.database.session() as session:
        return session.scalar(select(model.state).where(model.id == item_id))


def count(world: World, model: type) -> int:
    with world.database.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def post(client: TestClient, path: str, page: str, **data: Any) -> str:
    """Post a form of ``page`` (for its CSRF token); returns the page it redirects to."""
    response = client.post(
        path, data={**data, "csrf": csrf_of(client.get(page).text)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return client.get(response.headers["location"]).text


# applying from the catalog ---------------------------------------------------------------


def test_the_catalog_page_offers_to_apply_to_those_who_may(
    client: TestClient, province: World
) -> None:
    publish(
        province.database,
        resource_doc(code="gat_secret", sharing="none", sharing_conditions="涉密", fields=FIELDS),
    )
    login(client, "wjw_officer")
    assert f'href="{APPLY}"' in client.get(f"/catalog/{CODE}").text
    assert 'data-testid="apply"' not in client.get("/catalog/gat_secret").text
    assert client.get("/catalog/gat_secret/apply").status_code == 403

    login(client, "viewer")
    assert 'data-testid="apply"' not in client.get(f"/catalog/{CODE}").text
    assert client.get(APPLY).status_code == 403


def test_the_apply_form_offers_only_the_users_systems(client: TestClient, province: World) -> None:
    make_consumer(province.database, "gat_case_app", "zj_gat")
    login(client, "wjw_officer")
    form = client.get(APPLY).text
    consumers = section(form, "apply-consumer")
    assert CONSUMER in consumers
    assert "gat_case_app" not in consumers
    fields = section(form, "apply-fields")
    for name in NAMES:
        assert f'value="{name}"' in fields
    assert 'data-testid="clear-id_card"' in fields  # personal: may be asked in clear
    assert 'data-testid="clear-gender"' not in fields  # not personal: always clear


def test_apply_through_the_form(client: TestClient, province: World) -> None:
    login(client, "wjw_officer")
    response = client.post(
        APPLY, data=application_form(csrf_of(client.get(APPLY).text)), follow_redirects=False
    )
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/gateway/applications/(\d+)", response.headers["location"])
    assert match
    page = client.get(response.headers["location"]).text
    assert flashed(page) == "申请已提交，等待提供部门审批。"
    assert section(page, "state").endswith("待审批")
    assert "办理社会救助资格认定" in section(page, "purpose")
    assert 'data-testid="clear-full_name"' in page
    assert 'data-testid="transition-withdraw"' in page  # the consumer side may withdraw
    assert 'data-testid="transition-approve"' not in page  # but not decide

    with province.database.session() as session:
        made = session.get(Application, int(match.group(1)))
        assert made is not None
        assert (made.fields, made.clear_fields, made.submitted_by) == (
            ASKED,
            ["full_name"],
            "wjw_officer",
        )
        assert made.region_code == "330000"  # empty: the consumer department's region


def test_an_unconditional_resource_is_granted_at_once(client: TestClient, province: World) -> None:
    publish(
        province.database, resource_doc(code="gat_open", sharing="unconditional", fields=FIELDS)
    )
    login(client, "wjw_officer")
    path = "/catalog/gat_open/apply"
    done = post(client, path, path, **application_form("", clear_fields=[]))
    assert flashed(done) == "已即时授权：该资源为无条件共享。"
    assert section(done, "state").endswith("已批准")
    assert 'data-testid="grant-link"' in done
    assert 'data-testid="actions"' not in done  # nothing left to decide or withdraw


@pytest.mark.parametrize(
    ("overrides", "message", "status"),
    [
        ({"purpose_code": "有 空格"}, "purpose_code", 422),
        # a service's refusal in the page's language
        ({"fields": []}, "'full_name' 申请明文，但不在所申请的信息项中", 422),
        ({"clear_fields": ["mobile"]}, "'mobile' 申请明文，但不在所申请的信息项中", 422),
        ({"region": "320000"}, "未知的行政区划代码 '320000'", 404),
        ({"valid_until": "2000-01-01"}, "有效期止须不早于今天", 422),
        ({"consumer": "gat_case_app"}, "没有应用系统 'gat_case_app'", 404),
    ],
)
def test_an_invalid_application_comes_back_with_the_reason_and_saves_nothing(
    client: TestClient, province: World, overrides: dict[str, Any], message: str, status: int
) -> None:
    make_consumer(province.database, "gat_case_app", "zj_gat")
    login(client, "wjw_officer")
    form = application_form(csrf_of(client.get(APPLY).text), purpose="我输入的用途", **overrides)

    response = client.post(APPLY, data=form)

    assert response.status_code == status
    assert message in form_error(response.text)
    assert "我输入的用途" in response.text  # what was typed stays
    assert count(province, Application) == 0


# the inboxes and decisions -----------------------------------------------------------------


def test_the_providers_inbox_lists_what_awaits_its_decision(
    client: TestClient, province: World
) -> None:
    application_id = applied(province)
    row = f'data-application="{application_id}"'

    login(client, "gat_officer")
    inbox = client.get("/gateway/applications").text  # a provider opens on the inbox
    assert 'class="active" data-testid="tab-inbox"' in inbox
    listed = section(inbox, "applications")
    assert row in listed
    assert CONSUMER in listed and CODE in listed and "待审批" in listed
    assert 'data-testid="overdue"' not in listed

    login(client, "dsj_officer")  # an officer of a department in neither side
    assert row not in client.get("/gateway/applications").text
    assert row not in client.get("/gateway/applications?tab=ours").text
    assert client.get(f"/gateway/applications/{application_id}").status_code == 404

    login(client, "wjw_officer")  # the consumer side: its own applications, not its inbox
    assert row not in client.get("/gateway/applications?tab=inbox").text
    assert row in client.get("/gateway/applications?tab=ours").text
    assert row not in client.get("/gateway/applications?tab=ours&state=approved").text
    assert row in client.get("/gateway/applications?tab=ours&state=pending").text


def test_an_application_past_its_due_date_is_marked_overdue(
    client: TestClient, province: World
) -> None:
    application_id = applied(province)
    with province.database.transaction() as session:
        session.execute(
            update(Application)
            .where(Application.id == application_id)
            .values(due_at=clock.now() - timedelta(days=1))
        )
    login(client, "gat_officer")
    listed = section(client.get("/gateway/applications").text, "applications")
    assert 'data-testid="overdue"' in listed
    assert 'data-testid="overdue"' in client.get(f"/gateway/applications/{application_id}").text


def test_approve_with_one_personal_field_in_clear(client: TestClient, province: World) -> None:
    application_id = applied(province)  # asks id_card and full_name in clear
    page_url = f"/gateway/applications/{application_id}"
    login(client, "gat_officer")
    page = client.get(page_url).text
    assert 'data-testid="transition-approve"' in page
    assert 'data-testid="transition-reject"' in page
    assert 'data-testid="transition-withdraw"' not in page  # the consumer side's
    assert 'data-testid="approve-clear-id_card"' in page
    assert 'data-testid="approve-clear-full_name"' in page

    done = post(
        client,
        f"{page_url}/approve",
        page_url,
        clear_fields=["full_name"],
        requests_per_second="5",
        rows_per_day="",
        comment="同意，姓名可明文",
    )

    assert flashed(done) == "操作成功。"
    assert section(done, "state").endswith("已批准")
    assert 'data-testid="transition-approve"' not in done
    assert "同意，姓名可明文" in section(done, "history")
    match = re.search(r'href="/gateway/grants/(\d+)" data-testid="grant-link"', done)
    assert match
    grant = client.get(f"/gateway/grants/{match.group(1)}").text
    assert 'data-mode="clear">明文' in section(grant, "mode-full_name")
    assert 'data-mode="token">令牌化' in section(grant, "mode-id_card")  # L3 default
    assert 'data-mode="clear">明文' in section(grant, "mode-gender")  # not personal
    assert section(grant, "rps").endswith(">5")
    assert section(grant, "rows-per-day").endswith(f">{get_settings().gateway.rows_per_day}")


def test_reject_needs_a_reason(client: TestClient, province: World) -> None:
    application_id = applied(province)
    page_url = f"/gateway/applications/{application_id}"
    login(client, "gat_officer")

    refused = post(client, f"{page_url}/reject", page_url, comment="  ")
    assert "须填写理由" in (flashed(refused) or "")
    assert state_of(province, Application, application_id) == "pending"

    done = post(client, f"{page_url}/reject", page_url, comment="用途与共享条件不符")
    assert state_of(province, Application, application_id) == "rejected"
    assert section(done, "reason").endswith("用途与共享条件不符")
    assert count(province, Grant) == 0


def test_the_consumer_side_withdraws(client: TestClient, province: World) -> None:
    application_id = applied(province)
    page_url = f"/gateway/applications/{application_id}"
    login(client, "wjw_officer")
    assert 'data-testid="transition-approve"' not in client.get(page_url).text
    # deciding is the provider's, whatever the form says
    refused = post(client, f"{page_url}/approve", page_url)
    assert "无权对“共享申请 1”执行 gateway.decide" in (flashed(refused) or "")
    assert state_of(province, Application, application_id) == "pending"

    done = post(client, f"{page_url}/withdraw", page_url)
    assert section(done, "state").endswith("已撤回")


# grants ---------------------------------------------------------------------------------------


def test_the_grants_pages_show_how_each_field_is_sent(client: TestClient, province: World) -> None:
    grant_id = granted(province)
    login(client, "wjw_officer")
    listed = section(client.get("/gateway/grants").text, "grants")
    assert f'data-grant="{grant_id}"' in listed
    assert "full_name: 脱敏" in listed
    assert f'data-grant="{grant_id}"' not in client.get("/gateway/grants?state=revoked").text
    assert f'data-grant="{grant_id}"' in client.get(f"/gateway/grants?consumer={CONSUMER}").text
    assert f'data-grant="{grant_id}"' not in client.get("/gateway/grants?resource=other").text

    page = client.get(f"/gateway/grants/{grant_id}").text
    modes = dict(re.findall(r'data-testid="mode-(\w+)" data-mode="(\w+)"', page))
    assert modes == {
        "id_card": "token",
        "full_name": "masked",
        "region": "clear",
        "gender": "clear",
        "age": "clear",
    }
    assert 'data-testid="actions"' not in page  # the consumer side does not suspend
    english = client.get(f"/gateway/grants/{grant_id}?lang=en").text
    assert 'data-mode="masked">masked' in english


def test_suspend_needs_a_comment_and_resume_restores(client: TestClient, province: World) -> None:
    grant_id = granted(province)
    page_url = f"/gateway/grants/{grant_id}"
    login(client, "gat_officer")
    page = client.get(page_url).text
    assert 'data-testid="transition-suspend"' in page
    assert 'data-testid="transition-revoke"' in page
    assert 'data-testid="transition-resume"' not in page

    refused = post(client, f"{page_url}/suspend", page_url, comment="")
    assert "须填写理由" in (flashed(refused) or "")
    assert state_of(province, Grant, grant_id) == "active"

    suspended = post(client, f"{page_url}/suspend", page_url, comment="核查调用异常")
    assert section(suspended, "state").endswith("暂停")
    assert 'data-testid="transition-resume"' in suspended
    assert "核查调用异常" in section(suspended, "history")

    resumed = post(client, f"{page_url}/resume", page_url)
    assert section(resumed, "state").endswith("有效")

    refused = post(client, f"{page_url}/revoke", page_url)
    assert "须填写理由" in (flashed(refused) or "")
    assert state_of(province, Grant, grant_id) == "active"


# consumers and credentials ---------------------------------------------------------------------


def test_register_a_consumer_and_see_its_secret_once(client: TestClient, province: World) -> None:
    login(client, "gat_admin")
    listing = client.get("/gateway/consumers").text
    assert 'data-testid="consumer-form"' in listing
    made = post(
        client,
        "/gateway/consumers",
        "/gateway/consumers",
        code="gat_case_app",
        name="案件办理系统",
        department="zj_gat",
        contact="",
        description="",
    )
    assert flashed(made) == "已保存。"
    assert 'data-testid="no-credentials"' in made

    csrf = csrf_of(made)
    issued = client.post("/gateway/consumers/gat_case_app/credentials", data={"csrf": csrf})
    assert issued.status_code == 200
    assert issued.headers["cache-control"] == "no-store"
    assert "无法再次查看" in section(issued.text, "issued")
    key = section(issued.text, "issued-key").rsplit(">", 1)[1]
    secret = section(issued.text, "issued-secret").rsplit(">", 1)[1]
    with province.database.session() as session:
        salt = session.scalar(select(Credential.salt).where(Credential.access_key == key))
    assert salt and secret == service.derive_secret(
        get_settings().secret(), access_key=key, salt=salt
    )
    assert FLASH_COOKIE not in issued.cookies  # nor in a cookie, nor in the URL
    assert secret not in str(issued.url)

    again = client.get("/gateway/consumers/gat_case_app").text
    assert secret not in again
    assert 'data-testid="issued"' not in again
    assert f'data-testid="key-state-{key}">有效' in again

    rotated = client.post(
        f"/gateway/consumers/gat_case_app/credentials/{key}/rotate", data={"csrf": csrf}
    )
    assert rotated.status_code == 200
    new_secret = section(rotated.text, "issued-secret").rsplit(">", 1)[1]
    assert new_secret != secret
    assert f'data-testid="key-state-{key}">轮换过渡中' in rotated.text

    revoked = post(
        client, f"/gateway/consumers/gat_case_app/credentials/{key}/revoke", "/gateway/consumers"
    )
    assert f'data-testid="key-state-{key}">已撤销' in revoked
    assert new_secret not in revoked
    refused = post(
        client,
        f"/gateway/consumers/gat_case_app/credentials/{key}/rotate",
        "/gateway/consumers/gat_case_app",
    )
    assert flashed(refused) == f"访问凭证 {key} 的状态为“已撤销”"


def test_only_consumer_managers_register_systems(client: TestClient, province: World) -> None:
    login(client, "gat_officer")  # a data officer applies, but does not register systems
    listing = client.get("/gateway/consumers").text
    assert 'data-testid="consumer-form"' not in listing
    assert f'data-consumer="{CONSUMER}"' not in listing  # another department's system
    refused = post(
        client,
        "/gateway/consumers",
        "/gateway/consumers",
        code="gat_case_app",
        name="案件办理系统",
        department="zj_gat",
    )
    assert "无权" in (flashed(refused) or "")
    assert count(province, Consumer) == 1

    login(client, "wjw_officer")
    page = client.get(f"/gateway/consumers/{CONSUMER}").text
    assert 'data-testid="issue"' not in page
    assert client.get("/gateway/consumers/gat_case_app").status_code == 404


# the access log ------------------------------------------------------------------------------


def test_the_access_log_and_its_chain(client: TestClient, province: World, tmp_path: Path) -> None:
    load_people(province.database, tmp_path, code=CODE)
    granted(province)
    with province.database.transaction() as session:
        key, secret = service.issue_credential(session, actor=SYSTEM, consumer=CONSUMER)
        access_key = key.access_key
    gateway = Client(
        "http://testserver",
        key=access_key,
        secret=secret,
        session=client,
        purpose="330000-QT-0001",
        user="wang.li",
    )
    assert gateway.records(CODE, limit=5)["data"]
    assert gateway.records(CODE, limit=3)["data"]
    with pytest.raises(GatewayError):
        gateway.records(CODE, fields="mobile")  # not granted: refused, and logged

    login(client, "auditor")
    page = client.get("/audit/access-log?lang=en&verify=1").text
    chain = section(page, "chain")
    assert 'data-intact="true"' in chain
    assert "Chain intact: 3 entries" in chain
    log = section(page, "access-log")
    assert all(f'data-seq="{seq}"' in log for seq in (1, 2, 3))
    assert "field-not-granted" in log
    ok_only = section(client.get("/audit/access-log?outcome=ok").text, "access-log")
    assert 'data-seq="3"' not in ok_only and 'data-seq="2"' in ok_only
    assert 'data-testid="no-entries"' in client.get("/audit/access-log?consumer=nobody").text
    assert "日志链完整：共 3 条" in section(
        client.get("/audit/access-log?lang=zh-CN&verify=1").text, "chain"
    )

    with province.database.transaction() as session:
        session.execute(text("UPDATE gateway_access_log SET rows = rows + 1 WHERE seq = 2"))

    broken_page = client.get("/audit/access-log?lang=en&verify=1").text
    broken = section(broken_page, "chain")
    assert 'data-intact="false"' in broken and 'data-first-bad="2"' in broken
    assert "Chain broken at entry 2: its content does not match its hash." in broken
    assert 'data-seq="2" class="bad"' in broken_page
    chinese = section(client.get("/audit/access-log?lang=zh-CN&verify=1").text, "chain")
    assert "日志链在第 2 条处断裂：其内容与哈希值不符" in chinese


def test_the_access_log_verifies_its_chain_only_when_asked(
    client: TestClient, province: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with province.database.transaction() as session:
        for minutes in range(3):
            _entry(session, clock.now() - timedelta(minutes=minutes))
        session.execute(text("UPDATE gateway_access_log SET rows = rows + 1 WHERE seq = 2"))
    walks: list[int] = []
    verify_chain = service.verify_chain

    def counted(*args: Any, **kwargs: Any) -> Any:
        walks.append(1)
        return verify_chain(*args, **kwargs)

    monkeypatch.setattr(service, "verify_chain", counted)
    login(client, "auditor")

    page = client.get(f"/audit/access-log?lang=en&consumer={CONSUMER}&page=1").text
    chain = section(page, "chain")
    assert walks == []  # a plain view does not walk the chain
    assert 'data-verified="false"' in chain
    assert "The chain was not verified in this view." in chain
    assert "data-intact" not in chain and "intact:" not in chain and "broken" not in chain
    assert 'class="bad"' not in page  # nor marks an entry as the bad one
    # the button asks again with the same filters
    button = re.search(r'href="([^"]*)" data-testid="verify-chain"', page)
    assert button
    assert unescape(button.group(1)) == (f"?consumer={CONSUMER}&target=&outcome=&page=1&verify=1")
    assert "立即校验" in section(client.get("/audit/access-log?lang=zh-CN").text, "chain")

    asked = client.get("/audit/access-log" + unescape(button.group(1))).text
    assert walks == [1]
    assert 'data-intact="false" data-first-bad="2"' in section(asked, "chain")
    assert f'name="consumer" value="{CONSUMER}"' in asked  # the filters are kept
    assert 'data-testid="verify-chain"' not in asked


# usage and the auditor's flags ----------------------------------------------------------------


def _entry(session: Any, at: Any, consumer: str = CONSUMER, **extra: Any) -> None:
    """An access-log entry as the gateway writes it for a call."""
    log_call(session, at, consumer, **extra)


def _totals(html: str, testid: str) -> dict[str, tuple[int, int, int]]:
    return {
        key: (int(calls), int(refused), int(rows))
        for key, calls, refused, rows in re.findall(
            r'data-key="([^"]*)" data-calls="(\d+)" data-refused="(\d+)" data-rows="(\d+)"',
            section(html, testid),
        )
    }


@pytest.fixture
def calls(province: World) -> World:
    """Calls of two consumer systems on two resources over the last weeks, some refused."""
    make_consumer(province.database, "gat_case_app", "zj_gat")
    now = clock.now()
    with province.database.transaction() as session:
        for minutes in range(3):
            _entry(session, now - timedelta(minutes=minutes), purpose="案件A")
        _entry(session, now, status=403, outcome="field-not-granted", rows=0)
        _entry(session, now - timedelta(days=1), target="other_resource", rows=7)
        _entry(session, now - timedelta(days=2), consumer="gat_case_app", rows=11)
        _entry(session, now - timedelta(days=10), consumer="gat_case_app", rows=100)
        _entry(session, now - timedelta(days=40), rows=1000)  # before any period offered
    return province


def test_usage_shows_the_domains_totals(client: TestClient, calls: World) -> None:
    auditor = calls.actor("auditor")
    with calls.database.session() as session:
        month = oversight.usage(session, actor=auditor, days=30)
        week = oversight.usage(session, actor=auditor, days=7)
    login(client, "auditor")

    page = client.get("/gateway/usage").text
    assert 'class="active" data-testid="tab-usage"' in page
    by_consumer = _totals(page, "by-consumer")
    assert by_consumer == {
        item.key: (item.calls, item.refused, item.rows) for item in month.by_consumer
    }
    assert by_consumer == {CONSUMER: (5, 1, 22), "gat_case_app": (2, 0, 111)}
    assert _totals(page, "by-target") == {
        item.key: (item.calls, item.refused, item.rows) for item in month.by_target
    }
    by_day = section(page, "by-day")
    for item in month.by_day:
        assert (
            f'data-day="{item.key}" data-calls="{item.calls}" data-refused="{item.refused}"'
            in by_day
        )
    assert 'data-testid="usage-chart"' in page
    detail = section(page, "usage-rows")
    assert detail.count("<tr data-day=") == len(month.rows)
    assert "案件A" in detail

    week_page = client.get("/gateway/usage?days=7").text
    assert _totals(week_page, "by-consumer") == {
        item.key: (item.calls, item.refused, item.rows) for item in week.by_consumer
    }
    assert '<option value="7" selected>' in week_page
    one = _totals(client.get(f"/gateway/usage?consumer={CONSUMER}").text, "by-consumer")
    assert one == {CONSUMER: (5, 1, 22)}
    other = _totals(client.get("/gateway/usage?resource=other_resource").text, "by-target")
    assert other == {"other_resource": (1, 0, 7)}
    # a period the page does not offer is its default month, not an error
    assert _totals(client.get("/gateway/usage?days=abc").text, "by-consumer") == by_consumer


def test_usage_is_scoped_to_what_the_user_may_see(client: TestClient, calls: World) -> None:
    login(client, "dsj_officer")  # a department neither calling nor providing
    page = client.get("/gateway/usage")
    assert page.status_code == 200
    assert 'data-testid="no-usage"' in page.text
    assert 'data-testid="by-consumer"' not in page.text
    assert CONSUMER not in page.text

    login(client, "wjw_officer")  # the health commission: its own system's calls
    assert set(_totals(client.get("/gateway/usage").text, "by-consumer")) == {CONSUMER}


def test_the_access_log_shows_patterns_worth_a_look(client: TestClient, province: World) -> None:
    # 01:00–03:00 Beijing time yesterday: 25 calls in the night
    zone = ZoneInfo(get_settings().gateway.timezone)
    night = (clock.now().astimezone(zone) - timedelta(days=1)).replace(
        hour=1, minute=0, second=0, microsecond=0
    )
    with province.database.transaction() as session:
        for number in range(25):
            _entry(session, night + timedelta(minutes=5 * number), purpose="夜间")
    with province.database.session() as session:
        raised = oversight.flags(session, actor=province.actor("auditor"), days=14).data
    off_hours = [flag for flag in raised if flag.kind == "off_hours"]
    assert len(off_hours) == 1
    login(client, "auditor")

    flags = section(client.get("/audit/access-log").text, "flags")
    row = flags[flags.index('data-kind="off_hours"') :]
    assert f'data-consumer="{CONSUMER}" data-day="{off_hours[0].day}"' in row
    assert off_hours[0].title in row
    assert off_hours[0].explanation in row
    assert '<td class="num">25</td>' in row
    link = re.search(r'href="([^"]*)" data-testid="flag-log-1"', row)
    assert link and unescape(link.group(1)) == f"/audit/access-log?consumer={CONSUMER}"
    assert 'data-testid="no-flags"' not in client.get("/audit/access-log").text

    english = section(client.get("/audit/access-log?lang=en").text, "flags")
    assert off_hours[0].explanation in english


def test_an_access_log_without_patterns_says_so(client: TestClient, calls: World) -> None:
    login(client, "auditor")
    page = client.get("/audit/access-log?lang=en").text
    assert "Nothing worth a look in the last 14 days." in section(page, "no-flags")


# who sees what, and forms from elsewhere ------------------------------------------------------


def test_the_navigation_shows_the_gateway_to_its_users(client: TestClient, province: World) -> None:
    for username, gateway, log in (
        ("gat_officer", True, False),
        ("gat_admin", True, False),
        ("auditor", False, True),
        ("admin", True, True),
        ("viewer", False, False),
    ):
        login(client, username)
        nav = client.get("/").text
        assert ('href="/gateway/applications"' in nav) is gateway, username
        assert ('href="/audit/access-log"' in nav) is log, username


def test_a_viewer_has_no_gateway_pages(client: TestClient, province: World) -> None:
    grant_id = granted(province)
    application_id = applied(province)
    login(client, "viewer")
    for path in (
        "/gateway/applications",
        "/gateway/grants",
        "/gateway/consumers",
        "/audit/access-log",
        f"/gateway/applications/{application_id}",
        f"/gateway/grants/{grant_id}",
        f"/gateway/consumers/{CONSUMER}",
        APPLY,
    ):
        response = client.get(path)
        assert response.status_code in (403, 404), path
        assert 'data-testid="error"' in response.text, path


def test_gateway_posts_need_the_csrf_token(client: TestClient, province: World) -> None:
    grant_id = granted(province)
    pending = applied(province)
    with province.database.transaction() as session:
        credential, _secret = service.issue_credential(session, actor=SYSTEM, consumer=CONSUMER)
        key = credential.access_key
    login(client, "admin")  # may do all of it, given the form's token

    for path, data in (
        (APPLY, application_form("")),
        (f"/gateway/applications/{pending}/approve", {}),
        (f"/gateway/applications/{pending}/reject", {"comment": "不符"}),
        (f"/gateway/grants/{grant_id}/suspend", {"comment": "暂停"}),
        ("/gateway/consumers", {"code": "zj_new_app", "name": "新系统", "department": "zj_wjw"}),
        (f"/gateway/consumers/{CONSUMER}/credentials", {}),
        (f"/gateway/consumers/{CONSUMER}/credentials/{key}/rotate", {}),
        (f"/gateway/consumers/{CONSUMER}/credentials/{key}/revoke", {}),
        (f"/gateway/consumers/{CONSUMER}/disable", {}),
    ):
        response = client.post(path, data=data, follow_redirects=False)
        assert response.status_code == 403, path
        assert 'data-testid="error"' in response.text, path

    assert count(province, Consumer) == 1
    assert count(province, Credential) == 2  # the fixture's and this test's
    assert state_of(province, Grant, grant_id) == "active"
    with province.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Application)) == 2
