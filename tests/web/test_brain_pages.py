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

import math
import re
from collections.abc import Iterator
from datetime import date
from html import unescape
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from shuzhi.brain import queries, service
from shuzhi.brain.schemas import TargetSet
from shuzhi.core.db import Database
from shuzhi.core.errors import ValidationFailed
from shuzhi.core.permissions import SYSTEM
from shuzhi.server import create_app
from tests.api.support import assert_problem, auth
from tests.brain.conftest import brain_template, brain_world  # noqa: F401
from tests.brain.data import GONGSHU, HAISHU, HANGZHOU, NINGBO, PROVINCE, SHANGCHENG, write
from tests.conftest import World, resource_doc
from tests.lake.data import ingest, publish
from tests.web.support import login

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
        ("/brain/indicators/ghost", 404, "unknown indicator 'ghost'"),
        ("/brain/indicators/cases?region=339999", 404, "unknown region '339999'"),
        ("/brain/indicators/cases?grain=day", 422, "reported by month, quarter, year"),
        ("/brain/indicators/cases?grain=fortnight", 422, "reported by month, quarter, year"),
        ("/brain?region=339999", 404, "unknown region"),
        ("/brain/warnings?region=339999", 404, "unknown region"),
        ("/brain/warnings?indicator=ghost", 404, "unknown indicator"),
        ("/brain/warnings/999999", 404, "no warning 999999"),
        ("/brain/warnings/0", 422, "warning_id"),
    ]:
        page = get(client, url, status)
        assert says in unescape(section(page, "error")), url
        assert "Traceback" not in page


def test_the_pages_need_a_login(site: World) -> None:
    with TestClient(create_app(database=site.database)) as anonymous:
        for url in ("/brain", "/brain/indicators/cases", "/brain/warnings", "/brain/warnings/1"):
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
