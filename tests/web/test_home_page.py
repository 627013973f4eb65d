"""The cockpit home (驾驶舱) for leaders: zh-CN, the systems' tiles first, drill-down links
from the province to a city to a county, and the same numbers as GET /api/v1/cockpit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import pytest
from fastapi.testclient import TestClient

from shuzhi.core.enums import System
from shuzhi.server import create_app
from tests.api.support import assert_problem, auth
from tests.brain.conftest import brain_db, brain_template, brain_world  # noqa: F401
from tests.brain.data import GONGSHU, HANGZHOU, PROVINCE
from tests.conftest import World
from tests.loop.conftest import loop_world  # noqa: F401
from tests.loop.test_cockpit import furnish
from tests.web.support import login


@pytest.fixture
def client(loop_world: World) -> Iterator[TestClient]:  # noqa: F811
    furnish(loop_world)
    with TestClient(create_app(database=loop_world.database)) as test_client:
        login(test_client, "viewer")
        yield test_client


LABELS = (
    "党建统领整体智治", "数字政府", "基层治理", "关键指标", "预警中", "重大改革一本账", "问题清单",
    "销号率", "按期销号率", "全量归集", "归集覆盖率", "分地区钻取",
)  # fmt: skip


def page(client: TestClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.text[:2000]
    return response.text


def tiles(html: str) -> dict[str, dict[str, str]]:
    """Each system tile's light and counts as the page shows them."""
    found = {}
    for match in re.finditer(
        r'data-testid="tile-(\w+)" data-light="(\w+)">(.*?)</a>', html, flags=re.S
    ):
        system, light, body = match.groups()
        counts = dict(re.findall(r'data-testid="tile-(\w+)">(\d+)<', body))
        found[system] = {"light": light, **counts}
    return found


def children(html: str) -> dict[str, dict[str, str]]:
    found = {}
    for match in re.finditer(
        r'<tr data-region="(\d+)" data-light="(\w+)">(.*?)</tr>', html, flags=re.S
    ):
        code, light, body = match.groups()
        counts = dict(re.findall(r'data-testid="child-(\w+)">(\d+)<', body))
        found[code] = {"light": light, **counts}
    return found


def number(html: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}"[^>]*>([^<]*)<', html)
    assert match, f"no {testid} on the page"
    return unescape(match.group(1)).strip()


def test_the_home_page_speaks_to_leaders_in_chinese(client: TestClient) -> None:
    html = page(client, "/")
    assert "驾驶舱 · 浙江省" in html
    for words in LABELS:
        assert words in html, words
    assert list(tiles(html)) == [system.value for system in System]
    # the leader's view comes first, the catalog's numbers after it
    assert html.index('data-testid="systems"') < html.index('data-testid="published"')
    assert re.search(r'data-testid="published">\d+<', html)
    assert 'id="by-system"' in html  # the published-resources chart stays


def test_drill_down_links_lead_from_the_province_to_a_county(client: TestClient) -> None:
    province = page(client, "/")
    assert f'href="/?region={HANGZHOU}"' in province
    assert set(children(province)) >= {HANGZHOU, "330200", "331100"}

    city = page(client, f"/?region={HANGZHOU}")
    assert "驾驶舱 · 杭州市" in city
    crumbs = city.split('data-testid="crumbs"', 1)[1].split("</nav>", 1)[0]
    assert f'href="/?region={PROVINCE}"' in crumbs and "浙江省" in crumbs
    assert f'href="/?region={GONGSHU}"' in city
    assert children(city)[GONGSHU]["light"] == "red"

    county = page(client, f"/?region={GONGSHU}")
    crumbs = county.split('data-testid="crumbs"', 1)[1].split("</nav>", 1)[0]
    assert f'href="/?region={PROVINCE}"' in crumbs and f'href="/?region={HANGZHOU}"' in crumbs
    assert 'data-testid="children"' not in county  # a county is where the drill-down ends
    assert 'href="/brain/warnings/' in county  # its firing warning, linked


def test_the_page_and_the_api_give_the_same_numbers(
    client: TestClient,
    loop_world: World,  # noqa: F811
) -> None:
    for region in (PROVINCE, HANGZHOU, GONGSHU):
        html = page(client, f"/?region={region}")
        response = client.get(
            "/api/v1/cockpit", params={"region": region}, headers=auth(loop_world, "viewer")
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["region"]["code"] == region
        shown = tiles(html)
        for tile in body["tiles"]:
            assert shown[tile["system"]] == {
                "light": tile["light"],
                "indicators": str(tile["key_indicators"]),
                "warnings": str(tile["warnings_firing"]),
                "problems": str(tile["problems_open"]),
            }, (region, tile["system"])
        total = body["problems"]["total"]
        assert number(html, "warnings-firing") == str(body["warnings_firing"])
        assert number(html, "problems-open") == str(total["open"])
        assert number(html, "problems-overdue") == str(total["overdue"])
        assert number(html, "reforms") == str(body["reforms"])
        assert number(html, "published") == str(
            body["aggregation"]["catalog"]["by_state"].get("published", 0)
        )
        assert children(html) == {
            child["region"]["code"]: {
                "light": child["light"],
                "warnings": str(child["warnings_firing"]),
                "problems": str(child["problems"]["total"] if child["problems"] else 0),
            }
            for child in body["children"]
        }
        ids = re.findall(r'href="/brain/warnings/(\d+)"', html)
        assert ids == [str(item["warning"]["id"]) for item in body["warnings"]]


def test_an_unknown_region_is_not_found(client: TestClient, loop_world: World) -> None:  # noqa: F811
    response = client.get("/?region=339999")
    assert response.status_code == 404
    assert 'data-testid="error"' in response.text
    answer = client.get(
        "/api/v1/cockpit", params={"region": "339999"}, headers=auth(loop_world, "viewer")
    )
    assert_problem(answer, 404, "not-found")


def test_the_cockpit_api_needs_a_token(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/cockpit"), 401, "unauthenticated")
