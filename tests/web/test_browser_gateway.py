"""The sharing gateway in a real browser, against `shuzhi serve` on the demo province:
a department registers its application system and applies for another department's
conditional resource from the catalog, the provider's officer approves it from the inbox,
and the system then reads the data with signed calls over HTTP.

The live server is test_browser.py's fixture. Chromium is driven on a thread of its own:
Playwright's sync API allows one instance per thread, and test_browser.py's session-wide
browser holds the main thread's when both modules run in one process."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from shuzhi.client import Client
from tests.web.test_browser import (
    CHROMIUM,
    TIMEOUT_MS,
    Page,
    _origin,
    expect,
    live_server,  # noqa: F401 - a fixture, found by name
    log_in,
    log_out,
    sync_playwright,
)

pytestmark = pytest.mark.browser

POPULATION = "gat_resident_population"  # 浙江省公安厅, 有条件共享, L3, loaded by the demo
MATTER = "330000-QT-0001"
SCENARIO_TIMEOUT_S = 300.0


def in_browser(base_url: str, scenario: Callable[[Page], None]) -> None:
    """Run ``scenario`` on a fresh page of a fresh Chromium, on its own thread; its
    failure is raised here."""
    failures: list[BaseException] = []

    def drive() -> None:
        try:
            with sync_playwright() as playwright:
                chromium = playwright.chromium.launch(
                    executable_path=str(CHROMIUM),
                    args=[
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--no-first-run",
                    ],
                )
                expect.set_options(timeout=TIMEOUT_MS)
                try:
                    context = chromium.new_context(base_url=base_url, locale="zh-CN")
                    context.set_default_timeout(TIMEOUT_MS)
                    scenario(context.new_page())
                finally:
                    chromium.close()
        except BaseException as exc:  # handed to the test's thread
            failures.append(exc)

    thread = threading.Thread(target=drive, name="chromium", daemon=True)
    thread.start()
    thread.join(SCENARIO_TIMEOUT_S)
    if thread.is_alive():
        pytest.fail(f"the browser scenario did not finish in {SCENARIO_TIMEOUT_S}s")
    if failures:
        raise failures[0]


def register_system(page: Page, code: str) -> tuple[str, str]:
    """The department admin registers a system and issues its credential; the secret is
    read off the page that shows it once."""
    page.goto("/gateway/consumers")
    page.get_by_test_id("consumer-code").fill(code)
    page.get_by_test_id("consumer-name").fill("浏览器测试救助审核系统")
    expect(page.get_by_test_id("consumer-department")).to_have_value("zj_wjw")
    page.get_by_test_id("create-consumer").click()
    expect(page.locator(".flash.ok")).to_have_text("已保存。")
    expect(page).to_have_url(f"{_origin(page)}/gateway/consumers/{code}")

    page.get_by_test_id("issue").click()
    expect(page.get_by_test_id("issued")).to_contain_text("无法再次查看")
    key = page.get_by_test_id("issued-key").inner_text().strip()
    secret = page.get_by_test_id("issued-secret").inner_text().strip()
    assert key and secret
    page.goto(f"/gateway/consumers/{code}")  # shown once: gone on the next visit
    expect(page.get_by_test_id("issued")).to_have_count(0)
    expect(page.get_by_test_id("credentials")).to_contain_text(key)
    return key, secret


def apply_from_the_catalog(page: Page, consumer: str) -> int:
    page.goto(f"/catalog/{POPULATION}")
    page.get_by_test_id("apply").click()
    expect(page.locator("h1")).to_have_text("申请使用")
    page.get_by_test_id("apply-consumer").select_option(consumer)
    page.get_by_test_id("field-household_address").uncheck()
    page.get_by_test_id("clear-full_name").check()
    page.get_by_test_id("apply-purpose-code").fill(MATTER)
    page.get_by_test_id("apply-purpose").fill("核验最低生活保障申请人的户籍信息")
    page.get_by_test_id("apply-legal-basis").fill("《社会救助暂行办法》第十一条")
    page.get_by_test_id("apply-submit").click()
    expect(page.locator(".flash.ok")).to_have_text("申请已提交，等待提供部门审批。")
    expect(page.get_by_test_id("state")).to_have_text("待审批")
    match = re.search(r"/gateway/applications/(\d+)$", page.url)
    assert match, page.url
    return int(match.group(1))


def approve_from_the_inbox(page: Page, application_id: int) -> None:
    page.locator("nav.mainnav a[href='/gateway/applications']").click()
    expect(page.get_by_test_id("tab-inbox")).to_have_class("active")
    page.get_by_test_id(f"open-{application_id}").click()
    expect(page.get_by_test_id("approve-clear-full_name")).to_be_checked()
    page.get_by_test_id("approve-rps").fill("10")
    page.get_by_test_id("comment-approve").fill("同意，姓名可明文")
    page.get_by_test_id("transition-approve").click()
    expect(page.locator(".flash.ok")).to_have_text("操作成功。")
    expect(page.get_by_test_id("state")).to_have_text("已批准")
    page.get_by_test_id("grant-link").click()
    expect(page.get_by_test_id("mode-full_name")).to_have_text("明文")
    expect(page.get_by_test_id("mode-id_card")).to_have_text("令牌化")
    expect(page.get_by_test_id("rps")).to_have_text("10")


def test_apply_approve_and_read(live_server: str) -> None:  # noqa: F811
    consumer = f"wjw_browser_{uuid.uuid4().hex[:8]}"
    made: dict[str, Any] = {}

    def apply_and_approve(page: Page) -> None:
        errors: list[Any] = []
        page.on("pageerror", lambda error: errors.append(error))
        log_in(page, "wjw_admin")  # the health commission's department administrator
        made["key"], made["secret"] = register_system(page, consumer)
        application_id = apply_from_the_catalog(page, consumer)
        log_out(page)

        log_in(page, "gat_officer")  # the police department provides the resource
        approve_from_the_inbox(page, application_id)
        assert errors == []

    in_browser(live_server, apply_and_approve)

    gateway = Client(
        live_server, key=made["key"], secret=made["secret"], purpose=MATTER, user="wang.li"
    )
    answer = gateway.records(POPULATION, limit=5)
    assert len(answer["data"]) == 5
    assert answer["masking"]["full_name"] == "clear"
    assert answer["masking"]["id_card"] == "token"
    assert "household_address" not in answer["data"][0]  # not applied for
    assert all(row["full_name"] and "*" not in row["full_name"] for row in answer["data"])


def test_the_usage_page_draws_its_chart(live_server: str) -> None:  # noqa: F811
    def usage(page: Page) -> None:
        errors: list[Any] = []
        page.on("pageerror", lambda error: errors.append(error))
        log_in(page, "auditor")  # the demo's three weeks of calls, all of them
        page.goto("/audit/access-log")
        page.get_by_test_id("usage-link").click()
        expect(page.get_by_test_id("tab-usage")).to_have_class("active")
        expect(page.locator("[data-testid=usage-chart] canvas").first).to_be_visible()
        expect(page.get_by_test_id("by-consumer").locator("tbody tr").first).to_be_visible()
        assert errors == []

    in_browser(live_server, usage)
