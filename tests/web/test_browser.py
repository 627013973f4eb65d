"""The cockpit in a real browser, against `shuzhi serve` on the demo province.

One live server for the session: ``python -m shuzhi demo build`` into a temporary data
directory, then ``python -m shuzhi serve``. Debian's Chromium, driven by Playwright; each
test gets a fresh browser context (no cookies) and makes its own resources, so the tests
do not depend on each other's order.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shuzhi.core.standards import citizen_id_check
from tests.conftest import need

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
DEMO_PASSWORD = "Shuzhi@2026"
TIMEOUT_MS = 10_000
START_TIMEOUT_S = 30.0

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - reported by need() below
    sync_playwright = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(data_dir: Path) -> dict[str, str]:
    """The conftest's per-test environment does not reach a session fixture: build one."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHUZHI_")}
    env.update(
        SHUZHI_DATA_DIR=str(data_dir),
        SHUZHI_SECURITY__ARGON2_TIME_COST="1",
        SHUZHI_SECURITY__ARGON2_MEMORY_KIB="1024",
        SHUZHI_SECURITY__ARGON2_PARALLELISM="1",
        SHUZHI_LOG__FORMAT="console",
    )
    return env


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"shuzhi serve exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)  # a poll interval, bounded by the deadline above
    pytest.fail(f"shuzhi serve not healthy after {START_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    need(sync_playwright is not None, "Playwright not installed (pip install playwright)")
    need(CHROMIUM.exists(), "Chromium not installed (Debian package chromium)")
    root = tmp_path_factory.mktemp("live")
    env = _server_env(root / "data")
    built = subprocess.run(
        [sys.executable, "-m", "shuzhi", "demo", "build"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    port = _free_port()
    log = root / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "shuzhi", "serve", "--port", str(port)],
            env=env,
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


@pytest.fixture(scope="session")
def browser(live_server: str) -> Iterator[Browser]:
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
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server, locale="zh-CN")
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


# what a user does ------------------------------------------------------------------------


def log_in(page: Page, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page.locator("form[action='/logout']")).to_be_visible()


def log_out(page: Page) -> None:
    page.locator("form[action='/logout'] button").click()
    expect(page).to_have_url(f"{_origin(page)}/login")


def _origin(page: Page) -> str:
    return page.url.split("/", 3)[0] + "//" + page.url.split("/", 3)[2]


def new_code() -> str:
    return f"gat_browser_{uuid.uuid4().hex[:8]}"


def create_resource(page: Page, code: str, name: str) -> None:
    """Fill the new-resource form as an officer does: two field rows, the first the key."""
    page.goto("/catalog")
    page.get_by_test_id("new-resource").click()
    page.locator("input[name=code]").fill(code)
    page.locator("input[name=name]").fill(name)
    page.locator("textarea[name=summary]").fill("浏览器测试创建的资源")
    page.get_by_test_id("add-field").click()
    page.get_by_test_id("add-field").click()
    rows = page.locator("#fields tbody tr")
    expect(rows).to_have_count(2)
    for index, (field, title) in enumerate((("plate_no", "号牌号码"), ("owner_name", "所有人"))):
        rows.nth(index).locator("input[name=field_name]").fill(field)
        rows.nth(index).locator("input[name=field_title]").fill(title)
    rows.nth(0).locator("input[name=field_primary_key]").check()
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("state")).to_have_text("草稿")


def transition(page: Page, name: str, *, comment: str | None = None) -> None:
    if comment is not None:
        page.get_by_test_id(f"comment-{name}").fill(comment)
    page.get_by_test_id(f"transition-{name}").click()
    expect(page.locator(".flash.ok")).to_be_visible()


# scenarios ----------------------------------------------------------------------------


def test_search_as_you_type_and_open_a_resource(page: Page) -> None:
    log_in(page, "gat_officer")
    page.goto("/catalog")
    count = page.get_by_test_id("count")
    before = count.inner_text()

    page.get_by_test_id("search").press_sequentially("常住人口")

    expect(count).not_to_have_text(before)
    link = page.locator("#results a[href='/catalog/gat_resident_population']")
    expect(link).to_be_visible()
    expect(page.locator("#results a[href='/catalog/mzt_marriage_registration']")).to_have_count(0)
    assert page.url.endswith("/catalog")  # htmx swapped the results; no page load

    link.click()
    expect(page.locator("h1")).to_contain_text("浙江省常住人口基本信息")
    expect(page.get_by_test_id("fields")).to_contain_text("公民身份号码")


def test_create_submit_approve_and_withdraw(page: Page) -> None:
    code = new_code()
    log_in(page, "gat_officer")
    create_resource(page, code, "浏览器测试机动车信息")
    expect(page.locator(".flash.ok")).to_have_text("已保存。")
    fields = page.get_by_test_id("fields").locator("tbody tr")
    expect(fields).to_have_count(2)
    expect(fields.nth(0)).to_contain_text("✔")
    expect(fields.nth(1)).not_to_contain_text("✔")

    transition(page, "submit")
    expect(page.get_by_test_id("state")).to_have_text("待审核")
    expect(page.get_by_test_id("transition-approve")).to_have_count(0)
    log_out(page)

    log_in(page, "admin")
    page.goto(f"/catalog/{code}")
    transition(page, "approve")
    expect(page.get_by_test_id("state")).to_have_text("已发布")

    transition(page, "withdraw", comment="数据源停用")
    expect(page.get_by_test_id("state")).to_have_text("已撤回")
    expect(page.get_by_test_id("history")).to_contain_text("数据源停用")


def test_a_viewer_cannot_reach_an_officers_draft(page: Page) -> None:
    code = new_code()
    log_in(page, "gat_officer")
    create_resource(page, code, "浏览器测试草稿")
    log_out(page)

    log_in(page, "viewer")
    response = page.goto(f"/catalog/{code}")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_test_id("error")).to_contain_text("目录中没有数据资源")

    page.goto("/catalog")
    page.get_by_test_id("search").press_sequentially(code)
    expect(page.get_by_test_id("count")).to_have_text("0 条结果")


def test_switching_the_language_to_english(page: Page) -> None:
    log_in(page, "viewer")
    page.goto("/catalog")
    expect(page.locator("h1")).to_have_text("数据目录")

    page.get_by_test_id("lang").click()
    expect(page.locator("h1")).to_have_text("Catalog")
    expect(page.locator("nav.mainnav")).to_contain_text("Catalog")
    assert page.url.endswith("/catalog")

    page.goto("/departments")  # the choice is remembered
    expect(page.locator("h1")).to_have_text("Departments")
    page.get_by_test_id("lang").click()
    expect(page.locator("h1")).to_have_text("部门")


def test_a_wrong_password_is_shown_and_demo_logins_listed(page: Page) -> None:
    page.goto("/catalog")
    expect(page).to_have_url(f"{_origin(page)}/login?next=/catalog")
    page.locator("details.demo summary").click()
    expect(page.locator("details.demo")).to_contain_text("gat_officer")

    page.locator("input[name=username]").fill("gat_officer")
    page.locator("input[name=password]").fill("not-the-password")
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page.locator("p.flash.err")).to_have_text(
        "用户名或密码错误。多次输错后账号将被暂时锁定。"
    )
    expect(page.locator("input[name=username]")).to_have_value("gat_officer")

    page.locator("input[name=password]").fill(DEMO_PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("数据目录")  # back where it was going


def test_the_cockpit_draws_the_system_chart(page: Page) -> None:
    errors: list[Any] = []
    page.on("pageerror", lambda error: errors.append(error))
    log_in(page, "analyst")
    page.goto("/")
    published = int(page.get_by_test_id("published").inner_text())
    assert published >= 20
    expect(page.locator("#by-system canvas").first).to_be_visible()
    assert errors == []


# full aggregation ---------------------------------------------------------------------

POPULATION = "gat_resident_population"
POPULATION_HEADERS = "公民身份号码,姓名,性别,出生日期,民族,户籍地址,居住地址,行政区划代码,更新时间"


def _citizen_id(first17: str) -> str:
    return first17 + citizen_id_check(first17)


POPULATION_IDS = [_citizen_id(f"33010619800101{n:03d}") for n in range(1, 7)]
BAD_POPULATION_ID = "33010619800101999" + (  # a wrong check character
    "1" if citizen_id_check("33010619800101999") != "1" else "2"
)


def population_csv() -> bytes:
    """Six good people, one with a wrong ID, one with a gender outside the list."""
    lines = [POPULATION_HEADERS]
    for n, cid in enumerate(POPULATION_IDS, start=1):
        lines.append(
            f"{cid},王{n},男,1980-01-01,汉族,杭州市西湖区文三路{n}号,,330106,2026-10-01 08:00:00"
        )
    lines.append(f"{BAD_POPULATION_ID},赵七,女,1980-01-01,汉族,杭州市西湖区,,330106,2026-10-01")
    lines.append(
        f"{_citizen_id('33010619800101099')},钱八,未知,1980-01-01,,杭州市,,330106,2026-10-01"
    )
    return ("\n".join(lines) + "\n").encode("utf-8")


def ensure_published(page: Page, code: str) -> None:
    """The demo leaves some resources in review: the operator approves this one if so."""
    log_in(page, "admin")
    page.goto(f"/catalog/{code}")
    for name in ("submit", "approve"):
        if page.get_by_test_id(f"transition-{name}").count():
            transition(page, name)
    expect(page.get_by_test_id("state")).to_have_text("已发布")
    log_out(page)


def load_population(page: Page) -> None:
    """What a data officer does: open the resource, its data tab, and upload a file."""
    ensure_published(page, POPULATION)
    log_in(page, "gat_officer")
    page.goto(f"/catalog/{POPULATION}")
    page.get_by_test_id("tab-data").click()
    expect(page).to_have_url(f"{_origin(page)}/catalog/{POPULATION}/data")
    page.get_by_test_id("upload-file").set_input_files(
        files=[{"name": "常住人口.csv", "mimeType": "text/csv", "buffer": population_csv()}]
    )
    page.get_by_test_id("upload-mode").select_option("full")
    page.get_by_test_id("upload-submit").click()
    expect(page.locator(".flash.ok")).to_contain_text("批次")


def test_a_resources_data_tab_after_an_upload(page: Page) -> None:
    errors: list[Any] = []
    page.on("pageerror", lambda error: errors.append(error))
    load_population(page)
    flash = page.locator(".flash.ok").inner_text()
    assert "读取 8 行" in flash or "与当前快照数据相同" in flash

    sample = page.get_by_test_id("sample")
    expect(sample).to_be_visible()
    expect(sample.locator("th.masked").first).to_be_visible()
    for cid in POPULATION_IDS:
        expect(sample).not_to_contain_text(cid)
    expect(page.get_by_test_id("batches")).to_contain_text("成功")

    quarantine = page.get_by_test_id("quarantine")
    expect(quarantine).to_contain_text("身份证号无效")
    expect(quarantine).to_contain_text("不在取值范围")
    expect(quarantine).to_contain_text(BAD_POPULATION_ID)
    page.get_by_test_id("quarantine-rule").select_option("values")
    page.locator("#quarantine form button[type=submit]").click()
    expect(page.get_by_test_id("quarantine")).not_to_contain_text(BAD_POPULATION_ID)
    expect(page.get_by_test_id("quarantine-count")).to_have_text("1")

    expect(page.locator("#quality-chart canvas").first).to_be_visible()
    with page.expect_download() as download:
        page.get_by_test_id("quarantine-csv").click()
    assert download.value.suggested_filename == f"{POPULATION}-quarantine.csv"
    assert errors == []


def test_aggregation_health_shows_coverage_and_draws_the_trend(page: Page) -> None:
    load_population(page)
    log_out(page)

    errors: list[Any] = []
    page.on("pageerror", lambda error: errors.append(error))
    log_in(page, "analyst")
    page.locator("nav.mainnav a[href='/aggregation']").click()
    expect(page.locator("h1")).to_have_text("归集监测")
    published = int(page.get_by_test_id("published").inner_text())
    current = int(page.get_by_test_id("current").inner_text())
    assert published >= 20 and 1 <= current <= published
    expect(page.get_by_test_id("coverage-rate")).to_have_text(re.compile(r"^\d+\.\d%$"))
    expect(page.get_by_test_id("by-provider")).to_contain_text("浙江省公安厅")
    row = page.locator(f"[data-testid=resources] tr[data-code={POPULATION}]")
    expect(row.locator(".light").first).to_be_visible()
    expect(page.locator("#coverage-chart canvas").first).to_be_visible()

    page.get_by_test_id("filter-provider").select_option("zj_gat")
    page.locator("form.filters button[type=submit]").click()
    expect(page.get_by_test_id("resources")).to_contain_text("浙江省常住人口基本信息")
    expect(page.get_by_test_id("resources")).not_to_contain_text("婚姻登记")
    assert errors == []
