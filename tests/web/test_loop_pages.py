"""The problem lists' cockpit pages over HTTP, as a browser without JavaScript reads them:
the table with its filters, statistics and paging, the kanban, a problem's page with its
transitions, evidence and linked warning, reporting, Excel export and import, and the
warning's page showing the problem it raised.

The province is tests/loop/conftest.py's ``watched`` one, evaluated on 10 May 2025: only
拱墅区 (330105) has its on-time rate under 95% in April (5 cases, none on time), so one
warning fires and raises one problem, assigned to 杭州市卫生健康委员会 (hz_wjw, the owner
zj_wjw's counterpart for 杭州). The reform office reports two more: an inspection finding
in 宁波 not yet assigned, and a major audit finding for 杭州 long past its deadline.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from shuzhi.brain import service as brain
from shuzhi.brain.models import EarlyWarning
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM
from shuzhi.loop import excel, service
from shuzhi.loop.models import Problem
from shuzhi.loop.schemas import ProblemCreate
from shuzhi.server import create_app
from tests.brain.conftest import brain_template, brain_world  # noqa: F401
from tests.brain.data import GONGSHU
from tests.conftest import World
from tests.loop.conftest import loop_db, loop_world, watched  # noqa: F401
from tests.web.support import csrf_of, flashed, login

ROW = re.compile(r'<tr data-id="(\d+)" data-code="([^"]+)"')
INSPECTION_TITLE = "宁波市政务服务事项办理材料重复提交"
AUDIT_TITLE = "杭州市专项资金闲置"
EVIDENCE = "已完成整改，附整改报告".encode()


@dataclass
class Site:
    world: World
    warned: int  # the problem the warning raised
    inspection: int  # reported, not assigned
    audit: int  # assigned, overdue
    warning_id: int

    @property
    def db(self) -> Database:
        return self.world.database


def _report(world: World, **fields: Any) -> int:
    with world.database.transaction() as session:
        actor = world.actors["reform"]
        return service.report(session, actor=actor, data=ProblemCreate(**fields)).id


@pytest.fixture
def site(loop_world: World, watched: Database) -> Site:  # noqa: F811
    brain.evaluate_warnings(watched, actor=SYSTEM, today=date(2025, 5, 10))
    with watched.session() as session:
        warned = session.scalars(select(Problem)).one()
        warning = session.scalars(select(EarlyWarning).where(EarlyWarning.state == "firing")).one()
        assert warned.warning_id == warning.id and warned.region_code == GONGSHU
        warned_id, warning_id = warned.id, warning.id
    inspection = _report(
        loop_world,
        title=INSPECTION_TITLE,
        channel="inspection",
        system="digital_government",
        region="330200",
    )
    audit = _report(
        loop_world,
        title=AUDIT_TITLE,
        channel="audit",
        system="digital_society",
        region="330100",
        severity="major",
        department="zj_wjw",
        deadline=date(2025, 1, 10),
    )
    return Site(loop_world, warned_id, inspection, audit, warning_id)


@pytest.fixture
def open_client(site: Site) -> Iterator[Callable[[str], TestClient]]:
    """A cockpit client logged in as the given user; one each, so each keeps its cookie."""
    opened: list[TestClient] = []

    def _open(username: str) -> TestClient:
        client = TestClient(create_app(database=site.db))
        client.__enter__()
        opened.append(client)
        login(client, username)
        return client

    yield _open
    for client in opened:
        client.__exit__(None, None, None)


def rows(html: str) -> list[int]:
    return [int(found.group(1)) for found in ROW.finditer(html)]


def text_of(html: str, name: str) -> str:
    match = re.search(rf'data-testid="{re.escape(name)}"[^>]*>(.*?)<', html, re.S)
    assert match, f"no {name} on the page"
    return unescape(match.group(1)).strip()


def state_of(db: Database, problem_id: int) -> str:
    with db.session() as session:
        problem = session.get(Problem, problem_id)
        assert problem is not None
        return problem.state


def post(client: TestClient, page: str, action: str, data: dict[str, Any], **extra: Any) -> Any:
    """Post a form of ``page`` (its CSRF token included) and follow the redirect."""
    csrf = csrf_of(client.get(page).text)
    return client.post(action, data={"csrf": csrf, **data}, **extra)


def fire(client: TestClient, problem_id: int, transition: str, **data: Any) -> Any:
    page = f"/problems/{problem_id}"
    return post(client, page, f"{page}/transitions", {"transition": transition, **data})


# -- the table ------------------------------------------------------------------------------


def test_the_table_shows_every_problem_with_its_light_and_the_statistics(
    site: Site, open_client: Callable[[str], TestClient]
) -> None:
    client = open_client("viewer")
    page = client.get("/problems")
    assert page.status_code == 200
    html = page.text
    assert sorted(rows(html)) == sorted([site.warned, site.inspection, site.audit])
    assert text_of(html, "count") == "3"
    assert '<a href="/problems" class="active">问题清单</a>' in html  # the navigation
    # the state chips count among the other filters
    assert text_of(html, "count-all") == "3"
    assert text_of(html, "count-reported") == "1"
    assert text_of(html, "count-assigned") == "2"
    assert text_of(html, "count-closed") == "0"
    # the audit finding is past its deadline: red, and its working days late in red
    audit = re.search(rf'<tr data-id="{site.audit}".*?</tr>', html, re.S)
    assert audit and 'data-light="red"' in audit.group(0)
    assert f'data-testid="overdue-{site.audit}"' in audit.group(0)
    assert "逾期" in audit.group(0)
    warned = re.search(rf'<tr data-id="{site.warned}".*?</tr>', html, re.S)
    assert warned and 'data-light="yellow"' in warned.group(0)  # open: never green
    assert f'href="/brain/warnings/{site.warning_id}"' in warned.group(0)
    assert "overdue-" not in warned.group(0)
    # the strip: the statistics' total over the same filters
    assert text_of(html, "strip-total") == "3"
    assert text_of(html, "strip-open") == "3"
    assert text_of(html, "strip-overdue") == "1"
    assert text_of(html, "strip-closure") == "0.0%"
    assert re.search(r'data-testid="strip-on-time">\s*<span class="muted">—', html)
    # by department unless told: the three responsible departments and the total
    assert 'data-by="department"' in html
    keys = re.findall(r'<tr data-key="([^"]+)"', html)
    assert sorted(keys) == sorted(["hz_wjw", "zj_wjw", "-", "*"])
    # every user may export; only the reform office reports and imports
    assert 'href="/problems/export.xlsx"' in html
    assert "report-link" not in html and "import-form" not in html


def test_the_filters_narrow_the_table(site: Site, open_client: Callable[[str], TestClient]) -> None:
    client = open_client("viewer")

    def listed(**params: Any) -> list[int]:
        page = client.get("/problems", params=params)
        assert page.status_code == 200, page.text
        return sorted(rows(page.text))

    everything = sorted([site.warned, site.inspection, site.audit])
    assert listed(channel="warning") == [site.warned]
    assert listed(light="red") == [site.audit]
    assert listed(light="yellow") == sorted([site.warned, site.inspection])
    assert listed(state="reported") == [site.inspection]
    assert listed(state=["reported", "assigned"]) == everything
    assert listed(region="330100") == sorted([site.warned, site.audit])  # 拱墅 is in 杭州
    assert listed(department="hz_wjw") == [site.warned]
    assert listed(severity="major") == [site.audit]
    assert listed(system="digital_government") == [site.inspection]
    assert listed(q="重复提交") == [site.inspection]
    assert listed(warning="1") == [site.warned]
    assert listed(warning="0") == sorted([site.inspection, site.audit])
    assert listed(channel="warning", region="330200") == []
    # a select's value that is not one of its choices (hand-edited) is ignored
    assert listed(channel="bogus", light="purple", state="nonsense") == everything
    # the chips count among the other filters, whatever state is chosen
    page = client.get("/problems", params={"channel": "warning", "state": "reported"}).text
    assert text_of(page, "count-all") == "1" and text_of(page, "count-assigned") == "1"
    assert 'data-testid="no-problems"' in page
    assert 'href="/problems?state=assigned&amp;channel=warning"' in page
    # an unknown region or department is the query's refusal, not an empty list
    assert client.get("/problems", params={"region": "999999"}).status_code == 422
    assert client.get("/problems", params={"department": "nobody"}).status_code == 422


def test_sorting_statistics_by_dimension_and_paging(
    site: Site, open_client: Callable[[str], TestClient]
) -> None:
    client = open_client("viewer")
    by_deadline = rows(client.get("/problems", params={"sort": "deadline"}).text)
    assert by_deadline.index(site.audit) < by_deadline.index(site.warned)
    latest_first = rows(client.get("/problems", params={"sort": "-deadline"}).text)
    assert latest_first.index(site.warned) < latest_first.index(site.audit)
    newest = rows(client.get("/problems").text)
    assert newest[0] == site.audit and newest[-1] == site.warned
    oldest = rows(client.get("/problems", params={"sort": "reported"}).text)
    assert oldest == list(reversed(newest))

    page = client.get("/problems", params={"by": "channel"}).text
    assert 'data-by="channel"' in page
    assert sorted(re.findall(r'<tr data-key="([^"]+)"', page)) == sorted(
        ["warning", "inspection", "audit", "*"]
    )
    page = client.get("/problems", params={"by": "region", "channel": "warning"}).text
    assert re.findall(r'<tr data-key="([^"]+)"', page) == ["330100", "*"]  # 杭州 holds 拱墅
    assert 'data-by="department"' in client.get("/problems", params={"by": "bogus"}).text

    for number in range(48):  # 51 in all: two pages of 50
        _report(site.world, title=f"巡察问题{number:02d}", channel="patrol",
                system="grassroots", region="330102")  # fmt: skip
    first = client.get("/problems").text
    assert len(rows(first)) == 50 and text_of(first, "count") == "51"
    assert 'data-testid="next"' in first and 'href="/problems?page=2"' in first
    second = client.get("/problems", params={"page": 2}).text
    assert rows(second) == [site.warned]  # the oldest
    assert "第 51–51 行，共 51 行。" in second
    # the pages keep the sort and the filters
    oldest_first = client.get("/problems", params={"sort": "reported"}).text
    assert 'href="/problems?sort=reported&amp;page=2"' in oldest_first
    last = client.get("/problems", params={"sort": "reported", "page": 2}).text
    assert re.findall(r'data-code="[^"]+"', last) and "巡察问题47" in last
    assert 'href="/problems?sort=reported&amp;page=1"' in last


# -- the kanban ---------------------------------------------------------------------------------


def test_the_board_has_a_column_per_state_with_its_count(
    site: Site, open_client: Callable[[str], TestClient]
) -> None:
    client = open_client("viewer")
    html = client.get("/problems/board").text
    columns = re.findall(r'data-testid="column-([a-z_]+)" data-state="\1" data-count="(\d+)"', html)
    assert columns == [
        ("reported", "1"),
        ("assigned", "2"),
        ("rectifying", "0"),
        ("closure_requested", "0"),
        ("verified", "0"),
        ("closed", "0"),
    ]
    assert "已交办" in html and "已销号" in html  # the machine's labels

    def cards(state: str, page: str) -> list[int]:
        column = re.search(rf'data-testid="column-{state}".*?</section>', page, re.S)
        assert column
        return [int(i) for i in re.findall(r'<article class="pcard" data-id="(\d+)"', column[0])]

    # nearest the deadline first: the overdue audit finding before the warning's problem
    assert cards("assigned", html) == [site.audit, site.warned]
    assert cards("reported", html) == [site.inspection]
    audit = re.search(rf'<article class="pcard" data-id="{site.audit}".*?</article>', html, re.S)
    assert audit and 'data-light="red"' in audit[0] and "浙江省卫生健康委员会" in audit[0]
    assert "2025-01-10" in audit[0]
    narrowed = client.get("/problems/board", params={"channel": "warning"}).text
    assert cards("assigned", narrowed) == [site.warned] and cards("reported", narrowed) == []
    assert 'data-testid="column-count-assigned">1<' in narrowed
    assert 'href="/problems/export.xlsx?channel=warning"' in narrowed


# -- a problem's page ---------------------------------------------------------------------------


def test_a_problems_page_shows_its_warning_timeline_and_no_action_to_a_reader(
    site: Site, open_client: Callable[[str], TestClient]
) -> None:
    client = open_client("viewer")
    html = client.get(f"/problems/{site.warned}").text
    assert "拱墅区" in text_of(html, "title")
    assert text_of(html, "channel") == "预警"
    assert 'data-state="assigned"' in html and 'data-light="yellow"' in html
    assert text_of(html, "department") == "杭州市卫生健康委员会"
    assert f'href="/brain/warnings/{site.warning_id}"' in html
    assert 'data-testid="warning-state"' in html and "预警中" in html
    assert "整改不完成，预警不变色" in text_of(html, "warning-blocks")
    assert f'href="/brain/indicators/on_time_rate?region={GONGSHU}"' in html
    assert re.search(r'<tr data-transition="assign" data-to="assigned">', html)
    assert 'data-testid="actions"' not in html and "evidence-form" not in html
    # without a warning there is no notice
    assert "warning-blocks" not in client.get(f"/problems/{site.audit}").text
    assert client.get("/problems/999999").status_code == 404


def test_a_transition_without_permission_is_refused_and_changes_nothing(
    site: Site, open_client: Callable[[str], TestClient]
) -> None:
    supervisor = open_client("supervisor")
    page = supervisor.get(f"/problems/{site.warned}").text
    assert "action-accept" not in page  # not offered...
    answer = fire(supervisor, site.warned, "accept")  # ...and refused when posted anyway
    assert answer.status_code == 200
    assert "无权对“问题 1”执行 loop.rectify" in (flashed(answer.text) or "")
    assert state_of(site.db, site.warned) == "assigned"
    assert len(re.findall(r"<tr data-transition=", answer.text)) == 1  # only the assignment
    viewer = open_client("viewer")
    answer = fire(viewer, site.audit, "close")
    assert "执行 loop.assign" in (flashed(answer.text) or "")
    assert state_of(site.db, site.audit) == "assigned"
    # a form without its token is refused before anything is read
    refused = viewer.post(f"/problems/{site.warned}/transitions", data={"transition": "accept"})
    assert refused.status_code == 403


def test_evidence_then_closure_requested_then_verification_refused_while_the_warning_fires(
    site: Site, open_client: Callable[[str], TestClient]
) -> None:
    officer = open_client("hz_wjw_officer")
    page = officer.get(f"/problems/{site.warned}").text
    assert 'data-testid="transition-accept"' in page
    answer = fire(officer, site.warned, "accept")
    assert flashed(answer.text) == "签收整改：已完成。"
    assert state_of(site.db, site.warned) == "rectifying"
    # asking for closure is shown with the rule that forbids it until there is evidence
    assert "申请销号须有佐证材料" in text_of(answer.text, "blocked-request_closure")
    refused = fire(officer, site.warned, "request_closure")
    assert "无法对问题 1 申请销号：申请销号须有佐证材料" in (flashed(refused.text) or "")
    assert state_of(site.db, site.warned) == "rectifying"

    empty = post(
        officer,
        f"/problems/{site.warned}",
        f"/problems/{site.warned}/evidence",
        {"note": "无文件"},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert flashed(empty.text) == "请选择文件。"
    uploaded = post(
        officer,
        f"/problems/{site.warned}",
        f"/problems/{site.warned}/evidence",
        {"note": "整改报告"},
        files={"file": ("整改报告.txt", EVIDENCE, "text/plain")},
    )
    assert flashed(uploaded.text) == "佐证材料 整改报告.txt 已上传。"
    digest = hashlib.sha256(EVIDENCE).hexdigest()
    found = re.search(r'<tr data-id="(\d+)" data-sha256="([0-9a-f]{64})">', uploaded.text)
    assert found and found.group(2) == digest and digest in uploaded.text
    evidence_id = int(found.group(1))
    download = officer.get(f"/problems/{site.warned}/evidence/{evidence_id}")
    assert download.status_code == 200 and download.content == EVIDENCE
    assert download.headers["content-disposition"].startswith("attachment")
    # evidence is read only through its own problem
    assert officer.get(f"/problems/{site.audit}/evidence/{evidence_id}").status_code == 404

    requested = fire(officer, site.warned, "request_closure", attachments=str(evidence_id))
    assert flashed(requested.text) == "申请销号：已完成。"
    assert state_of(site.db, site.warned) == "closure_requested"
    step = re.search(r'<tr data-transition="request_closure".*?</tr>', requested.text, re.S)
    assert step and f'href="/problems/{site.warned}/evidence/{evidence_id}"' in step[0]
    assert "整改报告.txt" in step[0]
    assert "evidence-form" in requested.text  # more evidence until it is verified

    supervisor = open_client("supervisor")
    page = supervisor.get(f"/problems/{site.warned}").text
    assert "整改不完成，预警不变色" in text_of(page, "warning-blocks")
    assert "仍处于“预警中”" in text_of(page, "blocked-verify")
    assert "evidence-form" not in page  # a verifier does not rectify
    refused = fire(supervisor, site.warned, "verify")
    message = flashed(refused.text) or ""
    assert f"其预警 {site.warning_id} 仍处于“预警中”" in message
    assert state_of(site.db, site.warned) == "closure_requested"


def test_the_reform_office_assigns_and_a_reassignment_needs_a_reason(
    site: Site, open_client: Callable[[str], TestClient]
) -> None:
    reform = open_client("reform")
    page = reform.get(f"/problems/{site.inspection}").text
    assert 'data-testid="department-assign"' in page
    answer = fire(reform, site.inspection, "assign", department="hz_wjw", deadline="2030-06-30")
    assert flashed(answer.text) == "交办：已完成。"
    assert text_of(answer.text, "department") == "杭州市卫生健康委员会"
    assert '<time datetime="2030-06-30">' in answer.text
    refused = fire(reform, site.inspection, "reassign", department="zj_wjw")
    assert "“改派”须填写理由" in (flashed(refused.text) or "")
    moved = fire(reform, site.inspection, "reassign", department="zj_wjw", comment="职责归省级")
    assert flashed(moved.text) == "改派：已完成。"
    assert text_of(moved.text, "department") == "浙江省卫生健康委员会"


def test_the_warnings_page_shows_the_problem_it_raised(
    site: Site, open_client: Callable[[str], TestClient]
) -> None:
    client = open_client("viewer")
    html = client.get(f"/brain/warnings/{site.warning_id}").text
    assert "生成的问题" in html
    assert f'href="/problems/{site.warned}"' in html
    table = re.search(r'data-testid="problems".*?</table>', html, re.S)
    assert table and f'<tr data-id="{site.warned}" data-state="assigned"' in table[0]
    others = client.get("/brain/warnings?state=all").text
    other = next(
        int(i) for i in re.findall(r'<tr data-id="(\d+)"', others) if int(i) != site.warning_id
    )
    assert 'data-testid="no-problems"' in client.get(f"/brain/warnings/{other}").text


# -- reporting, export and import ---------------------------------------------------------------


def test_reporting_a_problem_from_the_cockpit(
    site: Site, open_client: Callable[[str], TestClient]
) -> None:
    reform = open_client("reform")
    listing = reform.get("/problems").text
    assert 'href="/problems/new"' in listing and "import-form" in listing
    fields = {
        "title": "网络舆情反映办事难",
        "description": "群众在网上反映",
        "channel": "opinion",
        "system": "digital_government",
        "region": "330102",
        "severity": "serious",
        "department": "hz_wjw",
        "deadline": "2030-03-31",
    }
    made = post(reform, "/problems/new", "/problems", fields)
    assert made.status_code == 200
    message = flashed(made.text) or ""
    assert re.fullmatch(r"问题 WT-\d{4}-\d{5} 已上报。", message)
    assert text_of(made.text, "title").startswith("网络舆情反映办事难")
    assert 'data-state="assigned"' in made.text  # with a department: assigned at once
    # a refused report comes back as the form, with what was typed and the reason
    refused = post(reform, "/problems/new", "/problems", {**fields, "title": "", "deadline": ""})
    assert refused.status_code == 422
    assert "title" in text_of(refused.text, "error")
    assert "群众在网上反映" in refused.text
    unknown = post(reform, "/problems/new", "/problems", {**fields, "department": "nobody"})
    assert unknown.status_code == 404 and "nobody" in text_of(unknown.text, "error")
    viewer = open_client("viewer")
    assert viewer.get("/problems/new").status_code == 403


def test_export_follows_the_filters_and_import_names_the_bad_rows(
    site: Site, open_client: Callable[[str], TestClient]
) -> None:
    viewer = open_client("viewer")
    exported = viewer.get("/problems/export.xlsx", params={"channel": "warning"})
    assert exported.status_code == 200
    assert exported.headers["content-type"] == excel.XLSX_MEDIA_TYPE
    sheet = load_workbook(io.BytesIO(exported.content))[excel.PROBLEMS_SHEET]
    codes = [row[1] for row in sheet.iter_rows(min_row=2, values_only=True) if row[1]]
    with site.db.session() as session:
        warned = session.get(Problem, site.warned)
        assert warned is not None
        assert codes == [warned.code]

    book = Workbook()
    sheet = book.active
    sheet.title = excel.PROBLEMS_SHEET
    sheet.append(["问题标题", "问题来源", "所属系统", "行政区划代码", "整改期限"])
    sheet.append(["巡察发现台账不全", "巡察", "数字政府", "330100", date(2030, 1, 31)])
    sheet.append(["日期写错的问题", "审计", "数字政府", "330100", "明年"])
    data = io.BytesIO()
    book.save(data)
    upload = {"file": ("问题清单.xlsx", data.getvalue(), excel.XLSX_MEDIA_TYPE)}

    reform = open_client("reform")
    before = len(rows(reform.get("/problems").text))
    refused = post(reform, "/problems", "/problems/import", {}, files=upload)
    assert refused.status_code == 422
    assert text_of(refused.text, "imported") == "0"
    bad = re.findall(r'<tr class="bad" data-row="(\d+)" data-column="([^"]+)"', refused.text)
    assert bad == [("3", "整改期限")]
    assert "nothing-imported" in refused.text
    assert len(rows(reform.get("/problems").text)) == before
    good = post(reform, "/problems", "/problems/import", {"good_only": "1"}, files=upload)
    assert good.status_code == 200
    assert text_of(good.text, "imported") == "1" and text_of(good.text, "created") == "1"
    assert len(rows(reform.get("/problems").text)) == before + 1
    viewer_refused = post(viewer, "/problems", "/problems/import", {}, files=upload)
    assert viewer_refused.status_code == 403
