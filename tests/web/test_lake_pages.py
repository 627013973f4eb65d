"""The cockpit's full-aggregation pages: a resource's data tab, uploads, scheduled sources,
and the aggregation-health page, driven over HTTP as a browser without JavaScript does."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from shuzhi.catalog import service as catalog
from shuzhi.catalog.schemas import ResourceCreate
from shuzhi.core.permissions import SYSTEM
from shuzhi.core.settings import get_settings, load_settings, reset_settings
from shuzhi.core.standards import citizen_id_check
from shuzhi.lake import service as lake
from shuzhi.lake.models import Batch
from shuzhi.lake.schemas import SourceCreate
from shuzhi.server import create_app
from tests.conftest import RESOURCE, World, resource_doc
from tests.web.support import csrf_of, flashed, login

CODE = RESOURCE["code"]
DATA = f"/catalog/{CODE}/data"
UPLOAD = f"{DATA}/upload"
HEADERS = ["公民身份号码", "姓名", "行政区划代码", "登记日期", "联系方式"]


def citizen_id(first17: str) -> str:
    return first17 + citizen_id_check(first17)


GOOD_IDS = [citizen_id(f"33010619850101{n:03d}") for n in range(1, 6)]
BAD_ID = "33010619850101999" + ("1" if citizen_id_check("33010619850101999") != "1" else "2")
MOBILES = [f"1380000{n:04d}" for n in range(1, 6)]


def rows() -> list[list[str]]:
    """Five good rows, one repeated exactly, one with a bad ID and one missing its name."""
    good = [
        [cid, f"张{n}", "330106", f"2024-01-0{n}", MOBILES[n - 1]]
        for n, cid in enumerate(GOOD_IDS, start=1)
    ]
    return [
        *good,
        good[0],
        [BAD_ID, "李四", "330106", "2024-02-01", "13900000001"],
        [citizen_id("33010619900101123"), "", "330106", "2024-02-02", "13900000002"],
    ]


def as_csv(header: list[str], body: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(body)
    return out.getvalue().encode("utf-8")


def publish(world: World, state: str = "published") -> None:
    """The conftest's population resource, with a contact column not declared personal."""
    fields = [*RESOURCE["fields"], {"name": "contact", "title": "联系方式", "type": "string"}]
    data = ResourceCreate.model_validate(resource_doc(fields=fields))
    with world.database.transaction() as session:
        catalog.create(session, actor=SYSTEM, data=data)
        for name in {"draft": [], "published": ["submit", "approve"]}[state]:
            catalog.transition(session, actor=SYSTEM, code=CODE, name=name)


def upload(
    client: TestClient, content: bytes, *, filename: str = "population.csv", **form: str
) -> str:
    """Post the data tab's upload form; returns the data tab it goes back to."""
    csrf = csrf_of(client.get(DATA).text)
    response = client.post(
        UPLOAD,
        data={"csrf": csrf, "mode": "full", **form},
        files={"file": (filename, content, "text/csv")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == DATA
    return client.get(DATA).text


def batch_count(world: World) -> int:
    with world.database.session() as session:
        return session.scalar(select(func.count()).select_from(Batch)) or 0


def section(html: str, testid: str) -> str:
    """The element carrying this data-testid, up to its end tag (tables, mostly)."""
    match = re.search(rf'<(\w+)[^>]*data-testid="{testid}"', html)
    assert match, f"no {testid} on the page"
    end = html.index(f"</{match.group(1)}>", match.end())
    return unescape(html[match.start() : end])


@pytest.fixture
def loaded(client: TestClient, sqlite_world: World) -> Iterator[str]:
    """The resource published and one upload made by its data officer; yields its message."""
    publish(sqlite_world)
    login(client, "gat_officer")
    yield flashed(upload(client, as_csv(HEADERS, rows()))) or ""


# the data tab ---------------------------------------------------------------------------


def test_the_data_tab_is_for_those_who_may_read_the_data(
    client: TestClient, sqlite_world: World
) -> None:
    publish(sqlite_world)
    assert client.get(DATA, follow_redirects=False).status_code == 303  # to the login

    for username in ("gat_officer", "gat_admin", "auditor", "admin"):
        login(client, username)
        page = client.get(DATA)
        assert page.status_code == 200, username
        assert 'data-testid="schema"' in page.text
        assert 'data-testid="no-sample"' in page.text  # nothing loaded yet
        assert f'href="{DATA}"' in client.get(f"/catalog/{CODE}").text  # the tab

    for username in ("wjw_officer", "viewer"):
        login(client, username)
        page = client.get(DATA)
        assert page.status_code == 403, username
        assert 'data-testid="error"' in page.text
        detail = client.get(f"/catalog/{CODE}")
        assert detail.status_code == 200
        assert f'href="{DATA}"' not in detail.text  # no tab to a page that refuses


def test_a_draft_of_another_department_is_not_found(
    client: TestClient, sqlite_world: World
) -> None:
    publish(sqlite_world, "draft")
    login(client, "wjw_officer")
    assert client.get(DATA).status_code == 404
    assert client.get(f"/catalog/{CODE}/quarantine.csv").status_code == 404


def test_only_those_who_may_load_see_the_upload_form(
    client: TestClient, sqlite_world: World
) -> None:
    publish(sqlite_world)
    login(client, "auditor")
    assert 'data-testid="upload-form"' not in client.get(DATA).text
    login(client, "gat_officer")
    assert 'data-testid="upload-form"' in client.get(DATA).text


def test_the_schema_shows_types_personal_data_and_formats(
    client: TestClient, sqlite_world: World
) -> None:
    publish(sqlite_world)
    login(client, "gat_officer")
    schema = section(client.get(DATA).text, "schema")
    assert "公民身份号码" in schema  # the title, and the id_card field's implied format
    assert "身份证号" in schema  # PII kind label
    assert "日期" in schema


# uploading ----------------------------------------------------------------------------


def test_an_upload_is_validated_quarantined_and_shown(
    client: TestClient, sqlite_world: World, loaded: str
) -> None:
    assert loaded == "批次 1：读取 8 行，入库 5 行，隔离 2 行，重复 1 行。"
    page = client.get(DATA).text
    assert re.search(r'data-testid="rows">5<', page)

    sample = section(page, "sample")
    for cid in GOOD_IDS:
        assert cid not in sample  # IDs and names are masked in the sample
        assert cid[:6] + "*" * 8 + cid[-4:] in sample  # the issuing region and last four
    assert "张1" not in sample
    assert "330106" in sample  # what is not personal is shown as it is

    batches = section(page, "batches")
    assert "成功" in batches and "gat_officer" in batches

    quarantine = section(page, "quarantine")
    assert "身份证号无效" in quarantine  # the rule's label, not its code
    assert "必填为空" in quarantine
    assert BAD_ID in quarantine  # the refused value, for the provider to correct
    assert re.search(r'data-testid="quarantine-count">2<', page)

    quality = section(page, "quality")
    assert "#1" in quality and "100.0%" in quality  # uniqueness after dropping the repeat
    assert 'id="quality-chart"' in page


def test_the_quarantine_filters_by_rule(
    client: TestClient, sqlite_world: World, loaded: str
) -> None:
    page = client.get(DATA, params={"rule": "required"}).text
    quarantine = section(page, "quarantine")
    assert "必填为空" in quarantine
    assert BAD_ID not in quarantine
    assert re.search(r'data-testid="quarantine-count">1<', page)
    assert 'value="citizen_id"' in section(page, "quarantine-rule")  # rules with counts


def test_the_quarantine_downloads_as_csv(
    client: TestClient, sqlite_world: World, loaded: str
) -> None:
    page = client.get(DATA).text
    link = re.search(r'href="([^"]*quarantine\.csv[^"]*)"', page)
    assert link
    response = client.get(unescape(link.group(1)))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f"{CODE}-quarantine.csv" in response.headers["content-disposition"]
    text = response.content.decode("utf-8-sig")
    records = list(csv.reader(io.StringIO(text)))
    assert records[0][:3] == ["行号 row", "规则 rule", "字段 field"]
    assert "公民身份号码" in records[0]  # the source's own headers, ready to correct and resend
    assert len(records) == 3
    assert any(BAD_ID in record for record in records)

    login(client, "viewer")
    assert client.get(f"/catalog/{CODE}/quarantine.csv").status_code == 403


def test_a_personal_data_flag_is_marked_reviewed(
    client: TestClient, sqlite_world: World, loaded: str
) -> None:
    page = client.get(DATA).text
    flags = section(page, "pii-flags")
    assert "contact" in flags and "电话号码" in flags
    assert "13800000001" not in flags  # the example is masked
    # the batch that found it says so in its row
    assert re.findall(r'data-testid="batch-pii">([^<]*)<', page) == ["疑似个人信息: contact"]
    response = client.post(
        f"/catalog/{CODE}/pii/contact/review",
        data={"csrf": csrf_of(page)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = client.get(DATA).text
    assert flashed(page) == "已标记为已复核。"
    assert 'data-testid="review-contact"' not in page
    assert "✔ gat_officer" in section(page, "pii-flags")


def test_a_file_that_fits_no_field_loads_nothing_and_says_why_in_one_line(
    client: TestClient, sqlite_world: World
) -> None:
    publish(sqlite_world)
    login(client, "gat_officer")
    page = upload(client, as_csv(["foo", "bar"], [["1", "2"]]))
    message = flashed(page)
    assert message is not None and "foo" in message
    assert "\n" not in message and "Traceback" not in message
    assert 'class="flash err"' in page
    assert re.search(r'data-testid="snapshot">—<', page)
    assert 'data-testid="no-sample"' in page
    assert "失败" in section(page, "batches")  # the batch is recorded as failed
    assert not list((get_settings().lake_dir / CODE).glob("snapshots/*/data.parquet"))


def test_a_mapping_from_the_form_loads_other_headers(
    client: TestClient, sqlite_world: World
) -> None:
    publish(sqlite_world)
    login(client, "gat_officer")
    header = ["身份证", "名字", "区划", "日期", "电话"]
    mapping = "身份证=id_card\r\n名字=full_name\n区划=region_code\n日期=registered_on\n电话=contact"
    page = upload(client, as_csv(header, rows()[:5]), map=mapping)
    assert flashed(page) == "批次 1：读取 5 行，入库 5 行，隔离 0 行，重复 0 行。"
    page = upload(client, as_csv(header, rows()[:5]), map="身份证 id_card")
    assert flashed(page) == "列映射“身份证 id_card”：请写成“源列=信息项”。"
    page = upload(client, as_csv(header, rows()[:5]), map=mapping, mode="sometimes")
    assert flashed(page) == "请选择全量或增量。"
    assert batch_count(sqlite_world) == 1


def test_the_same_file_again_is_recorded_as_unchanged(
    client: TestClient, sqlite_world: World, loaded: str
) -> None:
    page = upload(client, as_csv(HEADERS, rows()))
    assert flashed(page) == "批次 2：与当前快照数据相同，未重写。"
    assert "未变化" in section(page, "batches")


def test_an_upload_without_the_form_token_is_refused(
    client: TestClient, sqlite_world: World
) -> None:
    publish(sqlite_world)
    login(client, "gat_officer")
    response = client.post(
        UPLOAD, data={"mode": "full"}, files={"file": ("p.csv", as_csv(HEADERS, rows()))}
    )
    assert response.status_code == 403
    assert batch_count(sqlite_world) == 0


def test_an_upload_by_someone_who_may_only_read_is_refused(
    client: TestClient, sqlite_world: World
) -> None:
    publish(sqlite_world)
    login(client, "auditor")
    csrf = csrf_of(client.get(DATA).text)
    response = client.post(
        UPLOAD, data={"csrf": csrf}, files={"file": ("p.csv", as_csv(HEADERS, rows()))}
    )
    assert response.status_code == 403
    assert batch_count(sqlite_world) == 0


def test_an_upload_without_a_file_asks_for_one(client: TestClient, sqlite_world: World) -> None:
    publish(sqlite_world)
    login(client, "gat_officer")
    csrf = csrf_of(client.get(DATA).text)
    response = client.post(UPLOAD, data={"csrf": csrf, "mode": "full"})
    assert flashed(response.text) == "请选择要上传的文件。"
    assert batch_count(sqlite_world) == 0


def test_an_upload_over_the_limit_is_refused_whole(
    sqlite_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_LAKE__UPLOAD_MAX_MB", "1")
    reset_settings()
    publish(sqlite_world)
    app = create_app(database=sqlite_world.database, settings=load_settings())
    with TestClient(app) as client:
        login(client, "gat_officer")
        big = as_csv(HEADERS, rows()) + b"x" * (2**20 + 1)
        page = upload(client, big, filename="big.csv")
    assert flashed(page) == "big.csv 超过了 1 MiB 的上传上限"
    assert batch_count(sqlite_world) == 0

    # far over: refused from its announced length, on a page in the reader's language
    with TestClient(app) as client:
        login(client, "gat_officer")
        csrf = csrf_of(client.get(DATA).text)
        response = client.post(
            UPLOAD,
            data={"csrf": csrf, "mode": "full"},
            files={"file": ("huge.csv", as_csv(HEADERS, rows()) + b"x" * (3 * 2**20))},
        )
    assert response.status_code == 413
    assert "请求超过了上传上限 1 MiB" in response.text
    assert batch_count(sqlite_world) == 0


# scheduled sources ----------------------------------------------------------------------


def test_a_source_shows_its_next_and_last_run_and_runs_now(
    client: TestClient, sqlite_world: World
) -> None:
    publish(sqlite_world)
    inbox = get_settings().inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "population.csv").write_bytes(as_csv(HEADERS, rows()))
    with sqlite_world.database.transaction() as session:
        source = lake.register_source(
            session,
            actor=SYSTEM,
            code=CODE,
            data=SourceCreate(name="人口库每日导出", location=str(inbox / "population.csv")),
        )
        source_id = source.id
    login(client, "gat_officer")
    page = client.get(DATA).text
    sources = section(page, "sources")
    assert "人口库每日导出" in sources
    assert re.search(r'data-testid="next-run"><time datetime="[^"]+">\d{4}-', page)
    assert re.search(r'data-testid="last-run"><span class="muted">—', page)

    response = client.post(
        f"/catalog/{CODE}/sources/{source_id}/run",
        data={"csrf": csrf_of(page)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = client.get(DATA).text
    assert flashed(page) == "批次 1：读取 8 行，入库 5 行，隔离 2 行，重复 1 行。"
    assert re.search(r'data-testid="last-run"><time datetime="[^"]+">[^<]+</time> · #1', page)
    assert "人口库每日导出" in client.get("/aggregation").text  # listed there too

    login(client, "auditor")  # may read the data, not pull it
    page = client.get(DATA).text
    assert f'data-testid="run-{source_id}"' not in page
    response = client.post(f"/catalog/{CODE}/sources/{source_id}/run", data={"csrf": csrf_of(page)})
    assert response.status_code == 403


# aggregation health ----------------------------------------------------------------------


def test_aggregation_health_is_for_every_signed_in_user(
    client: TestClient, sqlite_world: World
) -> None:
    publish(sqlite_world)
    assert client.get("/aggregation", follow_redirects=False).status_code == 303
    login(client, "viewer")
    page = client.get("/aggregation")
    assert page.status_code == 200
    assert 'href="/aggregation"' in page.text  # in the navigation
    assert re.search(r'data-testid="published">1<', page.text)
    assert re.search(r'data-testid="current">0<', page.text)
    assert re.search(r'data-testid="lights-no_data">1<', page.text)
    assert f'href="/catalog/{CODE}"' in section(page.text, "resources")  # not its data tab


def test_aggregation_health_after_a_batch_matches_the_api(
    client: TestClient, sqlite_world: World, loaded: str
) -> None:
    login(client, "viewer")
    page = client.get("/aggregation").text
    api = client.get(
        "/api/v1/lake/quality",
        headers={"Authorization": f"Bearer {sqlite_world.tokens['viewer']}"},
    ).json()
    overall = api["overall"]
    assert re.search(rf'data-testid="published">{overall["published"]}<', page)
    assert re.search(rf'data-testid="current">{overall["current"]}<', page)
    assert re.search(r'data-testid="coverage-rate">100\.0%<', page)
    light = api["resources"][0]["light"]
    assert re.search(rf'data-testid="lights-{light}">1<', page)
    assert "浙江省公安厅" in section(page, "by-provider")
    assert "数字社会" in section(page, "by-system")
    assert "contact" in section(page, "pii-flags")  # not yet reviewed
    trend = section(page, "trend")
    assert "100.0%" in trend
    assert 'id="coverage-chart"' in page

    login(client, "gat_officer")  # who may read the data gets a link to the data tab
    assert f'href="{DATA}"' in section(client.get("/aggregation").text, "resources")


def test_aggregation_health_filters_by_provider_and_light(
    client: TestClient, sqlite_world: World, loaded: str
) -> None:
    login(client, "viewer")
    light = re.search(r'data-light="(\w+)"', section(client.get("/aggregation").text, "resources"))
    assert light
    shown = client.get("/aggregation", params={"light": light.group(1)}).text
    assert CODE in section(shown, "resources")
    other = "red" if light.group(1) != "red" else "green"
    assert 'data-testid="resources"' not in client.get("/aggregation", params={"light": other}).text

    by_gat = client.get("/aggregation", params={"provider": "zj_gat"}).text
    assert re.search(r'data-testid="published">1<', by_gat)
    by_wjw = client.get("/aggregation", params={"provider": "zj_wjw"}).text
    assert re.search(r'data-testid="published">0<', by_wjw)
    assert client.get("/aggregation", params={"provider": "nobody"}).status_code == 404
    assert client.get("/aggregation", params={"light": "<b>"}).status_code == 200


def test_the_pages_speak_english_on_request(
    client: TestClient, sqlite_world: World, loaded: str
) -> None:
    page = client.get(DATA, params={"lang": "en"}).text
    assert "invalid citizen ID" in section(page, "quarantine")
    assert "Aggregation health" in client.get("/aggregation").text
