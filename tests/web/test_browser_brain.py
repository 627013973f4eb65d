"""The brain's pages in a real browser, against `shuzhi serve` on the demo province (its
indicators computed, forecast and evaluated into warnings by `shuzhi demo build`): from
the catalogue to an indicator whose history, forecast band and drill-down are drawn, down
to a city by its drill-down link, then to the warnings and one warning's timeline; and
the goal tree with its nested sub-goals, and the monthly brief of the province and a city.

The live server is test_browser.py's fixture; Chromium runs on a thread of its own, as in
test_browser_gateway.py (Playwright's sync API allows one instance per thread)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.test_browser import (
    Page,
    _origin,
    expect,
    live_server,  # noqa: F401 - a fixture, found by name
    log_in,
)
from tests.web.test_browser_gateway import in_browser

pytestmark = pytest.mark.browser

CHILDCARE = "childcare_places_per_1000"  # 每千人口拥有3岁以下婴幼儿托位数, forecast by the demo


def test_from_the_catalogue_down_to_a_city(live_server: str) -> None:  # noqa: F811
    def scenario(page: Page) -> None:
        errors: list[Any] = []
        page.on("pageerror", lambda error: errors.append(error))
        log_in(page, "viewer")
        page.locator("nav.mainnav a[href='/brain']").click()
        expect(page.get_by_test_id("system-digital_society")).to_be_visible()
        row = page.locator(f"tr[data-code='{CHILDCARE}']")
        expect(row.locator(".light")).to_have_count(1)  # it has a target: a light
        page.get_by_test_id(f"open-{CHILDCARE}").click()

        expect(page.get_by_test_id("name")).to_contain_text("托位数")
        expect(page.get_by_test_id("region")).to_have_text("浙江省")
        expect(page.locator("[data-testid=history-chart] canvas").first).to_be_visible()
        expect(page.get_by_test_id("forecast-model")).to_contain_text("MASE")
        expect(page.locator("[data-testid=children-chart] canvas").first).to_be_visible()
        first = page.locator("#brain-children tbody tr").first
        city, name = first.get_attribute("data-region"), first.get_attribute("data-name")
        assert city and name
        first.locator("a").click()

        expect(page).to_have_url(re.compile(rf"region={city}&grain=month$"))
        expect(page.get_by_test_id("region")).to_have_text(name)
        expect(page.get_by_test_id("crumb-330000")).to_be_visible()
        expect(page.locator("[data-testid=history-chart] canvas").first).to_be_visible()
        expect(page.locator("#brain-children tbody tr").first).to_be_attached()  # its counties
        page.get_by_test_id("grain-quarter").click()
        expect(page.get_by_test_id("grain-quarter")).to_have_class("active")
        expect(page.get_by_test_id("latest-period")).to_contain_text("-Q")
        assert errors == []

    in_browser(live_server, scenario)


def test_open_warnings_and_one_warnings_timeline(live_server: str) -> None:  # noqa: F811
    def scenario(page: Page) -> None:
        errors: list[Any] = []
        page.on("pageerror", lambda error: errors.append(error))
        log_in(page, "viewer")
        page.locator("nav.mainnav a[href='/brain/warnings']").click()
        expect(page.get_by_test_id("state-open")).to_have_class("active")
        page.get_by_test_id("state-firing").click()
        expect(page.get_by_test_id("state-firing")).to_have_class("active")
        first = page.locator("[data-testid=warnings] tbody tr").first
        expect(first).to_have_attribute("data-state", "firing")
        warning_id = first.get_attribute("data-id")
        first.get_by_test_id(f"open-{warning_id}").click()

        expect(page).to_have_url(f"{_origin(page)}/brain/warnings/{warning_id}")
        expect(page.get_by_test_id("state")).to_have_text("预警中")
        events = page.locator("[data-testid=events] tbody tr")
        expect(events.last).to_have_attribute("data-to", "firing")
        page.get_by_test_id("indicator-link").click()
        expect(page.locator("[data-testid=history-chart] canvas").first).to_be_visible()
        expect(page.locator(f"[data-testid=warnings] tr[data-id='{warning_id}']")).to_be_visible()
        assert errors == []

    in_browser(live_server, scenario)


def test_the_goal_tree_and_the_monthly_brief(live_server: str) -> None:  # noqa: F811
    def scenario(page: Page) -> None:
        errors: list[Any] = []
        page.on("pageerror", lambda error: errors.append(error))
        log_in(page, "viewer")
        page.locator("nav.mainnav a[href='/brain']").click()
        page.get_by_test_id("tab-goals").click()

        expect(page.get_by_test_id("tab-goals")).to_have_class("active")
        root = page.get_by_test_id("tree-zj_reform_2026")
        expect(root).to_contain_text("数字化改革两年攻坚目标")
        child = root.get_by_test_id("children-zj_reform_2026").get_by_test_id(
            "goal-society_care_2026"
        )
        expect(child).to_have_attribute("data-depth", "1")
        key_results = child.locator("[data-testid=key-results-society_care_2026] tbody tr")
        expect(key_results).to_have_count(2)
        expect(key_results.first).to_have_attribute("data-indicator", CHILDCARE)
        expect(key_results.first.locator(".light")).to_have_count(1)

        page.get_by_test_id("tab-report").click()
        expect(page.get_by_test_id("report-title")).to_contain_text("浙江省全领域月度简报")
        expect(page.locator("[data-testid=report-indicators] tbody tr").first).to_be_visible()
        month = page.get_by_test_id("filter-month").input_value()
        assert re.fullmatch(r"\d{4}-\d{2}", month), month
        page.get_by_test_id("filter-region").select_option("330100")
        page.get_by_test_id("show").click()
        expect(page.get_by_test_id("report-title")).to_contain_text("杭州市全领域月度简报")
        expect(page).to_have_url(re.compile(rf"month={month}&region=330100"))
        expect(page.get_by_test_id("download-md")).to_have_attribute(
            "href", f"/brain/report.md?month={month}&region=330100"
        )
        assert errors == []

    in_browser(live_server, scenario)
