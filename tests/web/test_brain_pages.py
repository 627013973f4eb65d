"""The brain's cockpit pages over HTTP, as a browser without JavaScript reads them: the
indicator catalogue, an indicator in one region (history against target, forecast band,
drill-down, warnings), the warnings list and one warning's story, each the payload of its
API twin, over the small province of tests/brain/data.py.

Numbers worked out by hand from that province (330102 上城 and 330105 拱墅 in 330100 杭州,
330203 海曙 in 330200 宁波; places and population are stocks, so a quarter takes its last
month):

- places_per_1000, 杭州 2025-Q1: (5 + 10) / (1100 + 2000) × 1000 = 4.84; 2025-Q2 (April
  only): (6 + 10) / 3100 × 1000 = 5.16; 上城 in Q2: 6 / 1100 × 1000 = 5.45, 拱墅 10 / 2000
  × 1000 = 5.00. The province in April: 海曙's population is missing, so its places count
  in neither part: (6 + 10) / 3100 × 1000 = 5.16.
- on_time_low (on_time_rate below 95, fired after two bad months): 上城 90, 90, 90, 100 is
  pending in January, firing in February, recovering in April; 拱墅 100, 80, 100, 0 is
  pending again in April. population_stale fires for 海曙 (April missing) and for each
  county of the 90 that never reported.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from datetime import date
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from fastapi.testclient import TestClient
from openpyxl import Workbook

from shuzhi.brain import queries, service
from shuzhi.brain.schemas import TargetSet
from shuzhi.core.db import Database
from shuzhi.core.errors import ValidationFailed
from shuzhi.core.permissions import SYSTEM
from shuzhi.server import create_app
from tests.api.support import assert_problem, auth
from tests.brain.conftest import brain_template, brain_world  # noqa: F401
from tests.brain.data import GONGSHU, HAISHU, HANGZHOU, NINGBO, PROVINCE, SHANGCHENG, write
from tests.brain.test_goals import GOALS
from tests.conftest import World, add_user, resource_doc
from tests.lake.data import ingest, publish
from tests.web.support import csrf_of, flashed, login

COUNTIES = 90  # county-level units of the Zhejiang tree
RULES = """
rules:
  - {code: on_time_low, name: 按期办结率低于95%, kind: threshold, indicators: [on_time_rate],
     value: 95, pending_for: 2, severity: high}
  - {code: population_stale, name: 常住人口未报送, kind: stale, indicators: [population]}
"""
LONG = "test_web_long_monthly"


@pytest.fixture
def site(brain_world: World) -> World:  # noqa: F811
    """The small province computed, with a target for places per 1,000 people across the
    province (4.5 a year, which a month or quarter of a stock is held to), the rules of
    tests/brain/test_warnings.py's whole evaluation, and warnings evaluated on 10 May 2025."""
    db = brain_world.database
    service.compute(db, actor=SYSTEM)
    with db.transaction() as session:
        service.set_targets(
            session,
            actor=SYSTEM,
            entries=[
                TargetSet(
                    indicator="places_per_1000",
                    value=4.5,
                    grain="year",
                    periods=["2025"],
                    subtree=PROVINCE,
                )
            ],
        )
        service.apply_rules(session, actor=SYSTEM, text=RULES, source="rules.yaml")
    service.evaluate_warnings(db, actor=SYSTEM, today=date(2025, 5, 10))
    return brain_world


@pytest.fixture
def long_series(brain_world: World, tmp_path: Path) -> Database:  # noqa: F811
    """36 months of a smooth seasonal series in 上城 (2022-05 to 2025-04): long enough to
    forecast, with the small province's four months beside it."""
    db = brain_world.database
    fields = [
        {"name": "region_code", "title": "区划", "type": "string", "primary_key": True},
        {"name": "month", "title": "月份", "type": "date", "primary_key": True},
        {"name": "value", "title": "数值", "type": "decimal", "nullable": False},
    ]
    publish(db, resource_doc(code=LONG, name="长序列测试资源", fields=fields))
    rows = []
    for index in range(36):
        year, month = divmod(index + 4, 12)
        value = 100 + 0.5 * index + 8 * math.sin(2 * math.pi * (index + 4) / 12)
        rows.append([SHANGCHENG, f"{2022 + year}-{month + 1:02d}-01", round(value, 3)])
    ingest(db, write(tmp_path / "long.csv", ["region_code", "month", "value"], rows), code=LONG)
    spec = {
        "code": "long_value",
        "name": "长序列指标",
        "system": "grassroots",
        "owner": "zj_gat",
        "source": LONG,
        "time": "month",
        "measure": {"kind": "sum", "field": "value"},
        "additivity": "semi_additive",
        "grains": ["month", "year"],
    }
    with db.transaction() as session:
        text_ = yaml.safe_dump({"indicators": [spec]})
        service.apply(session, actor=SYSTEM, text=text_, source="long.yaml")
    service.compute(db, actor=SYSTEM)
    return db


@pytest.fixture
def client(site: World) -> Iterator[TestClient]:
    with TestClient(create_app(database=site.database)) as test_client:
        login(test_client, "viewer")  # the brain's pages are for every signed-in user
        yield test_client


def section(html: str, testid: str) -> str:
    """The element carrying this data-testid, up to its end tag (not nested in its kind)."""
    match = re.search(rf'<(\w+)[^>]*data-testid="{testid}"', html)
    assert match, f"no {testid} on the page"
    end = html.index(f"</{match.group(1)}>", match.end())
    return html[match.start() : end]


def rows(html: str, testid: str) -> list[dict[str, str]]:
    """The data-* attributes of each body row of a table."""
    body = section(html, testid).split("<tbody>", 1)[1]
    found = []
    for attributes in re.findall(r"<tr ([^>]*)>", body):
        found.append(
            {
                key: unescape(value)
                for key, value in re.findall(r'data-([\w-]+)="([^"]*)"', attributes)
            }
        )
    return found


def row_text(html: str, testid: str, key: str, value: str) -> str:
    """The text of the body row of a table whose data-``key`` is ``value``."""
    body = section(html, testid).split("<tbody>", 1)[1]
    for row in body.split("<tr ")[1:]:
        if f'data-{key}="{value}"' in row.split(">", 1)[0]:
            return text(row.split("</tr>", 1)[0])
    raise AssertionError(f"no row with {key}={value} in {testid}")


def text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def get(client: TestClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.text[:2000]
    return response.text


# -- navigation ------------------------------------------------------------------------------


def test_every_user_has_the_brain_and_its_warnings_in_the_menu(client: TestClient) -> None:
    home = get(client, "/")
    assert re.search(r'<a href="/brain" class="">大脑</a>', home)
    assert re.search(r'<a href="/brain/warnings" class="">预警</a>', home)
    warnings = get(client, "/brain/warnings")
    assert '<a href="/brain/warnings" class="active">预警</a>' in warnings
    assert '<a href="/brain" class="">大脑</a>' in warnings  # Warnings is the longer match
    assert '<a href="/brain" class="active">大脑</a>' in get(client, "/brain/indicators/cases")


# -- the catalogue ------------------------------------------------------------------------


def test_the_catalogue_shows_each_indicators_newest_value_by_system(client: TestClient) -> None:
    page = get(client, "/brain")
    society = section(page, "system-digital_society")
    assert "数字社会" in society
    by_code = {row["code"]: row for row in rows(page, "indicators-digital_society")}
    assert set(by_code) == {
        "average_cases", "cases", "cases_per_1000", "on_time_rate", "places_per_1000",
        "population",
    }  # fmt: skip
    places = by_code["places_per_1000"]
    assert places["period"] == "2025-04" and places["light"] == "green"
    assert round(float(places["value"]), 2) == 5.16
    row = row_text(page, "indicators-digital_society", "code", "places_per_1000")
    assert "5.16" in row and "绿" in row and "4.50" in row and "2025-04" in row
    assert by_code["cases"]["value"] == "47.0"  # 40 + 5 + 2 in April
    assert by_code["cases"]["light"] == ""  # no target, no light
    grassroots = {row["code"]: row for row in rows(page, "indicators-grassroots")}
    assert grassroots["never"]["light"] == "no_data"  # its source was never loaded
    assert "无数据" in row_text(page, "indicators-grassroots", "code", "never")
    assert 'href="/brain/indicators/places_per_1000"' in page
    assert "共 10 项指标；显示浙江省的最新值。" in text(page)


def test_the_catalogue_filters_by_system_search_and_region(client: TestClient) -> None:
    grassroots = get(client, "/brain?system=grassroots")
    assert 'data-testid="system-grassroots"' in grassroots
    assert 'data-testid="system-digital_society"' not in grassroots
    found = get(client, "/brain?q=places")
    assert [row["code"] for row in rows(found, "indicators-digital_society")] == ["places_per_1000"]
    hangzhou = get(client, f"/brain?region={HANGZHOU}&q=places")
    (row,) = rows(hangzhou, "indicators-digital_society")
    assert round(float(row["value"]), 2) == 5.16  # 16 / 3100 × 1000
    assert f'href="/brain/indicators/places_per_1000?region={HANGZHOU}"' in hangzhou
    assert "显示杭州市的最新值" in text(hangzhou)
    # a hand-edited system is ignored as /aggregation ignores a light; nothing matches: said
    assert 'data-testid="system-grassroots"' in get(client, "/brain?system=psychic")
    assert 'data-testid="no-indicators"' in get(client, "/brain?q=nothing-like-this")


# -- the indicator page -------------------------------------------------------------------


def test_the_indicator_page_shows_history_target_and_drill_down(client: TestClient) -> None:
    page = get(client, f"/brain/indicators/places_per_1000?region={HANGZHOU}&grain=quarter")
    assert "测试指标places_per_1000" in section(page, "name")
    assert 'data-code="330100"' in section(page, "region")
    crumbs = section(page, "breadcrumb")
    assert f'href="/brain/indicators/places_per_1000?region={PROVINCE}&grain=quarter"' in crumbs
    assert "浙江省" in crumbs
    grains = section(page, "grains")
    assert re.search(r'class="active" data-testid="grain-quarter"', grains)
    assert 'data-testid="grain-month"' in grains and 'data-testid="grain-year"' in grains

    series = rows(page, "series")
    assert [
        (r["period"], round(float(r["value"]), 2), r["target"], r["light"]) for r in series
    ] == [
        ("2025-Q1", 4.84, "4.5", "green"),
        ("2025-Q2", 5.16, "4.5", "green"),
    ]
    assert 'data-testid="history-chart"' in page
    latest = text(section(page, "latest"))
    assert "2025-Q2" in latest and "5.16" in latest and "绿" in latest and "4.50" in latest
    assert "+6.7%" in latest  # on the quarter before: 5.16 / 4.84
    assert "第 1 / 1" in latest  # 宁波 has no value in Q2

    children = rows(page, "children")
    reported = [c for c in children if c["value"]]
    assert [
        (c["region"], round(float(c["value"]), 2), c["light"], c["rank"]) for c in reported
    ] == [
        (SHANGCHENG, 5.45, "green", "1"),
        (GONGSHU, 5.0, "green", "2"),
    ]
    # 杭州's other districts and counties never reported: listed, as no data
    assert len(children) == 13
    assert {c["light"] for c in children if not c["value"]} == {"no_data"}
    drill = section(page, "children")
    assert f'href="/brain/indicators/places_per_1000?region={SHANGCHENG}&grain=quarter"' in drill
    assert "第 2 / 2" in text(drill)
    assert 'data-testid="children-chart"' in page

    definition = text(section(page, "definition"))
    assert "比率 × 1000" in definition and "半可加（期末值）" in definition
    assert "越高越好" in definition and "test_county_monthly" in definition
    assert "预测仅针对月度数据。" in text(page)


def test_a_red_city_and_a_county_without_children(client: TestClient) -> None:
    ningbo = get(client, f"/brain/indicators/places_per_1000?region={NINGBO}")
    latest = section(ningbo, "latest")
    assert "2025-03" in latest and 'data-light="red"' in latest  # 2.00 against 4.5
    children = rows(ningbo, "children")
    assert (children[0]["region"], children[0]["light"]) == (HAISHU, "red")
    assert {c["light"] for c in children[1:]} == {"no_data"}
    county = get(client, f"/brain/indicators/places_per_1000?region={SHANGCHENG}")
    assert 'data-testid="no-children"' in county
    assert [r["light"] for r in rows(county, "series")] == ["red", "green", "green", "green"]


def test_the_indicator_page_lists_the_regions_open_warnings(client: TestClient) -> None:
    page = get(client, f"/brain/indicators/on_time_rate?region={SHANGCHENG}")
    (warning,) = rows(page, "warnings")
    assert warning["rule"] == "on_time_low" and warning["state"] == "recovering"
    assert f'href="/brain/warnings/{warning["id"]}"' in page
    assert "恢复中" in section(page, "warnings")
    latest = text(section(page, "latest"))
    assert "100.00" in latest and "+11.1%" in latest  # 40/40 after 27/30
    assert 'data-testid="latest-light"' in page and "绿" not in latest  # no target, no light
    assert 'data-testid="no-warnings"' in get(client, f"/brain/indicators/cases?region={HANGZHOU}")


def test_the_forecast_band_is_the_latest_forecast(long_series: Database) -> None:
    service.forecast(long_series, actor=SYSTEM, indicators=["long_value", "cases"], horizon=6)
    with TestClient(create_app(database=long_series)) as client:
        login(client, "viewer")
        page = get(client, f"/brain/indicators/long_value?region={SHANGCHENG}")
        twin = queries.latest_forecast("long_value", SHANGCHENG)
        shown = rows(page, "forecast")
        assert [row["period"] for row in shown] == [
            "2025-05", "2025-06", "2025-07", "2025-08", "2025-09", "2025-10",
        ]  # fmt: skip
        for row, point in zip(shown, twin["points"], strict=True):
            bounds = [float(row[key]) for key in ("lo95", "lo80", "mean", "hi80", "hi95")]
            assert bounds == sorted(bounds)
            assert bounds == [point[key] for key in ("lo95", "lo80", "mean", "hi80", "hi95")]
        note = text(section(page, "forecast-model"))
        assert twin["model"] in note and f"{twin['mase']:.2f}" in note and "2025-04-01" in note
        assert len(rows(page, "series")) == 36
        # four months are too short to forecast: the reason is said, no band drawn
        short = get(client, f"/brain/indicators/cases?region={SHANGCHENG}")
        assert "too short" in section(short, "forecast-reason")
        assert 'data-testid="forecast"' not in short


def test_bad_input_is_an_error_page_never_a_traceback(client: TestClient) -> None:
    for url, status, says in [
        ("/brain/indicators/ghost", 404, "未知的指标 'ghost'"),
        ("/brain/indicators/cases?region=339999", 404, "未知的行政区划 '339999'"),
        ("/brain/indicators/cases?grain=day", 422, "按 month, quarter, year 统计"),
        ("/brain/indicators/cases?grain=fortnight", 422, "按 month, quarter, year 统计"),
        ("/brain?region=339999", 404, "未知的行政区划"),
        ("/brain/warnings?region=339999", 404, "未知的行政区划"),
        ("/brain/warnings?indicator=ghost", 404, "未知的指标"),
        ("/brain/warnings/999999", 404, "没有预警 999999"),
        ("/brain/warnings/0", 422, "warning_id"),
    ]:
        page = get(client, url, status)
        assert says in unescape(section(page, "error")), url
        assert "Traceback" not in page


def test_the_pages_need_a_login(site: World) -> None:
    with TestClient(create_app(database=site.database)) as anonymous:
        for url in (
            "/brain", "/brain/indicators/cases", "/brain/warnings", "/brain/warnings/1",
            "/brain/goals", "/brain/report", "/brain/report.md", "/brain/report.html",
        ):  # fmt: skip
            response = anonymous.get(url, follow_redirects=False)
            assert response.status_code == 303 and response.headers["location"].startswith(
                "/login?next="
            )


# -- warnings ----------------------------------------------------------------------------


def test_the_warnings_list_shows_open_warnings_with_counts_by_state(client: TestClient) -> None:
    page = get(client, "/brain/warnings")
    counts = {
        state: int(re.sub(r"<[^>]+>", "", section(page, f"count-{state}")))
        for state in ("normal", "pending", "firing", "recovering", "no_data", "error")
    }
    # population_stale: 上城 and 拱墅 report, the 88 other counties are behind or never did;
    # on_time_low: 上城 recovering, 拱墅 pending, no value in the 88 others
    assert counts == {"normal": 2, "pending": 1, "firing": COUNTIES - 2, "recovering": 1,
                      "no_data": COUNTIES - 2, "error": 0}  # fmt: skip
    assert 'class="active" data-testid="state-open"' in page
    shown = rows(page, "warnings")
    assert len(shown) == 50  # of 90, a page at a time
    assert {row["state"] for row in shown} <= {"firing", "pending", "recovering"}
    assert [row["severity"] for row in shown[:2]] == ["high", "high"]  # the most severe first
    assert "第 1–50 行，共 90 行。" in text(page)
    second = get(client, "/brain/warnings?page=2")
    assert len(rows(second, "warnings")) == COUNTIES - 50
    assert 'data-testid="previous"' in second


def test_the_warnings_list_filters(client: TestClient) -> None:
    by_rule = rows(get(client, "/brain/warnings?rule=on_time_low"), "warnings")
    assert sorted((row["region"], row["state"]) for row in by_rule) == [
        (SHANGCHENG, "recovering"),
        (GONGSHU, "pending"),
    ]
    haishu = get(client, f"/brain/warnings?state=firing&severity=medium&region={HAISHU}")
    ((row),) = rows(haishu, "warnings")
    assert row["rule"] == "population_stale" and row["state"] == "firing"
    assert "落后于其他地区" in text(section(haishu, "warnings"))
    assert 'class="active" data-testid="state-firing"' in haishu
    every = rows(get(client, f"/brain/warnings?state=all&region={SHANGCHENG}"), "warnings")
    assert sorted((row["rule"], row["state"]) for row in every) == [
        ("on_time_low", "recovering"),
        ("population_stale", "normal"),
    ]
    several = rows(get(client, "/brain/warnings?state=pending&state=recovering"), "warnings")
    assert {row["state"] for row in several} == {"pending", "recovering"}
    assert 'data-testid="no-warnings"' in get(client, "/brain/warnings?system=grassroots")
    # a hand-edited state or severity is ignored: the open warnings again
    odd = get(client, "/brain/warnings?state=exploded&severity=dire&rule=on_time_low")
    assert len(rows(odd, "warnings")) == 2


def test_a_warning_tells_its_story(client: TestClient, site: World) -> None:
    listed = rows(get(client, f"/brain/warnings?rule=on_time_low&region={SHANGCHENG}"), "warnings")
    page = get(client, f"/brain/warnings/{listed[0]['id']}")
    assert "按期办结率低于95%" in section(page, "rule-name")
    assert "恢复中" in section(page, "state")
    assert f'href="/brain/indicators/on_time_rate?region={SHANGCHENG}&grain=month"' in page
    assert "上城区" in section(page, "region")
    assert "100.00" in section(page, "value") and "95.00" in section(page, "line")
    events = rows(page, "events")
    assert [(e["period"], e["from"], e["to"], e["value"], e["line"]) for e in events] == [
        ("2025-01", "normal", "pending", "90.0", "95.0"),
        ("2025-02", "pending", "firing", "90.0", "95.0"),
        ("2025-04", "firing", "recovering", "100.0", "95.0"),
    ]
    timeline = text(section(page, "events"))
    assert "正常 → 待确认" in timeline and "待确认 → 预警中" in timeline
    assert "测试指标on_time_rate2025-02为90.00，低于预警线95.00" in timeline


# -- each page is the payload of its API twin ----------------------------------------------


def test_the_pages_render_their_api_twins(client: TestClient, site: World) -> None:
    token = auth(site, "viewer")
    api = client.get(
        "/api/v1/brain/indicators/places_per_1000/overview",
        params={"region": HANGZHOU, "grain": "month"},
        headers=token,
    ).json()
    page = get(client, f"/brain/indicators/places_per_1000?region={HANGZHOU}&grain=month")
    assert [(r["period"], float(r["value"])) for r in rows(page, "series")] == [
        (r["period"], r["value"]) for r in api["series"]
    ]
    assert [r["region"] for r in rows(page, "children")] == [
        c["region_code"] for c in api["children"]
    ]
    listed = client.get(
        "/api/v1/brain/warnings",
        params={"state": ["firing", "pending", "recovering"]},
        headers=token,
    ).json()
    shown = rows(get(client, "/brain/warnings"), "warnings")
    assert [int(row["id"]) for row in shown] == [w["id"] for w in listed["data"][:50]]
    one = client.get(f"/api/v1/brain/warnings/{shown[0]['id']}", headers=token).json()
    events = rows(get(client, f"/brain/warnings/{shown[0]['id']}"), "events")
    assert [(e["from"], e["to"]) for e in events] == [
        (e["from_state"], e["to_state"]) for e in one["events"]
    ]
    catalogue = client.get("/api/v1/brain/indicators", headers=token).json()
    page = get(client, "/brain")
    shown_codes = [
        row["code"]
        for system in ("digital_society", "grassroots")
        for row in rows(page, f"indicators-{system}")
    ]
    assert sorted(shown_codes) == sorted(row["code"] for row in catalogue["data"])


# -- bad input and incomplete data, found while building these pages ------------------------


@pytest.fixture
def computed(brain_world: World) -> World:  # noqa: F811
    service.compute(brain_world.database, actor=SYSTEM)
    return brain_world


def test_an_unknown_system_is_refused_as_bad_input(brain_world: World) -> None:  # noqa: F811
    with TestClient(create_app(database=brain_world.database)) as client:
        response = client.get(
            "/api/v1/brain/indicators",
            params={"system": "psychic"},
            headers=auth(brain_world, "viewer"),
        )
    assert_problem(response, 422, "validation")


def test_indicator_page_refuses_a_grain_that_is_not_one(brain_world: World) -> None:  # noqa: F811
    with brain_world.database.session() as session, pytest.raises(ValidationFailed):
        queries.indicator_page(session, queries.get(session, "cases"), grain="fortnight")


def test_the_drill_down_keeps_a_child_without_a_value(computed: World) -> None:
    with computed.database.session() as session:
        page = queries.indicator_page(
            session, queries.get(session, "places_per_1000"), region=PROVINCE, grain="month"
        )
    assert page.latest is not None and page.latest.period == "2025-04"
    lights = {row.region_code: row.light for row in page.children}
    assert len(lights) == 11  # every city of the province
    assert lights[HANGZHOU] is None  # no target: no light
    assert lights[NINGBO] == "no_data"  # 海曙 did not report April's population
    assert page.children[0].region_code == HANGZHOU


def test_a_parents_ratio_does_not_count_an_unreported_part_as_zero(computed: World) -> None:
    def april(code: str, region: str) -> float | None:
        (row,) = queries.value_rows(
            indicator=code, region=region, grain="month", start=date(2025, 4, 1)
        )
        return row["value"]

    assert april("on_time_rate", HANGZHOU) == pytest.approx(40 / 45 * 100)
    assert (
        not queries.value_rows(
            indicator="on_time_rate", region=NINGBO, grain="month", start=date(2025, 4, 1)
        )
        or april("on_time_rate", NINGBO) is None
    )
    # unknown, or from the regions that reported both parts; never 40 / 47
    assert april("on_time_rate", PROVINCE) in (None, pytest.approx(40 / 45 * 100))


# -- the tab strip ------------------------------------------------------------------------------


def test_the_brain_pages_share_a_tab_strip(client: TestClient) -> None:
    for url, active in [
        ("/brain", "indicators"),
        ("/brain/goals", "goals"),
        ("/brain/warnings", "warnings"),
        ("/brain/report", "report"),
    ]:
        tabs = section(get(client, url), "brain-tabs")
        assert re.search(rf'class="active" data-testid="tab-{active}"', tabs), url
        assert [link for link in re.findall(r'href="([^"]+)"', tabs)] == [
            "/brain", "/brain/goals", "/brain/warnings", "/brain/report",
        ]  # fmt: skip
        assert "战略目标" in tabs and "月度简报" in tabs
    # both pages are the Brain entry of the menu, for every signed-in user
    assert '<a href="/brain" class="active">大脑</a>' in get(client, "/brain/goals")


# -- strategic goals ------------------------------------------------------------------------


@pytest.fixture
def goals(site: World) -> World:
    """tests/brain/test_goals.py's goal tree: a root goal whose one sub-goal has one key
    result, places per 1,000 people in 杭州 from 4.0 (2024) to 6.0 by the end of 2025."""
    with site.database.transaction() as session:
        service.apply_goals(session, actor=SYSTEM, text=yaml.safe_dump(GOALS), source="g.yaml")
    return site


def test_the_goal_tree_shows_progress_and_lights(client: TestClient, goals: World) -> None:
    page = get(client, "/brain/goals")
    root = section(page, "tree-test_goal")
    assert "测试两年目标" in root and "2025-01-01 – 2026-12-31" in root
    # the sub-goal is drawn inside its parent's children, one level down
    children = root.split('data-testid="children-test_goal"', 1)[1]
    assert 'data-testid="goal-test_child"' in children and 'data-depth="1"' in children
    child = text(children)
    assert "托位提升" in child and "浙江省卫生健康委员会" in child and "数字社会" in child

    # 杭州 in April 2025: (6 + 10) / 3100 × 1000 = 5.16; on 30 April the line from 4.0
    # (31 Dec 2024) to 6.0 (31 Dec 2025) is at 4.0 + 2.0 × 120 / 365 = 4.66, so green;
    # progress (5.16 - 4.0) / (6.0 - 4.0) = 58.1%
    (kr,) = rows(page, "key-results-test_child")
    assert (kr["indicator"], kr["region"], kr["light"]) == ("places_per_1000", HANGZHOU, "green")
    assert float(kr["current"]) == pytest.approx(16 / 3100 * 1000)
    assert float(kr["expected"]) == pytest.approx(4.0 + 2.0 * 120 / 365)
    assert float(kr["progress"]) == pytest.approx((16 / 3100 * 1000 - 4.0) / 2.0)
    shown = row_text(page, "key-results-test_child", "indicator", "places_per_1000")
    for says in ("杭州市", "4.00 2024", "5.16 2025-04", "4.66", "6.00 2025-12-31", "58.1%", "绿"):
        assert says in shown, says
    assert f'href="/brain/indicators/places_per_1000?region={HANGZHOU}"' in section(
        page, "key-results-test_child"
    )
    # the root has no key result of its own: its sub-goal's progress and light
    (light, share) = re.findall(
        r'data-testid="goal-test_goal" data-code="test_goal" data-light="(\w+)" '
        r'data-progress="([^"]+)"',
        page,
    )[0]
    assert light == "green" and float(share) == pytest.approx(float(kr["progress"]))
    assert re.search(
        r'data-testid="goal-progress">进度 <span class="bar wide"[^>]*></span>58.1%', page
    )


def test_the_goals_page_renders_its_api_twin(client: TestClient, goals: World) -> None:
    api = client.get("/api/v1/brain/goals", headers=auth(goals, "viewer")).json()
    page = get(client, "/brain/goals")

    def walk(nodes: list[dict]) -> list[tuple[str, str, str]]:
        found = []
        for node in nodes:
            found.append((node["code"], node["light"], f"{node['progress']}"))
            found += walk(node["children"])
        return found

    shown = [
        (code, light, progress or "None")
        for code, light, progress in re.findall(
            r'data-code="(\w+)" data-light="(\w+)" data-progress="([^"]*)"', page
        )
    ]
    assert shown == walk(api["data"])


def test_no_goal_yet_is_said(client: TestClient) -> None:
    assert "尚未制定战略目标。" in section(get(client, "/brain/goals"), "no-goals")


# -- the monthly brief ------------------------------------------------------------------------


def test_the_monthly_brief_of_a_city(client: TestClient) -> None:
    march = get(client, f"/brain/report?month=2025-03&region={HANGZHOU}")
    assert "杭州市全领域月度简报（2025年3月）" in section(march, "report-title")
    # 杭州 in March: (5 + 10) / (1100 + 2000) × 1000 = 4.84 against the province's 4.5: green
    table = {row["code"]: row for row in rows(march, "report-indicators")}
    places = table["places_per_1000"]
    assert round(float(places["value"]), 2) == 4.84 and places["light"] == "green"
    assert places["target"] == "4.5"
    assert "4.84" in row_text(march, "report-indicators", "code", "places_per_1000")
    assert table["never"]["light"] == "no_data"  # its source was never loaded
    assert table["cases"]["value"] == "35.0"  # 30 + 5
    assert re.search(r'data-testid="lights-green">1<', march)
    # 拱墅 10 / 2000 × 1000 = 5.00 ahead of 上城 5 / 1100 × 1000 = 4.55
    assert text(section(march, "best-places_per_1000")).strip() == "拱墅区 5.00"
    assert text(section(march, "worst-places_per_1000")).strip() == "上城区 4.55"
    assert 'data-testid="no-new-warnings"' in march  # nothing fired in March

    february = get(client, f"/brain/report?month=2025-02&region={HANGZHOU}")
    # 上城's on-time rate, 90 and 90 under 95 with pending_for 2, fired in February
    (fired,) = rows(february, "new-warnings")
    assert (fired["region"], fired["severity"]) == ("上城区", "high")
    assert "按期办结率低于95%" in section(february, "new-warnings")
    assert f'href="/brain/warnings/{fired["id"]}"' in february
    assert "无。" in section(february, "no-resolved-warnings")
    assert 'name="month" value="2025-02"' in february
    assert re.search(rf'value="{HANGZHOU}" selected', section(february, "filter-region"))


def test_the_brief_renders_its_api_twin(client: TestClient, site: World) -> None:
    params = {"month": "2025-02", "region": HANGZHOU, "system": "digital_society"}
    api = client.get("/api/v1/brain/report", params=params, headers=auth(site, "viewer")).json()
    page = get(client, f"/brain/report?{urlencode(params)}")
    assert [(r["code"], r["light"]) for r in rows(page, "report-indicators")] == [
        (r["code"], r["light"] or "") for r in api["indicators"]
    ]
    for light, count in api["lights"].items():
        assert re.search(rf'data-testid="lights-{light}">{count}<', page), light
    assert [int(r["id"]) for r in rows(page, "new-warnings")] == [
        w["id"] for w in api["new_warnings"]
    ]
    assert [row["indicator"] for row in rows(page, "rankings")] == [
        ranking["indicator"] for ranking in api["rankings"]
    ]
    assert api["title"] in page


def test_the_brief_shows_the_newest_month_until_one_is_chosen(client: TestClient) -> None:
    page = get(client, "/brain/report")
    assert "浙江省全领域月度简报（2025年4月）" in section(page, "report-title")
    assert 'name="month" value="2025-04"' in page
    # a system no indicator of which has a monthly value: the latest month of none
    assert 'data-testid="no-report"' in get(client, "/brain/report?system=digital_economy")
    # a hand-edited system is ignored, as on the other pages
    assert "浙江省全领域月度简报" in get(client, "/brain/report?system=psychic")


def test_the_brief_downloads_as_markdown_and_html(client: TestClient) -> None:
    page = get(client, f"/brain/report?month=2025-02&region={HANGZHOU}")
    query = f"month=2025-02&amp;region={HANGZHOU}"
    assert f'href="/brain/report.md?{query}"' in section(page, "download-md")
    assert f'href="/brain/report.html?{query}"' in section(page, "download-html")
    markdown = client.get(f"/brain/report.md?month=2025-02&region={HANGZHOU}")
    assert markdown.status_code == 200
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert markdown.headers["content-disposition"] == (
        f'attachment; filename="brief-{HANGZHOU}-2025-02.md"'
    )
    assert markdown.text.startswith("# 杭州市全领域月度简报（2025年2月）")
    assert "| 上城区 | 测试指标on_time_rate | 按期办结率低于95% | 严重 |" in markdown.text
    html = client.get(f"/brain/report.html?month=2025-02&region={HANGZHOU}&system=grassroots")
    assert html.headers["content-disposition"] == (
        f'attachment; filename="brief-{HANGZHOU}-2025-02-grassroots.html"'
    )
    assert html.text.startswith("<!doctype html>") and "<script" not in html.text
    assert "杭州市基层治理月度简报（2025年2月）" in html.text


def test_a_bad_month_or_region_of_the_brief_is_an_error_page(client: TestClient) -> None:
    for url, status, says in [
        ("/brain/report?month=2025-13", 422, "周期类型为“月”"),
        ("/brain/report?month=May", 422, "周期类型为“月”"),
        ("/brain/report?month=2025-04-01", 422, "month"),
        ("/brain/report?month=2025-04&region=339999", 404, "未知的行政区划 '339999'"),
        ("/brain/report.md?month=2025-13", 422, "周期类型为“月”"),
        ("/brain/report.html?region=339999", 404, "未知的行政区划"),
    ]:
        page = get(client, url, status)
        assert says in unescape(section(page, "error")), url
        assert "Traceback" not in page


# -- defining, setting targets and computing from the cockpit ---------------------------------


@pytest.fixture
def analyst(site: World) -> World:
    """An analyst of 浙江省卫生健康委员会, which owns the test indicators: brain.define and
    brain.compute in that department."""
    add_user(site, "analyst", department="zj_wjw", role="analyst", grant_department="zj_wjw")
    return site


def post(
    client: TestClient,
    url: str,
    *,
    page: str = "/brain",
    data: dict[str, str] | None = None,
    files: dict[str, tuple[str, bytes]] | None = None,
) -> Any:
    """Post a form of ``page`` with its CSRF token, following the redirect."""
    token = csrf_of(get(client, page))
    return client.post(url, data={"csrf": token, **(data or {})}, files=files)


def places_targets(database: Database) -> dict[tuple[str, str], float]:
    with database.session() as session:
        found = queries.target_list(session, queries.get(session, "places_per_1000"))
    return {(row.region_code, row.period): row.value for row in found}


INDICATOR_PAGE = f"/brain/indicators/places_per_1000?region={HANGZHOU}&grain=month"
NEW_INDICATOR = {
    "code": "places",
    "name": "托位数",
    "system": "digital_society",
    "owner": "zj_wjw",
    "source": "test_county_monthly",
    "time": "month",
    "measure": {"kind": "sum", "field": "value", "where": {"item": "places"}},
    "additivity": "semi_additive",
}


def indicators_yaml(*specs: dict) -> bytes:
    return yaml.safe_dump({"indicators": list(specs)}, allow_unicode=True).encode()


def workbook(lines: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["指标代码", "行政区划代码", "周期类型", "期间", "目标值", "备注"])
    for line in lines:
        sheet.append(line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_viewer_sees_no_form_and_a_post_is_refused(client: TestClient, site: World) -> None:
    catalogue = get(client, "/brain")
    assert 'data-testid="define"' not in catalogue
    assert "/brain/apply" not in catalogue and "/brain/compute" not in catalogue
    assert 'data-testid="targets"' not in get(client, INDICATOR_PAGE)
    before = places_targets(site.database)
    target = {"value": "9", "grain": "year", "period": "2025", "region": HANGZHOU}
    for url, data, files in [
        ("/brain/apply", {}, {"file": ("a.yaml", indicators_yaml(NEW_INDICATOR))}),
        ("/brain/compute", {}, None),
        ("/brain/indicators/places_per_1000/targets", target, None),
        (
            "/brain/indicators/places_per_1000/targets/import",
            {},
            {"file": ("t.xlsx", workbook([["places_per_1000", HANGZHOU, "年", 2025, 9]]))},
        ),
    ]:
        response = post(client, url, data=data, files=files)
        assert response.status_code == 403, url
        assert "viewer 无权" in unescape(section(response.text, "error")), url
    assert places_targets(site.database) == before
    with site.database.session() as session:
        assert "places" not in queries.specs(session)
        assert [run.id for run in queries.runs(session)] == [1]  # the fixture's only


def test_defining_is_for_the_owners_department(site: World) -> None:
    """gat_admin may define 公安厅's indicators, not 卫健委's: the YAML form, but no target
    forms on a 卫健委 indicator, and no recomputing (a department admin has no
    brain.compute)."""
    with TestClient(create_app(database=site.database)) as client:
        login(client, "gat_admin")
        catalogue = get(client, "/brain")
        assert 'data-testid="define-form"' in catalogue
        assert 'data-testid="compute-form"' not in catalogue
        assert 'data-testid="targets"' not in get(client, INDICATOR_PAGE)
        refused = post(
            client,
            "/brain/indicators/places_per_1000/targets",
            data={"value": "9", "grain": "year", "period": "2025", "region": HANGZHOU},
        )
        assert refused.status_code == 403
        # a file of 卫健委's indicators: the service refuses it, named, and applies nothing
        page = post(
            client, "/brain/apply", files={"file": ("wjw.yaml", indicators_yaml(NEW_INDICATOR))}
        )
        assert page.status_code == 200
        assert flashed(page.text) == (
            "wjw.yaml：指标 places：gat_admin 无权对“zj_wjw 的指标”执行 brain.define"
        )
        with site.database.session() as session:
            assert "places" not in queries.specs(session)


def test_an_analyst_applies_an_indicators_file(analyst: World) -> None:
    with TestClient(create_app(database=analyst.database)) as client:
        login(client, "analyst")
        page = post(
            client, "/brain/apply", files={"file": ("托位.yaml", indicators_yaml(NEW_INDICATOR))}
        )
        assert flashed(page.text) == "导入完成：新建 1 条，更新 0 条，未变 0 条。"
        (row,) = rows(get(client, "/brain?q=托位数"), "indicators-digital_society")
        assert row["code"] == "places" and row["light"] == "no_data"  # not computed yet
        again = post(
            client, "/brain/apply", files={"file": ("托位.yaml", indicators_yaml(NEW_INDICATOR))}
        )
        assert flashed(again.text) == "导入完成：新建 0 条，更新 0 条，未变 1 条。"


def test_a_bad_indicators_file_applies_nothing(analyst: World) -> None:
    fine = {**NEW_INDICATOR, "code": "places_again"}
    broken = {**NEW_INDICATOR, "code": "broken", "measure": {"kind": "sum", "field": "nope"}}
    with TestClient(create_app(database=analyst.database)) as client:
        login(client, "analyst")
        page = post(
            client, "/brain/apply", files={"file": ("bad.yaml", indicators_yaml(fine, broken))}
        )
        message = flashed(page.text)
        assert message and message.startswith("bad.yaml：") and "nope" in message
        assert 'class="flash err"' in page.text
        not_yaml = post(client, "/brain/apply", files={"file": ("x.yaml", b"indicators: [")})
        assert re.match(r"x\.yaml:\d+：不是有效的 YAML", flashed(not_yaml.text) or "")
        binary = post(client, "/brain/apply", files={"file": ("x.yaml", b"\xff\xfe\x00")})
        assert flashed(binary.text) == "x.yaml：不是 UTF-8 文本。"
        nothing = post(client, "/brain/apply", files={"file": ("", b"")})
        assert flashed(nothing.text) == "请选择文件。"
    with analyst.database.session() as session:
        assert not {"places_again", "broken"} & set(queries.specs(session))


def test_an_analyst_sets_one_target(analyst: World) -> None:
    with TestClient(create_app(database=analyst.database)) as client:
        login(client, "analyst")
        form = section(get(client, INDICATOR_PAGE), "target-form")
        assert re.search(r'value="year" selected', form)  # targets are mostly for a year
        assert re.search(rf'value="{HANGZHOU}" selected', form)
        # 杭州 alone: the province's 4.5 for 2025 replaced by 5.0
        page = post(
            client,
            "/brain/indicators/places_per_1000/targets",
            page=INDICATOR_PAGE,
            data={"value": "5", "grain": "year", "period": "2025", "region": HANGZHOU,
                  "page_region": HANGZHOU, "page_grain": "quarter"},
        )  # fmt: skip
        assert flashed(page.text) == "目标值：新建 0 条，更新 1 条。"
        assert str(page.url).endswith(
            f"/brain/indicators/places_per_1000?region={HANGZHOU}&grain=quarter"
        )
        # the page it came back to holds 杭州's quarters to 5.0: Q1's 4.84 is now yellow
        assert [(r["period"], r["target"], r["light"]) for r in rows(page.text, "series")] == [
            ("2025-Q1", "5.0", "yellow"),
            ("2025-Q2", "5.0", "green"),
        ]
        # 宁波 and every region under it, for 2026
        with analyst.database.session() as session:
            names = queries.regions(session)
        under = [code for code, r in names.items() if r.path.startswith(names[NINGBO].path)]
        page = post(
            client,
            "/brain/indicators/places_per_1000/targets",
            page=INDICATOR_PAGE,
            data={"value": "4.8", "grain": "year", "period": "2026", "region": NINGBO,
                  "subtree": "1", "note": "十五五"},
        )  # fmt: skip
        assert flashed(page.text) == f"目标值：新建 {len(under)} 条，更新 0 条。"
        assert str(page.url).endswith("/brain/indicators/places_per_1000")
    targets = places_targets(analyst.database)
    assert targets[(HANGZHOU, "2025")] == 5.0 and targets[(PROVINCE, "2025")] == 4.5
    assert targets[(HAISHU, "2026")] == 4.8 and (HANGZHOU, "2026") not in targets


def test_a_bad_target_is_refused_with_the_reason(analyst: World) -> None:
    before = places_targets(analyst.database)
    with TestClient(create_app(database=analyst.database)) as client:
        login(client, "analyst")
        for data, says in [
            ({"value": "", "period": "2025"}, "请填写目标值。"),
            ({"value": "5", "period": " "}, "请填写目标所属的期间。"),
            ({"value": "many", "period": "2025"}, "value: Input should be a valid number"),
            ({"value": "5", "period": "2025-13", "grain": "month"}, "周期类型为“月”"),
            ({"value": "5", "period": "2025", "grain": "fortnight"}, "grain: Input should be"),
            ({"value": "5", "period": "2025", "region": "339999"}, "未知的行政区划 339999"),
            ({"value": "inf", "period": "2025"}, "a target is a finite number"),
        ]:
            form = {"grain": "year", "region": HANGZHOU, **data}
            page = post(
                client,
                "/brain/indicators/places_per_1000/targets",
                page=INDICATOR_PAGE,
                data=form,
            )
            assert page.status_code == 200, data
            assert says in (flashed(page.text) or ""), data
    assert places_targets(analyst.database) == before


def test_targets_are_imported_from_yaml_or_a_workbook(analyst: World) -> None:
    entry = {"indicator": "places_per_1000", "value": 5.5, "period": "2025", "regions": [GONGSHU]}
    document = yaml.safe_dump({"targets": [entry]}).encode()
    with TestClient(create_app(database=analyst.database)) as client:
        login(client, "analyst")
        url = "/brain/indicators/places_per_1000/targets/import"
        page = post(client, url, page=INDICATOR_PAGE, files={"file": ("t.yaml", document)})
        assert flashed(page.text) == "目标值：新建 0 条，更新 1 条。"
        book = workbook(
            [
                ["places_per_1000", SHANGCHENG, "年", 2026, 6, "十五五"],
                ["places_per_1000", HAISHU, "季", "2025-Q2", 3, ""],
            ]
        )
        page = post(client, url, page=INDICATOR_PAGE, files={"file": ("目标.xlsx", book)})
        assert flashed(page.text) == "目标值：新建 2 条，更新 0 条。"
        # the form on the indicator page says what a file holds
        assert "指标代码、行政区划代码、周期类型、期间、目标值" in section(
            get(client, INDICATOR_PAGE), "targets-import-form"
        )
    targets = places_targets(analyst.database)
    assert targets[(GONGSHU, "2025")] == 5.5 and targets[(SHANGCHENG, "2026")] == 6.0
    assert targets[(HAISHU, "2025-Q2")] == 3.0


def test_a_workbook_with_a_bad_row_imports_nothing(analyst: World) -> None:
    before = places_targets(analyst.database)
    book = workbook(
        [
            ["places_per_1000", SHANGCHENG, "年", 2026, 6, ""],
            ["places_per_1000", GONGSHU, "年", 2026, "很多", ""],
        ]
    )
    with TestClient(create_app(database=analyst.database)) as client:
        login(client, "analyst")
        page = post(
            client,
            "/brain/indicators/places_per_1000/targets/import",
            page=INDICATOR_PAGE,
            files={"file": ("目标.xlsx", book)},
        )
        message = flashed(page.text) or ""
        assert message.startswith("目标.xlsx：row 3 目标值:"), message
        assert 'class="flash err"' in page.text
        unknown = workbook([["places_per_1000", "339999", "年", 2026, 6, ""]])
        page = post(
            client,
            "/brain/indicators/places_per_1000/targets/import",
            page=INDICATOR_PAGE,
            files={"file": ("目标.xlsx", unknown)},
        )
        assert flashed(page.text) == "目标.xlsx：第 1 个目标值：未知的行政区划 339999"
    assert places_targets(analyst.database) == before


def test_an_analyst_recomputes_and_reevaluates(analyst: World) -> None:
    with TestClient(create_app(database=analyst.database)) as client:
        login(client, "analyst")
        catalogue = get(client, "/brain")
        assert "重新计算" in section(catalogue, "compute")
        assert "#1" in section(catalogue, "last-run")
        page = post(client, "/brain/compute")
        message = flashed(page.text) or ""
        with analyst.database.session() as session:
            run = queries.last_run(session)
        assert run is not None and run.id == 2 and run.state == "succeeded"
        assert message.startswith(f"第 2 次计算：{run.rows} 个值，用时 "), message
        with analyst.database.session() as session:
            firing = queries.warnings(session).by_state.get("firing", 0)
        assert re.search(rf"预警：评估 \d+ 次，状态变化 \d+ 次，预警中 {firing} 条。$", message)
        assert "#2" in section(page.text, "last-run")
        assert post(client, "/brain/compute", data={"csrf": "forged"}).status_code == 403


def test_a_key_result_that_meets_its_final_target_is_complete(
    client: TestClient, site: World
) -> None:
    # baseline 5.5, final 5.0 (higher is better); 杭州 in April 2025 stands at 5.16, which
    # meets the final target; the share (5.16 - 5.5) / (5.0 - 5.5) says 67.7% of the way
    met = {"indicator": "places_per_1000", "region": HANGZHOU, "baseline_period": 2024,
           "baseline": 5.5, "milestones": [{"date": "2025-12-31", "target": 5.0}]}  # fmt: skip
    document = {"goals": [{"code": "met_goal", "name": "已达标目标", "starts_on": "2025-01-01",
                           "ends_on": "2025-12-31", "key_results": [met]}]}  # fmt: skip
    with site.database.transaction() as session:
        service.apply_goals(session, actor=SYSTEM, text=yaml.safe_dump(document), source="g.yaml")
    (kr,) = rows(get(client, "/brain/goals"), "key-results-met_goal")
    assert float(kr["current"]) >= 5.0  # the final target is met...
    assert float(kr["progress"]) == 1.0  # ...so the way to it is done
